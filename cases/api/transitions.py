"""Case actions over HTTP: the same choices as the case page (`cases.workflow`), described and performed.

`GET /cases/{id}/transitions/` lists `available_actions` with the fields each action's Django form asks for;
`POST /cases/{id}/transitions/{name}/` runs `run_action`: it refuses what the workflow does not offer this
caller now, validates the body with the action's own form and calls the action's service. The dedicated
endpoints for case work (evidence, action items, approval requests, comments, linking an identity) go through
`run_action` too, so no endpoint accepts what the case page would not offer.

The request schemas are generated from the same forms, so the documentation cannot drift from what is
validated.
"""

from collections.abc import Iterable, Mapping
from typing import Any, cast

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from cases.errors import TransitionConflict, TransitionRefused
from cases.models import Case
from cases.workflow import ACTIONS, ACTIONS_BY_NAME, CaseAction, available_actions
from portal.permissions import Actor

ACTION_NAMES = tuple(ACTIONS_BY_NAME)


# --- Describing a form's fields ----------------------------------------------------------------------------


def field_type(field: forms.Field) -> str:
    # Subclasses before their bases: a ModelChoiceField is a ChoiceField, a URLField is a CharField.
    for form_class, name in (
        (forms.ModelChoiceField, "id"),
        (forms.ChoiceField, "choice"),
        (forms.FileField, "file"),
        (forms.DateTimeField, "datetime"),
        (forms.DateField, "date"),
        (forms.URLField, "url"),
        (forms.IntegerField, "integer"),
        (forms.BooleanField, "boolean"),
    ):
        if isinstance(field, form_class):
            return name
    return "string"


def field_choices(field: forms.Field) -> list[dict[str, str]] | None:
    if isinstance(field, forms.ModelChoiceField) or not isinstance(field, forms.ChoiceField):
        return None
    choices: Iterable[tuple[Any, Any]] = field.choices  # type: ignore[assignment]
    return [{"value": str(value), "label": str(label)} for value, label in choices if value != ""]


def field_references(field: forms.Field) -> str | None:
    """For an id field, the model it names (`nhi_inventory.team`), whose list endpoint gives the ids."""
    if isinstance(field, forms.ModelChoiceField) and field.queryset is not None:
        return str(field.queryset.model._meta.label_lower)
    return None


def describe_fields(form_class: type[forms.Form]) -> list[dict[str, Any]]:
    """What a tool needs to build the request: each field's name, type, whether required, choices, help."""
    described = []
    for name, field in form_class().fields.items():
        described.append(
            {
                "name": name,
                "label": str(field.label or name.replace("_", " ").capitalize()),
                "type": field_type(field),
                "required": field.required,
                "help_text": str(field.help_text),
                "choices": field_choices(field),
                "references": field_references(field),
                "max_length": getattr(field, "max_length", None),
            }
        )
    return described


def action_content_type(action: CaseAction) -> str:
    return "multipart/form-data" if action.multipart else "application/json"


# --- Request schemas generated from the forms (documentation only; the forms validate) ---------------------


def _serializer_field(field: forms.Field, *, required: bool, help_text: str) -> serializers.Field:
    options: dict[str, Any] = {"required": required, "help_text": help_text or None}
    kind = field_type(field)
    if kind == "choice":
        return serializers.ChoiceField(
            choices=[(c["value"], c["label"]) for c in field_choices(field) or []], **options
        )
    simple: dict[str, type[serializers.Field]] = {
        "id": serializers.IntegerField,
        "file": serializers.FileField,
        "datetime": serializers.DateTimeField,
        "date": serializers.DateField,
        "integer": serializers.IntegerField,
        "boolean": serializers.BooleanField,
    }
    if kind in simple:
        return simple[kind](**options)
    text = serializers.URLField if kind == "url" else serializers.CharField
    max_length = getattr(field, "max_length", None)
    if max_length is not None:
        options["max_length"] = max_length
    return text(allow_blank=not required, **options)


def _help(field: forms.Field) -> str:
    parts = [str(field.help_text)] if field.help_text else []
    references = field_references(field)
    if references:
        parts.append(f"Id of a {references}.")
    return " ".join(parts)


