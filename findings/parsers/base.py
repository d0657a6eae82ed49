"""What every scanner report parser yields: findings with the secret still in memory, never persisted.

A parser reads a binary stream incrementally (a 100,000-finding report is never loaded whole) and yields,
in report order, either a `ScannedSecret` or a `Skipped` entry. It raises `ReportFormatError` for input
that is malformed or not of its format; the message names the line, item or field, and NEVER quotes the
input (a report is full of secrets, and error text ends up in logs and on screens).

The raw secret lives only in `ScannedSecret.secret` (and in `context`, unscrubbed) for as long as the
import service needs it to compute the fingerprint, the preview and the scrubbed context.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Literal, Protocol

Validity = Literal["valid", "invalid", "unknown"]


class ReportFormatError(ValueError):
    """The report is malformed or of another format. The message names where; it never quotes input."""


@dataclass(slots=True)  # not frozen: frozen dataclasses cost twice as much to build, per finding
class Location:
    """Where a secret was found. Empty strings / None where the scanner does not say."""

    repository: str = ""
    path: str = ""
    line: int | None = None
    commit: str = ""
    url: str = ""


@dataclass(slots=True)  # not frozen: frozen dataclasses cost twice as much to build, per finding
class ScannedSecret:
    position: str  # where in the report, for messages: "line 12", "finding 3", "results[4]"
    scanner: str  # the tool that found it: "gitleaks", "trufflehog", "detect-secrets", "secretlint", ...
    detector: str  # the scanner's rule or detector name, e.g. "aws-access-token", "AWS"
    location: Location
    # The raw secret, or None when the report carries only the scanner's own hash (detect-secrets).
    secret: str | None = None
    # detect-secrets' `hashed_secret` (SHA-1 hex of the secret), when that is all the report carries.
    scanner_sha1: str | None = None
    validity: Validity = "unknown"
    # The line or snippet around the secret, UNSCRUBBED: the service replaces the secret before saving.
    context: str = ""
    found_at: datetime | None = None  # when the scanner says the secret appeared (commit date, alert date)
    # The source's own state, when it tracks one (GitHub alerts): resolved there, and when and why.
    resolved_at_source: bool = False
    resolved_at: datetime | None = None
    source_state: str = ""  # e.g. "resolved: revoked"


@dataclass(slots=True)  # not frozen: frozen dataclasses cost twice as much to build, per finding
class Skipped:
    position: str
    reason: str  # a short, stable sentence: counted by reason in the import summary


Entry = ScannedSecret | Skipped


class Parser(Protocol):
    def __call__(self, stream: BinaryIO) -> Iterator[Entry]: ...
