"""gitleaks JSON reports (`gitleaks detect --report-format json`): an array of findings, or `null` when none.

Two field sets exist and are told apart per item, since merged reports mix them:
- v8: RuleID, Secret, Match, File, StartLine, Commit, Date, Link, ...: `Secret` is the secret (the rule's
  secret group), `Match` the whole matched text, kept as context.
- v7: rule, offender, line, lineNumber, file, commit, repo, date, leakURL: v7 has no separate secret,
  `offender` is the rule's match (e.g. `GITHUB_TOKEN="c77e…"`) and is passed on verbatim, `line` is context.
"""

import functools
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from findings.parsers import fields
from findings.parsers.base import Entry, Location, ReportFormatError, ScannedSecret, Skipped
from findings.parsers.fields import JSONObject
from findings.parsers.json_stream import iter_array_items

SCANNER = "gitleaks"
# `--redact` replaces the secret with this; `--redact=N` (N < 100) keeps a prefix and appends "...".
_REDACTED = "REDACTED"
_PARTLY_REDACTED_SUFFIX = "..."


def parse(stream: BinaryIO) -> Iterator[Entry]:
    for index, item in iter_array_items(stream, report="gitleaks report", item="finding", allow_null=True):
        position = f"finding {index}"
        finding = fields.as_object(item, position)
        if "RuleID" in finding:
            yield _v8(finding, position)
        elif "rule" in finding or "offender" in finding:
            yield _v7(finding, position)
        else:
            raise ReportFormatError(f"{position}: not a gitleaks finding (no 'RuleID' or 'rule' field)")


PRIVATE_KEY_HEADER_ONLY = "gitleaks v7 reports only the header of a private key, not the key"


def v7_header_only(offender: str) -> str:
    """gitleaks v7's private-key rule matches only "-----BEGIN ... PRIVATE KEY-----": every key would
    share that one "secret" (one exposure for all of them, across teams), so such findings are skipped."""
    stripped = offender.strip()
    if stripped.startswith("-----BEGIN") and stripped.endswith("-----") and len(stripped) < 80:
        return PRIVATE_KEY_HEADER_ONLY
    return ""


def _skip_reason(secret: str) -> str:
    if not secret:
        return "the finding has an empty secret"
    if secret == _REDACTED:
        return "the secret is redacted in the report"
    if secret.endswith(_PARTLY_REDACTED_SUFFIX):
        return "the secret is partly redacted in the report"
    return ""


def _v8(finding: JSONObject, position: str) -> Entry:
    fast = v8_fast(finding, position)
    return fast if fast is not None else v8_checked(finding, position)


def v8_checked(finding: JSONObject, position: str) -> Entry:
    """A gitleaks v8 finding read field by field: every check, every message."""
    secret = fields.text(finding, "Secret", position, required=True)
    if reason := _skip_reason(secret):
        return Skipped(position=position, reason=reason)
    return ScannedSecret(
        position=position,
        scanner=SCANNER,
        detector=fields.text(finding, "RuleID", position, required=True),
        location=Location(
            path=fields.text(finding, "File", position, required=True),
            line=fields.line_number(finding, "StartLine", position),
            commit=fields.text(finding, "Commit", position),
            url=fields.text(finding, "Link", position),
        ),
        secret=secret,
        context=fields.text(finding, "Match", position),
        found_at=fields.timestamp(finding, "Date", position),
    )


_V8_TEXT = ("Secret", "RuleID", "File", "Commit", "Link", "Match", "Date")


def v8_fast(finding: JSONObject, position: str) -> ScannedSecret | None:
    """The common case read without a call per field (a 100,000-finding report spends its parse here):
    every text field a plain ASCII string or absent, the line a small positive integer. Anything else,
    None: `_v8` then reads it field by field, with the checks and the messages."""
    get = finding.get
    values: list[Any] = [value if (value := get(key)) is not None else "" for key in _V8_TEXT]
    try:
        joined = "".join(values)  # one check for all seven: a value that is not a string fails here
    except TypeError:
        return None
    if not joined.isascii() or "\x00" in joined:
        return None
    secret, rule, path, commit, link, match, date = cast(list[str], values)
    line = get("StartLine")
    if not secret or not rule or not path or _skip_reason(secret):
        return None
    if line is not None and (type(line) is not int or not 0 <= line <= fields.MAX_INTEGER):
        return None
    found_at = _timestamp(date) if date else None
    if date and found_at is None:
        return None
    return ScannedSecret(
        position=position,
        scanner=SCANNER,
        detector=rule,
        location=Location(path=path, line=line or None, commit=commit, url=link),
        secret=secret,
        context=match,
        found_at=None if found_at is None or found_at.year == 1 else found_at,
    )


# A report's findings share few commit dates (one per commit): parse each once.
_timestamp = functools.lru_cache(maxsize=4096)(fields.parse_timestamp)


def _v7(finding: JSONObject, position: str) -> Entry:
    secret = fields.text(finding, "offender", position, required=True)
    if reason := _skip_reason(secret) or v7_header_only(secret):
        return Skipped(position=position, reason=reason)
    repository = fields.text(finding, "repo", position)
    if repository in ("", "."):  # "." only says gitleaks ran in the current directory
        repository = fields.text(finding, "repoURL", position)
    return ScannedSecret(
        position=position,
        scanner=SCANNER,
        detector=fields.text(finding, "rule", position, required=True),
        location=Location(
            repository=repository,
            path=fields.text(finding, "file", position, required=True),
            line=fields.line_number(finding, "lineNumber", position),
            commit=fields.text(finding, "commit", position),
            url=fields.text(finding, "leakURL", position),
        ),
        secret=secret,
        context=fields.text(finding, "line", position),
        found_at=fields.timestamp(finding, "date", position),
    )