def form_serializer(
    component: str,
    form_class: type[forms.Form],
    extra: Mapping[str, serializers.Field] | None = None,
    overrides: Mapping[str, serializers.Field] | None = None,
) -> type[serializers.Serializer[Any]]:
    """A serializer class with the form's fields, so the schema documents exactly what the form takes.

    `extra` fields come first (e.g. the `case` a dedicated endpoint reads itself); `overrides` replace a form
    field whose documentation depends on another field.
    """
    fields: dict[str, Any] = dict(extra or {})
    for name, field in form_class().fields.items():
        fields[name] = _serializer_field(field, required=field.required, help_text=_help(field))
    fields.update(overrides or {})
    return cast(
        type[serializers.Serializer[Any]],
        serializers.SerializerMetaclass(component, (serializers.Serializer,), fields),
    )


def _transition_request_serializer() -> type[serializers.Serializer[Any]]:
    """Every field any action takes, each saying which actions use it and which require it.

    One object rather than a oneOf: several actions take the same body (`reason` alone, or nothing), so a body
    would match more than one alternative, which oneOf forbids.
    """
    used: dict[str, list[tuple[CaseAction, forms.Field]]] = {}
    for action in ACTIONS:
        for name, field in action.form_class().fields.items():
            used.setdefault(name, []).append((action, field))
    fields: dict[str, Any] = {}
    for name, uses in used.items():
        first = uses[0][1]
        alike = all(
            field_type(f) == field_type(first) and field_choices(f) == field_choices(first) for _, f in uses
        )
        needed = [a.name for a, f in uses if f.required]
        optional = [a.name for a, f in uses if not f.required]
        help_text = " ".join(
            part
            for part in (
                _help(first) if alike else "",
                f"Required by: {', '.join(needed)}." if needed else "",
                f"Optional for: {', '.join(optional)}." if optional else "",
                "" if alike else "Its values depend on the action; see GET .../transitions/.",
            )
            if part
        )
        if alike:
            fields[name] = _serializer_field(first, required=False, help_text=help_text)
        else:
            fields[name] = serializers.CharField(required=False, allow_blank=True, help_text=help_text)
    return cast(
        type[serializers.Serializer[Any]],
        serializers.SerializerMetaclass("CaseTransitionBody", (serializers.Serializer,), fields),
    )


CaseTransitionBody = _transition_request_serializer()


# --- Performing an action ----------------------------------------------------------------------------------


def _form_input(data: Any, files: MultiValueDict[str, Any] | None, action: CaseAction) -> dict[str, Any]:
    """The request body as a form reads it: one string per field; nested values and unknown fields refused."""
    if isinstance(data, QueryDict):
        data = {key: data.get(key) for key in data}
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": "Send the fields as a JSON object."})
    known = action.form_class.base_fields
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for key, value in data.items():
        if key not in known:
            errors[str(key)] = (
                f"'{action.name}' takes no field called {key!r}; it takes: {', '.join(known) or 'no fields'}."
            )
        elif isinstance(value, dict | list):
            errors[key] = "Expected a single value, not a list or an object."
        elif value is not None:
            values[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    for key in files or {}:
        if key not in known:
            errors[key] = f"'{action.name}' takes no file called {key!r}."
    if errors:
        raise ValidationError(errors)
    return values


def run_action(
    *, case: Case, user: Actor, name: str, data: Any, files: MultiValueDict[str, Any] | None = None
) -> object:
    """Perform one case action for this user, exactly as the case page would, and return what it made.

    Refusals: unknown action 404; not the caller's to take 403; the case (its state or kind) does not offer
    it now 409; a work action the workflow marks blocked 400 with its refusals; invalid body 400 by field.
    The service then checks everything again under the row lock.
    """
    action = ACTIONS_BY_NAME.get(name)
    if action is None:
        raise NotFound(f"No case action called {name!r}. The actions are: {', '.join(ACTION_NAMES)}.")
    offered = {item.action.name: item for item in available_actions(case=case, user=user)}
    availability = offered.get(name)
    if availability is None:
        if not user.has_perm(action.permission):
            raise PermissionDenied(
                f"You may not {action.label.lower()}: the permission {action.permission!r} is missing."
            )
        raise TransitionConflict(
            f"{action.label} is not possible on {case.reference} as it is now "
            f"({case.get_state_display().lower()}, {case.get_kind_display().lower()}); "
            "someone may have moved it meanwhile: reload the case and its transitions."
        )
    # A transition's guards are checked again by its service, under the lock; the workflow's other refusals
    # (a pending request already, nothing to unmap) are only known here.
    if not action.is_transition and availability.blocked_by:
        raise TransitionRefused(name, list(availability.blocked_by))
    form = action.form_class(data=_form_input(data, files, action), files=files)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    return action.perform(case, user, dict(form.cleaned_data))
