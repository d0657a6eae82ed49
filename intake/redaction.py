"""What an assistant's free text may keep: nothing shaped like a credential.

Assistants quote what they were shown, keys included. Masking rather than refusing: a refusal would lose
the output (and its warning) for a mistake the client cannot always see, and the error path would be one
more place the secret travels through. The masking is the findings import's rule for stored context
(`nhi_inventory.fingerprints.mask_credentials`): a run of 16 or more token characters with a digit, or
24 or more in mixed case, becomes `[masked, N chars]`; words and most identifiers stay readable. URLs lose
their user-info part (`https://user:token@host` -> `https://host`).

Identifiers (the assistant's name, the conversation reference) are not masked, since masking would make
them useless; a conversation reference that is a URL loses its user-info and query string instead.
"""

import re
from urllib.parse import urlsplit, urlunsplit

from nhi_inventory.fingerprints import mask_credentials

REFERENCE_LENGTH = 300
URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@", re.IGNORECASE)


def masked(text: str) -> str:
    """The text without URL user-info and with every credential-shaped token masked."""
    return mask_credentials(URL_USERINFO.sub(r"\1", text))


def reference_without_secrets(reference: str) -> str:
    """A conversation reference; if it is a URL, without user-info, query string or fragment."""
    reference = reference.strip()
    if "://" not in reference:
        return reference
    try:
        parts = urlsplit(reference)
        port = parts.port
    except ValueError:  # not a URL after all (an impossible port, a broken IPv6 host): treat it as text
        return masked(reference)[:REFERENCE_LENGTH]
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
