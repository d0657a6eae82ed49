"""The error bodies every endpoint shares, for the OpenAPI schema, and `error_responses` to document them.

The bodies are what `portal.api.errors.portal_exception_handler` writes:

- 400: field errors, `{"field": ["message", ...], "non_field_errors": [...]}` (`FieldErrors`); a transition a
  guard blocks answers `{"detail", "refusals", "transition"}` instead (`TransitionRefusal`);
- 401 (no or bad credentials), 403, 404, 405, 409, 415, 429 (throttled): `{"detail": "..."}` (`ErrorDetail`).

Use it in a view: `@extend_schema(responses={200: NhiSerializer, **error_responses(400, 403, 404)})`.
401 and 429 are always added: every endpoint needs a signed-in person or a token, and tokens are throttled.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

DESCRIPTIONS = {
    400: "Invalid input: the fields at fault, each with its messages. Nothing was written.",
    401: "Not signed in, or the token is unknown, expired or revoked.",
    403: "Signed in, but not allowed to do this.",
    404: "No such object, or not one the caller may see.",
    405: "Method not allowed.",
    409: "The object changed meanwhile (e.g. someone else moved the case first); reload and try again.",
    429: "Too many requests for this token; retry after the number of seconds in Retry-After.",
}


class ErrorDetail(serializers.Serializer[Any]):
    detail = serializers.CharField(help_text="What went wrong, in a sentence meant for a person.")


class FieldErrors(serializers.Serializer[Any]):
    """Free-form: one key per field at fault (`non_field_errors` for the input as a whole), each a list of
    messages. Nested fields are flattened with dots (`identities.0`). Documented by `FieldErrorsExtension`."""


class FieldErrorsExtension(OpenApiSerializerExtension):
    target_class = FieldErrors

    def map_serializer(self, auto_schema: AutoSchema, direction: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "description": (
                "One key per field at fault (`non_field_errors` for the input as a whole), "
                "each with the list of its messages."
            ),
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "example": {"name": ["This field is required."]},
        }


class TransitionRefusal(serializers.Serializer[Any]):
    detail = serializers.CharField(help_text="Every refusal, as one sentence.")
    refusals = serializers.ListField(
        child=serializers.CharField(), help_text="Each guard that blocks the transition, as a sentence."
    )
    transition = serializers.CharField(help_text="The transition refused, e.g. `verify`.")


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer nhi_...` (the session cookie is documented by drf-spectacular)."""

    target_class = "portal.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API token (`nhi_...`): created in the admin, at /api/v1/tokens/ or with "
                "`manage.py create_api_token`."
            ),
        }


def _response(code: int, *, transition: bool) -> OpenApiResponse:
    if code == 400:
        if transition:
            return OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="FieldErrorsOrTransitionRefusal",
                    serializers=[FieldErrors, TransitionRefusal],
                    resource_type_field_name=None,
                ),
                description=DESCRIPTIONS[400] + " A guard refusing the transition lists its refusals.",
            )
        return OpenApiResponse(FieldErrors, description=DESCRIPTIONS[400])
    return OpenApiResponse(ErrorDetail, description=DESCRIPTIONS.get(code, "Error."))


def error_responses(*codes: int, transition: bool = False) -> dict[int, OpenApiResponse]:
    """The error responses of an operation: the codes given, plus 401 and 429 which every endpoint has.

    `transition=True` documents a 400 that may also be a guard's refusal (`TransitionRefusal`).
    """
    return {code: _response(code, transition=transition) for code in sorted({*codes, 401, 429})}
