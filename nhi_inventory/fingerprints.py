"""Keyed fingerprints and redacted previews: the only forms in which a secret may enter the portal.

The fingerprint is HMAC-SHA256 under a dedicated key (not SECRET_KEY), so a leaked database does not let
anyone confirm a guessed secret offline, and identical secrets still group together.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings

PREVIEW_LEADING_CHARACTERS = 4


@dataclass(frozen=True)
class Fingerprint:
    value: str
    key_id: str


def fingerprint_secret(secret: str) -> Fingerprint:
    if not secret:
        raise ValueError("Cannot fingerprint an empty secret.")
    digest = hmac.new(settings.FINGERPRINT_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()
    return Fingerprint(value=digest, key_id=settings.FINGERPRINT_KEY_ID)


def redacted_preview(secret: str, *, detector: str = "") -> str:
    """At most four leading characters and the length; short secrets show no characters at all."""
    shown = secret[:PREVIEW_LEADING_CHARACTERS] if len(secret) >= 12 else ""
    prefix = f"{detector}:" if detector else ""
    return f"{prefix}{shown}…({len(secret)} chars)"


# A run of token characters long enough to be a key; masked in stored text when it has a digit (or, long
# enough, both cases): identifiers and words are left readable.
CREDENTIAL_SHAPED = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")


def mask_credentials(text: str) -> str:
    """The text with every credential-shaped token replaced by `[masked, N chars]`."""
    return CREDENTIAL_SHAPED.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    token = match.group()
    digits = any(character.isdigit() for character in token)
    mixed_case = len(token) >= 24 and token.lower() != token and token.upper() != token
    return f"[masked, {len(token)} chars]" if digits or mixed_case else token
