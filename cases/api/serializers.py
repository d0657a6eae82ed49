"""How cases and their work look over the API, and the shape of what clients send.

Output serializers read only what the views' querysets already loaded (select_related / prefetch_related), so
a list costs the same number of queries for 2 rows as for 500. Input serializers check the shape only; the
services (and, for case actions, the workflow's forms) decide the rest.
"""

import posixpath
from typing import Any

from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cases import forms as case_forms
from cases.api.filters import MAX_ID
from cases.api.transitions import form_serializer
from cases.models import (
    OPEN_STATES,
    ActionItem,
    ActionStatus,
    Approval,
    ApprovalKind,
    Case,
    CaseKind,
    CaseState,
    CaseTransition,
    Comment,
    DismissalReason,
    Evidence,
    Severity,
)
from cases.selectors import case_list
from nhi_inventory.models import NonHumanIdentity, Team
from nhi_inventory.selectors import nhi_list, team_list

# --- References to other rows ------------------------------------------------------------------------------


class UserRefSerializer(serializers.Serializer[User]):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.SerializerMethodField()

    def get_name(self, user: User) -> str:
        return user.get_full_name() or user.get_username()


class TeamRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class IdentityRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="nhi.id")
    name = serializers.CharField(source="nhi.name")
    kind = serializers.CharField(source="nhi.kind")
    owner_team_id = serializers.IntegerField(source="nhi.owner_team_id", allow_null=True)
    linked_at = serializers.DateTimeField()


class MappingSummarySerializer(serializers.Serializer[Any]):
    control_id = serializers.IntegerField()
    control = serializers.CharField(source="control.ref_id", help_text="The control's id in its catalog.")
    framework = serializers.CharField(source="control.framework.key")
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="`rule` (a mapping rule) or `manual` (added by hand)."
    )
    rationale = serializers.CharField()


# --- Cases -------------------------------------------------------------------------------------------------


class CaseFactsSerializer(serializers.Serializer[Case]):
    has_evidence = serializers.BooleanField()
    traceable = serializers.BooleanField(
        help_text=(
            "Every transition after opening gave a reason. The alignment report counts the case as traceable "
            "only if, besides, the audit chain proves every transition."
        )
    )
    closure_second_person_approved = serializers.BooleanField()


class CaseLinksSerializer(serializers.Serializer[Any]):
    self = serializers.URLField()
    transitions = serializers.URLField()
    history = serializers.URLField()
    comments = serializers.URLField()
    evidence = serializers.URLField()
    action_items = serializers.URLField()
    approvals = serializers.URLField()


def _absolute(context: dict[str, Any], path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


def is_overdue(case: Case) -> bool:
    return case.due_at is not None and case.state in OPEN_STATES and case.due_at < timezone.now()


class CaseListSerializer(serializers.ModelSerializer[Case]):
    reference = serializers.CharField(read_only=True)
    owning_team = TeamRefSerializer(allow_null=True)
    assignee = UserRefSerializer(allow_null=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields: tuple[str, ...] = (
            "id",
            "reference",
            "title",
            "kind",
            "severity",
            "priority",
            "state",
            "origin",
            "owning_team",
            "assignee",
            "due_at",
            "overdue",
            "escalated_at",
            "created_at",
            "updated_at",
        )
        read_only_fields: tuple[str, ...] = fields

    def get_overdue(self, case: Case) -> bool:
        return is_overdue(case)


class CaseDetailSerializer(CaseListSerializer):
    opened_by = UserRefSerializer(allow_null=True)
    dismissal_reason = serializers.ChoiceField(
        choices=DismissalReason.choices, allow_blank=True, read_only=True, help_text="Empty unless dismissed."
    )
    identities = IdentityRefSerializer(source="identity_links", many=True)
    facts = CaseFactsSerializer(source="*")
    mappings = MappingSummarySerializer(source="active_mappings", many=True)
    links = serializers.SerializerMethodField()

    class Meta(CaseListSerializer.Meta):
        fields = (
            *CaseListSerializer.Meta.fields,
            "summary",
            "opened_by",
            "dismissal_reason",
            "risk_accepted_until",
            "verified_at",
            "closed_at",
            "identities",
            "facts",
            "mappings",
            "links",
        )
        read_only_fields = fields

    @extend_schema_field(CaseLinksSerializer)
    def get_links(self, case: Case) -> dict[str, str]:
        def at(name: str) -> str:
            return _absolute(self.context, reverse(name, args=(case.pk,)))

        def listed(name: str) -> str:
            return _absolute(self.context, f"{reverse(name)}?case={case.pk}")

        return {
            "self": at("api-case-detail"),
            "transitions": at("api-case-transitions"),
            "history": at("api-case-history"),
            "comments": at("api-case-comments"),
            "evidence": listed("api-evidence-list"),
            "action_items": listed("api-action-item-list"),
            "approvals": listed("api-approval-list"),
        }


class CaseCreateSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=CaseKind.choices)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.MEDIUM)
    summary = serializers.CharField(required=False, allow_blank=True, default="")
    identities = serializers.PrimaryKeyRelatedField(
        many=True,
        required=False,
        default=list,
        queryset=NonHumanIdentity.objects.none(),  # the caller's identities, set in __init__
        help_text="Ids of identities the case concerns (ones you can see).",
    )
    owning_team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.none(),  # the caller's teams, set in __init__
        required=False,
        allow_null=True,
        default=None,
    )
    due_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is None:  # the schema generator's instance: no rows to choose from
            return
        user = request.user
        identities = self.fields["identities"]
        assert isinstance(identities, serializers.ManyRelatedField)
        identities.child_relation.queryset = nhi_list(user=user)
        team = self.fields["owning_team"]
        assert isinstance(team, serializers.PrimaryKeyRelatedField)
        team.queryset = team_list(user=user)


class CaseUpdateSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=200, required=False)
    summary = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=CaseKind.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Why; recorded in the case's history."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Ignoring `state` or `assignee` silently would let a client believe it moved the case.
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                dict.fromkeys(unknown, "This field cannot be edited here; use a transition.")
            )
        return attrs


class IdentityUnlinkSerializer(serializers.Serializer[Any]):
    nhi = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Id of the identity to unlink.")


class CaseRefSerializer(serializers.Serializer[Any]):
    """The `case` a piece of work is for: one the caller can see, else 400 naming `case`."""

    case = serializers.PrimaryKeyRelatedField(queryset=Case.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        case = self.fields["case"]
        assert isinstance(case, serializers.PrimaryKeyRelatedField)
        if request is not None:
            case.queryset = case_list(user=request.user)


class ApprovalRequestRefSerializer(CaseRefSerializer):
    kind = serializers.ChoiceField(choices=ApprovalKind.choices)


# --- Case actions and their description --------------------------------------------------------------------


class ChoiceSerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]


class ActionFieldSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    type = serializers.ChoiceField(
        choices=["string", "choice", "id", "file", "date", "datetime", "url", "integer", "boolean"],
        help_text="`id`: the id of a row of `references`; `file`: send the request as multipart/form-data.",
    )
    required = serializers.BooleanField()  # type: ignore[assignment]
    help_text = serializers.CharField(allow_blank=True)  # type: ignore[assignment]
    choices = ChoiceSerializer(many=True, allow_null=True, help_text="The values allowed, for `choice`.")
    references = serializers.CharField(allow_null=True, help_text="For `id`: the model, e.g. `auth.user`.")
    max_length = serializers.IntegerField(allow_null=True)


class CaseActionSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="Use it in POST .../transitions/{name}/.")
    label = serializers.CharField()  # type: ignore[assignment]
    is_transition = serializers.BooleanField(help_text="Moves the case to another state.")
    allowed = serializers.BooleanField(help_text="Nothing blocks it now.")
    blocked_by = serializers.ListField(
        child=serializers.CharField(), help_text="What blocks it now, each as a sentence."
    )
    danger = serializers.BooleanField(help_text="Hard to undo (e.g. dismiss); ask the person to confirm.")
    content_type = serializers.CharField(help_text="How to send the body.")
    fields = ActionFieldSerializer(many=True)  # type: ignore[assignment]
    url = serializers.URLField()


class DecidableApprovalSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ApprovalKind.choices)
    reason = serializers.CharField()
    risk_expires_on = serializers.DateField(allow_null=True)
    requested_by = UserRefSerializer()
    url = serializers.URLField(help_text="POST {approve, note} here to decide.")


class CaseTransitionsSerializer(serializers.Serializer[Any]):
    case = serializers.IntegerField()
    reference = serializers.CharField()
    state = serializers.CharField()
    actions = CaseActionSerializer(many=True)
    approvals_to_decide = DecidableApprovalSerializer(
        many=True, help_text="Pending requests on this case you may decide (not your own)."
    )


# --- History -----------------------------------------------------------------------------------------------


class CaseTransitionLogSerializer(serializers.ModelSerializer[CaseTransition]):
    actor = UserRefSerializer()
    source_state = serializers.ChoiceField(
        choices=CaseState.choices, allow_blank=True, read_only=True, help_text="Empty for `open`."
    )

    class Meta:
        model = CaseTransition
        fields = ("id", "name", "source_state", "target_state", "actor", "reason", "at")
        read_only_fields = fields


class HistoryRowSerializer(serializers.Serializer[Any]):
    history_id = serializers.IntegerField()
    at = serializers.DateTimeField()
    user = UserRefSerializer(allow_null=True)
    type = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    reason = serializers.CharField(allow_null=True)
    state = serializers.CharField()
    changed_fields = serializers.ListField(child=serializers.CharField())


