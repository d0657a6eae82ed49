"""The signature of a hand-off, both ways: HMAC-SHA256 over `timestamp + "." + body` with the endpoint's key.

An endpoint's key is HMAC-SHA256(HANDOFF_SIGNING_KEY, "<endpoint id>:<rotation counter>"), so it is never
stored: the portal derives it when it signs or verifies, and the admin shows it (to configure the receiver)
when the endpoint is created or its key rotated. Rotating the counter, or HANDOFF_SIGNING_KEY itself, changes
the key; the old one stops verifying at once.

A receiver checks a delivery with the key it was shown:

    expected = "sha256=" + hmac.new(key.encode(), timestamp.encode() + b"." + body, sha256).hexdigest()
    hmac.compare_digest(expected, request.headers["X-Portal-Signature"])

and signs its callback the same way.
"""

import hashlib
import hmac
import time

from django.conf import settings

KEY_PREFIX = "whk_"
SIGNATURE_PREFIX = "sha256="
# A callback signed further than this from the portal's clock, either way, is refused (replay window).
CALLBACK_TOLERANCE_SECONDS = 300

HEADER_TIMESTAMP = "X-Portal-Timestamp"
HEADER_SIGNATURE = "X-Portal-Signature"
HEADER_IDEMPOTENCY_KEY = "X-Portal-Idempotency-Key"


def endpoint_key(*, endpoint_id: int, key_version: int) -> str:
    """The endpoint's current signing key, as shown to whoever configures the receiver."""
    message = f"nhi-portal handoff endpoint:{endpoint_id}:{key_version}".encode()
    digest = hmac.new(settings.HANDOFF_SIGNING_KEY.encode(), message, hashlib.sha256).hexdigest()
    return KEY_PREFIX + digest


def signature(*, key: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_matches(*, key: str, timestamp: str, body: bytes, given: str) -> bool:
    # Constant time whatever the given value: a timing difference must not tell how much of it was right.
    return hmac.compare_digest(signature(key=key, timestamp=timestamp, body=body).encode(), given.encode())


def timestamp_now() -> str:
    return str(int(time.time()))


def timestamp_is_fresh(timestamp: str, *, now: float | None = None) -> bool:
    """A whole number of seconds since the epoch, within CALLBACK_TOLERANCE_SECONDS of the portal's clock."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    current = time.time() if now is None else now
    return abs(current - int(timestamp)) <= CALLBACK_TOLERANCE_SECONDS
