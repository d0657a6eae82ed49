"""Canonical JSON: one byte sequence per value, so a hash over it means the same thing everywhere.

Keys sorted, no whitespace, UTF-8, and only types whose text form is unambiguous: floats are refused
(their decimal form varies by platform and printer), datetimes become UTC ISO 8601 with microseconds.
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.utils import timezone


class NotCanonical(TypeError):
    pass


def _plain(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            raise NotCanonical(f"{path}: a naive datetime has no place in the audit trail; give it a zone.")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path}: keys must be strings, not {type(key).__name__}.")
            plain[key] = _plain(item, f"{path}.{key}")
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise NotCanonical(f"{path}: {type(value).__name__} has no canonical JSON form.")


def canonical_json(value: Any) -> str:
    return json.dumps(
        _plain(value, "$"), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def text_digest(text: str) -> dict[str, Any]:
    """How the chain holds free text (reasons, notes, comments): its SHA-256 and length, never the text.

    The chain can never be edited, so it must hold nothing a person may later have to erase (a pasted
    secret, personal data); the text stays in the case's own tables, and its digest proves it unchanged.
    """
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "length": len(text)}