class CaseHistorySerializer(serializers.Serializer[Any]):
    transitions = CaseTransitionLogSerializer(many=True, help_text="The lifecycle log, oldest first.")
    history = HistoryRowSerializer(many=True, help_text="Every saved version of the case, oldest first.")


HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


def history_rows(records: list[Any]) -> list[dict[str, Any]]:
    """Each version of the case with the fields that changed from the one before (oldest first)."""
    rows = []
    previous = None
    for record in records:
        # Compared here rather than with diff_against, which skips non-editable fields such as the state.
        changed: list[str] = (
            []
            if previous is None
            else [
                field.name
                for field in record.tracked_fields
                if getattr(record, field.attname) != getattr(previous, field.attname)
            ]
        )
        rows.append(
            {
                "history_id": record.history_id,
                "at": record.history_date,
                "user": record.history_user,
                "type": HISTORY_TYPES.get(record.history_type, record.history_type),
                "reason": record.history_change_reason,
                "state": record.state,
                "changed_fields": changed,
            }
        )
        previous = record
    return rows


# --- Work on a case ----------------------------------------------------------------------------------------


class EvidenceSerializer(serializers.ModelSerializer[Evidence]):
    case_reference = serializers.CharField(source="case.reference")
    captured_by = UserRefSerializer()
    # Not a URLField: it is empty for file and note evidence, which a `uri` format would refuse.
    url = serializers.CharField(read_only=True, help_text="The URL, for `url` evidence; empty otherwise.")
    filename = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = (
            "id",
            "case",
            "case_reference",
            "kind",
            "title",
            "url",
            "note",
            "filename",
            "sha256",
            "size",
            "captured_by",
            "captured_at",
            "download_url",
        )
        read_only_fields = fields

    def get_filename(self, evidence: Evidence) -> str | None:
        return posixpath.basename(evidence.file.name) if evidence.file else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, evidence: Evidence) -> str | None:
        if not evidence.file:
            return None
        return _absolute(self.context, reverse("api-evidence-download", args=(evidence.pk,)))


class ActionItemSerializer(serializers.ModelSerializer[ActionItem]):
    case_reference = serializers.CharField(source="case.reference")
    owning_team = TeamRefSerializer()
    created_by = UserRefSerializer()
    approved_by = UserRefSerializer(allow_null=True)
    awaiting_approval = serializers.BooleanField(
        help_text="A proposal (e.g. from an AI assistant) nobody has approved yet: it may not be started."
    )

    class Meta:
        model = ActionItem
        fields = (
            "id",
            "case",
            "case_reference",
            "kind",
            "title",
            "owning_team",
            "status",
            "external_reference",
            "created_by",
            "created_at",
            "completed_at",
            "requires_approval",
            "awaiting_approval",
            "approved_by",
            "approved_at",
        )
        read_only_fields = fields


class ActionItemStatusSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=ActionStatus.choices)
    external_reference = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Ticket id, change id, ...; kept if omitted.",
    )


class ApprovalSerializer(serializers.ModelSerializer[Approval]):
    case_reference = serializers.CharField(source="case.reference")
    requested_by = UserRefSerializer()
    decided_by = UserRefSerializer(allow_null=True)

    class Meta:
        model = Approval
        fields = (
            "id",
            "case",
            "case_reference",
            "kind",
            "status",
            "reason",
            "risk_expires_on",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
        )
        read_only_fields = fields


class ApprovalDecisionSerializer(serializers.Serializer[Any]):
    approve = serializers.BooleanField(help_text="true approves, false rejects.")
    note = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Required to reject."
    )


class CommentSerializer(serializers.ModelSerializer[Comment]):
    author = UserRefSerializer()

    class Meta:
        model = Comment
        fields = ("id", "case", "author", "body", "created_at")
        read_only_fields = fields


# Request bodies of the dedicated work endpoints, generated from the forms that validate them.
_CASE_FIELD = {"case": serializers.IntegerField(help_text="Id of the case (one you can see).")}
EvidenceCaptureBody = form_serializer("EvidenceCapture", case_forms.EvidenceForm, _CASE_FIELD)
ActionItemAddBody = form_serializer("ActionItemAdd", case_forms.ActionItemForm, _CASE_FIELD)
CommentAddBody = form_serializer("CommentAdd", case_forms.CommentForm)
IdentityLinkBody = form_serializer("IdentityLink", case_forms.LinkIdentityForm)
# One endpoint for both kinds of request: the closure's form has no expiry, the risk acceptance's needs one.
ApprovalRequestBody = form_serializer(
    "ApprovalRequestBody",
    case_forms.RiskAcceptanceRequestForm,
    extra={**_CASE_FIELD, "kind": serializers.ChoiceField(choices=ApprovalKind.choices)},
    overrides={
        "risk_expires_on": serializers.DateField(
            required=False,
            help_text="Required for a risk acceptance (at most one year ahead); not taken for a closure.",
        )
    },
)
