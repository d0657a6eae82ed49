"""Typed reads of one decoded report item, failing with the item's position and the field's name.

Messages name the field and the type it must have, never the value found: values are report content.
"""

import re
from datetime import UTC, datetime
from functools import lru_cache

from findings.parsers.base import ReportFormatError

JSONObject = dict[str, object]
# The largest integer every database column here takes (PostgreSQL integer).
MAX_INTEGER = 2**31 - 1

# Go's time.Time.String() and git's date layout, as TruffleHog writes commit timestamps:
# "2022-06-16 10:17:40 -0700 -0700", "2022-06-16 17:17:40 +0000 UTC", "2022-06-16 17:17:40 +0000".
_GO_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2}):?(\d{2})"
    r"(?: [A-Za-z0-9+-]+)?(?: m=[+-][\d.]+)?"
)


def as_object(value: object, position: str) -> JSONObject:
    if not isinstance(value, dict):
        raise ReportFormatError(f"{position} must be a JSON object")
    return value


def _missing(position: str, label: str) -> ReportFormatError:
    return ReportFormatError(f"{position}: field '{label}' is missing")


def _wrong_type(position: str, label: str, kind: str) -> ReportFormatError:
    return ReportFormatError(f"{position}: field '{label}' must be {kind}")


def text(obj: JSONObject, key: str, position: str, *, label: str = "", required: bool = False) -> str:
    """A string field; "" when absent or null unless `required`."""
    value = obj.get(key)
    if isinstance(value, str):
        if not value.isascii():
            _check_unicode(value, position, label or key)
        elif "\x00" in value:
            raise ReportFormatError(f"{position}: field '{label or key}' contains a NUL character")
        return value
    if value is None:
        if required:
            raise _missing(position, label or key)
        return ""
    raise _wrong_type(position, label or key, "a string")


def _check_unicode(value: str, position: str, label: str) -> None:
    """JSON can escape lone surrogates ("\\ud800") that no database text column or hash takes."""
    try:
        value.encode()
    except UnicodeEncodeError:
        failed = True
    else:
        failed = "\x00" in value
    if failed:
        raise ReportFormatError(f"{position}: field '{label}' is not valid text (a lone surrogate or NUL)")


def integer(
    obj: JSONObject, key: str, position: str, *, label: str = "", required: bool = False
) -> int | None:
    value = obj.get(key)
    # bool is an int in Python, but `true` is never a line number
    if isinstance(value, int) and not isinstance(value, bool):
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise ReportFormatError(f"{position}: field '{label or key}' is out of range")
        return value
    if value is None:
        if required:
            raise _missing(position, label or key)
        return None
    raise _wrong_type(position, label or key, "an integer")


def line_number(obj: JSONObject, key: str, position: str, *, label: str = "") -> int | None:
    """A 1-based line number; scanners write 0 when they have none."""
    value = integer(obj, key, position, label=label)
    return value if value is not None and value > 0 else None


def boolean(obj: JSONObject, key: str, position: str, *, label: str = "") -> bool:
    """A boolean field; False when absent or null."""
    value = obj.get(key)
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    raise _wrong_type(position, label or key, "true or false")


def sub_object(obj: JSONObject, key: str, position: str, *, label: str = "") -> JSONObject | None:
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise _wrong_type(position, label or key, "an object")


def array(
    obj: JSONObject, key: str, position: str, *, label: str = "", required: bool = False
) -> list[object]:
    value = obj.get(key)
    if isinstance(value, list):
        return value
    if value is None:
        if required:
            raise _missing(position, label or key)
        return []
    raise _wrong_type(position, label or key, "an array")


def timestamp(obj: JSONObject, key: str, position: str, *, label: str = "") -> datetime | None:
    """A date-time field as a timezone-aware datetime; None when absent, empty or Go's zero time."""
    raw = text(obj, key, position, label=label)
    if not raw:
        return None
    parsed = parse_timestamp(raw)
    if parsed is None:
        raise ReportFormatError(f"{position}: field '{label or key}' is not a date and time")
    # Go's zero time.Time ("0001-01-01T00:00:00Z"): gitleaks v7 writes it for files outside git history.
    if parsed.year == 1:
        return None
    return parsed


# Findings of one commit share its date: a 100,000-finding report holds far fewer distinct dates.
@lru_cache(maxsize=4096)
def parse_timestamp(raw: str) -> datetime | None:
    """ISO 8601 (gitleaks, GitHub) or Go's layout (TruffleHog); None when it is neither. A time without an
    offset is taken as UTC, which is what every scanner here means by one."""
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:  # its message quotes the input: handled below, outside the except block
        parsed = None
    if parsed is None:
        match = _GO_TIME.fullmatch(raw)
        if match is None:
            return None
        date, time, offset_hours, offset_minutes = match.groups()
        try:
            parsed = datetime.fromisoformat(f"{date}T{time}{offset_hours}:{offset_minutes}")
        except ValueError:  # e.g. month 13
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
