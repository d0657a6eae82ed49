"""Service refusals as HTTP answers: the services raise Django's and the workflow's exceptions, the API
maps them once here, so every endpoint answers the same way.

- django ValidationError -> 400, field errors as DRF writes them ({"field": ["message"], ...}); DRF's own 400s
  (serializer errors, unreadable JSON) are brought to that same flat shape, nested fields joined with dots
  ({"identities.0": [...]}), so a client reads every 400 one way;
- PermissionDenied -> 403 {"detail": ...}; ObjectDoesNotExist -> 404;
- TransitionConflict and django-fsm's ConcurrentTransition (someone else moved the case first) -> 409;
- TransitionRefused (a guard: missing evidence, approval, ...) -> 400 {"detail", "refusals", "transition"};
- any other CaseWorkflowError (the case's state does not allow this now: already mapped, a pending request
  exists, the case is closed) -> 409 {"detail": ...}.
"""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from cases.errors import CaseWorkflowError, TransitionRefused

CONFLICT_MESSAGE = "The case changed meanwhile (someone else moved it first); reload it and try again."


def field_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if name == NON_FIELD_ERRORS else name): messages
            for name, messages in error.message_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def flat_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's error detail (nested dicts and lists of messages) as {"field.sub.0": ["message", ...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(flat_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(flat_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(message) for message in messages]}


def portal_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        return Response(field_errors(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, TransitionRefused):
        return Response(
            {"detail": str(exc), "refusals": exc.refusals, "transition": exc.transition},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, CaseWorkflowError | TransitionNotAllowed):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ConcurrentTransition):
        return Response({"detail": CONFLICT_MESSAGE}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ObjectDoesNotExist) and not isinstance(exc, PermissionDenied):
        exc = NotFound()
    if isinstance(exc, DrfValidationError | ParseError):
        return Response(flat_errors(exc.detail), status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)
