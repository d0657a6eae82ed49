"""GitHub secret scanning alerts, as the REST API lists them: a JSON array of alert objects
(`GET /repos/{owner}/{repo}/secret-scanning/alerts`, or the organization and enterprise variants).

GitHub tracks its own state: a resolved alert is passed on as `resolved_at_source` with its resolution, so the
import can record it rather than open a case for a secret someone already revoked. Repository-level listings
omit the `repository` object; the repository is then read from the alert's `html_url`.
"""

import re
from collections.abc import Iterator
from typing import BinaryIO

from findings.parsers import fields
from findings.parsers.base import Entry, Location, ReportFormatError, ScannedSecret, Skipped, Validity
from findings.parsers.fields import JSONObject
from findings.parsers.json_stream import iter_array_items

SCANNER = "github-secret-scanning"
_VALIDITY: dict[str, Validity] = {"active": "valid", "inactive": "invalid", "unknown": "unknown"}
_STATES = ("open", "resolved")
# https://github.com/OWNER/REPO/security/secret-scanning/NUMBER (or the same on a GitHub Enterprise host)
_ALERT_URL = re.compile(r"(https?://[^/\s]+/[^/\s]+/[^/\s]+)/security/secret-scanning/\d+/?")


def parse(stream: BinaryIO) -> Iterator[Entry]:
    for index, item in iter_array_items(stream, report="GitHub secret scanning alert list", item="alert"):
        position = f"alert {index}"
        alert = fields.as_object(item, position)
        if "secret_type" not in alert:
            raise ReportFormatError(
                f"{position}: not a GitHub secret scanning alert (no 'secret_type' field)"
            )
        yield _alert(alert, position)


def _alert(alert: JSONObject, position: str) -> Entry:
    detector = fields.text(alert, "secret_type", position, required=True)
    state = fields.text(alert, "state", position, required=True)
    if state not in _STATES:
        raise ReportFormatError(f"{position}: field 'state' must be 'open' or 'resolved'")
    validity = fields.text(alert, "validity", position) or "unknown"
    if validity not in _VALIDITY:
        raise ReportFormatError(f"{position}: field 'validity' must be 'active', 'inactive' or 'unknown'")
    resolution = fields.text(alert, "resolution", position)
    resolved_at = fields.timestamp(alert, "resolved_at", position)
    found_at = fields.timestamp(alert, "created_at", position)
    html_url = fields.text(alert, "html_url", position)
    location = _location(alert, html_url, position)
    secret = fields.text(alert, "secret", position)
    if not secret:
        # The list omits the secret when the token may read alerts but not secret contents.
        return Skipped(position=position, reason="the alert does not include the secret")
    resolved = state == "resolved"
    return ScannedSecret(
        position=position,
        scanner=SCANNER,
        detector=detector,
        location=location,
        secret=secret,
        validity=_VALIDITY[validity],
        found_at=found_at,
        resolved_at_source=resolved,
        resolved_at=resolved_at if resolved else None,
        source_state=(f"resolved: {resolution}" if resolution else "resolved") if resolved else "open",
    )


def _location(alert: JSONObject, html_url: str, position: str) -> Location:
    repository = ""
    repo = fields.sub_object(alert, "repository", position)
    if repo is not None:
        repository = fields.text(repo, "html_url", position, label="repository.html_url")
    if not repository and (match := _ALERT_URL.fullmatch(html_url)):
        repository = match[1]
    first = fields.sub_object(alert, "first_location_detected", position) or {}
    label = "first_location_detected"
    # Only commit locations have a path; issue, discussion and wiki locations carry URLs of their own.
    return Location(
        repository=repository,
        path=fields.text(first, "path", position, label=f"{label}.path"),
        line=fields.line_number(first, "start_line", position, label=f"{label}.start_line"),
        commit=fields.text(first, "commit_sha", position, label=f"{label}.commit_sha"),
        url=html_url,
    )
