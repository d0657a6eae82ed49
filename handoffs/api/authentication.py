"""Callbacks from receivers are authenticated by their signature, not by a session or token.

`X-Portal-Signature: sha256=<hex>` is HMAC-SHA256 over `X-Portal-Timestamp + "." + body` with the key of the
endpoint the named delivery went to (`handoffs.signing`); the delivery is named by its idempotency key, in
`X-Portal-Idempotency-Key` or the body's `idempotency_key`. The timestamp must be within five minutes of the
portal's clock. A callback that passes acts as the hand-offs' own account (`portal.roles.handoffs_user`).
"""

import json
import uuid
from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from handoffs import signing
from handoffs.models import Delivery
from handoffs.selectors import delivery_for_callback
from portal.roles import handoffs_user

MISSING = (
    f"A callback must carry {signing.HEADER_TIMESTAMP} (seconds since the epoch) and "
    f'{signing.HEADER_SIGNATURE} (sha256=<hex>: HMAC-SHA256 over the timestamp, "." and the body, with '
    "the endpoint's key)."
)
STALE = (
    f"{signing.HEADER_TIMESTAMP} is not within {signing.CALLBACK_TOLERANCE_SECONDS // 60} minutes of the "
    "portal's clock: sign each callback when you send it. Nothing was changed."
)
NO_KEY = (
    f"Name the hand-off: its idempotency key in {signing.HEADER_IDEMPOTENCY_KEY} or the body's "
    "idempotency_key."
)
KEYS_DIFFER = f"{signing.HEADER_IDEMPOTENCY_KEY} and the body's idempotency_key name different hand-offs."
# One answer for an unknown hand-off and a wrong signature: it must not help anyone guess either.
BAD_SIGNATURE = (
    "The signature does not verify: no hand-off has this idempotency key, or the callback was not signed "
    "with its endpoint's current key. Nothing was changed."
)
# Compared against when the hand-off is unknown, so that answering takes as long either way.
_DUMMY_KEY = signing.KEY_PREFIX + "0" * 64


def _body_key(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    value = data.get("idempotency_key") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


class HandoffSignatureAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, Delivery]:
        timestamp = request.headers.get(signing.HEADER_TIMESTAMP, "").strip()
        given = request.headers.get(signing.HEADER_SIGNATURE, "").strip()
        if not timestamp or not given:
            raise exceptions.AuthenticationFailed(MISSING)
        if not signing.timestamp_is_fresh(timestamp):
            raise exceptions.AuthenticationFailed(STALE)
        body: bytes = request.body
        header_key = request.headers.get(signing.HEADER_IDEMPOTENCY_KEY, "").strip()
        body_key = _body_key(body)
        if not (header_key or body_key):
            raise exceptions.AuthenticationFailed(NO_KEY)
        if header_key and body_key and header_key.lower() != body_key.lower():
            raise exceptions.AuthenticationFailed(KEYS_DIFFER)
        try:
            named = str(uuid.UUID(header_key or body_key))
        except ValueError:
            named = ""
        delivery = delivery_for_callback(idempotency_key=named) if named else None
        key = (
            signing.endpoint_key(endpoint_id=delivery.endpoint_id, key_version=delivery.endpoint.key_version)
            if delivery is not None
            else _DUMMY_KEY
        )
        verified = signing.signature_matches(key=key, timestamp=timestamp, body=body, given=given)
        if delivery is None or not verified:
            raise exceptions.AuthenticationFailed(BAD_SIGNATURE)
        return handoffs_user(), delivery

    def authenticate_header(self, request: Request) -> str:
        # Makes a refusal a 401 (with WWW-Authenticate) rather than a 403.
        return 'Signature realm="nhi-portal hand-off callbacks"'


class HandoffSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "handoffs.api.authentication.HandoffSignatureAuthentication"
    name = "handoffSignature"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": signing.HEADER_SIGNATURE,
            "description": (
                f'`sha256=<hex>`: HMAC-SHA256 over `{signing.HEADER_TIMESTAMP} + "." + body` with the '
                "endpoint's key (shown in the admin when the endpoint is created or its key rotated). Send "
                f"`{signing.HEADER_TIMESTAMP}` (seconds since the epoch, within 5 minutes) too."
            ),
        }
