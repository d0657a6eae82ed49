"""Service refusals as HTTP answers: the services raise Django's and the workflow's exceptions, the API
maps them once here, so every endpoint answers the same way.

- django ValidationError -> 400, field errors as DRF writes them ({"field": ["message"], ...});
- PermissionDenied -> 403 {"detail": ...}; ObjectDoesNotExist -> 404;
- TransitionConflict and django-fsm's ConcurrentTransition (someone else moved the case first) -> 409;
- TransitionRefused (a guard: missing evidence, approval, ...) -> 400 {"detail", "refusals"}.
"""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import exception_handler

from cases.errors import TransitionConflict, TransitionRefused

CONFLICT_MESSAGE = "The case changed meanwhile (someone else moved it first); reload it and try again."


def field_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if name == NON_FIELD_ERRORS else name): messages
            for name, messages in error.message_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def portal_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        return Response(field_errors(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, TransitionRefused):
        return Response(
            {"detail": str(exc), "refusals": exc.refusals, "transition": exc.transition},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, TransitionConflict | TransitionNotAllowed):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ConcurrentTransition):
        return Response({"detail": CONFLICT_MESSAGE}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ObjectDoesNotExist) and not isinstance(exc, PermissionDenied):
        exc = NotFound()
    return exception_handler(exc, context)
