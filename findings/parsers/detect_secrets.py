"""detect-secrets baselines (`detect-secrets scan > .secrets.baseline`), 0.x and 1.x.

`results` maps each file name to a list of {type, filename, hashed_secret, is_verified, line_number?,
is_secret?}. The baseline never holds the secret, only its unsalted SHA-1: entries carry `secret=None` and
`scanner_sha1`. `is_secret` is set by `detect-secrets audit`: false means a person marked it a false positive.
The baseline is streamed event by event so a file with thousands of results is never held whole.
"""

import re
from collections.abc import Iterator
from typing import BinaryIO

from findings.parsers import fields
from findings.parsers.base import Entry, Location, ReportFormatError, ScannedSecret, Skipped
from findings.parsers.fields import JSONObject
from findings.parsers.json_stream import ValueBuilder, iter_object_events

SCANNER = "detect-secrets"
_REPORT = "detect-secrets baseline"
_SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")


def parse(stream: BinaryIO) -> Iterator[Entry]:
    baseline = _Baseline()
    for prefix, event, value in iter_object_events(stream, report=_REPORT):
        if baseline.builder is not None:
            if baseline.builder.feed(event, value):
                position = f"finding {baseline.index}"
                finding = fields.as_object(baseline.builder.value, position)
                baseline.builder = None
                yield _entry(finding, baseline.file_name, position)
        else:
            baseline.structure(prefix, event, value)


class _Baseline:
    """Where the event walk is: which file's list, how many findings so far, the finding being built."""

    def __init__(self) -> None:
        self.saw_results = False
        self.file_name = ""
        self.file_prefix = ""  # the event prefix of the current file's list: "results.<file name>"
        self.file_count = 0
        self.index = 0
        self.builder: ValueBuilder | None = None

    def structure(self, prefix: str, event: str, value: object) -> None:
        if prefix == "":
            if event == "end_map" and not self.saw_results:
                raise ReportFormatError(f"the {_REPORT} has no 'results' object (is it another format?)")
        elif prefix == "results":
            if event == "start_map":
                self.saw_results = True
            elif event == "map_key":
                self.file_name = str(value)
                self.file_count += 1
                self.file_prefix = f"results.{self.file_name}"
            elif event != "end_map":
                raise ReportFormatError(f"the {_REPORT}'s field 'results' must be an object")
        elif prefix == self.file_prefix:
            if event not in ("start_array", "end_array"):
                raise ReportFormatError(
                    f"the {_REPORT}'s results for file {self.file_count} must be an array"
                )
        elif prefix == f"{self.file_prefix}.item":
            self.index += 1
            if event != "start_map":
                raise ReportFormatError(f"finding {self.index} must be a JSON object")
            self.builder = ValueBuilder(event, value)


def _entry(finding: JSONObject, file_name: str, position: str) -> Entry:
    hashed = fields.text(finding, "hashed_secret", position, required=True)
    if not _SHA1_HEX.fullmatch(hashed):
        raise ReportFormatError(f"{position}: field 'hashed_secret' must be a SHA-1 hex digest")
    detector = fields.text(finding, "type", position, required=True)
    line = fields.line_number(finding, "line_number", position)
    verified = fields.boolean(finding, "is_verified", position)
    is_secret = finding.get("is_secret")
    if is_secret is not None and not isinstance(is_secret, bool):
        raise ReportFormatError(f"{position}: field 'is_secret' must be true or false")
    if is_secret is False:
        return Skipped(position=position, reason="marked not a secret in the baseline")
    return ScannedSecret(
        position=position,
        scanner=SCANNER,
        detector=detector,
        location=Location(path=fields.text(finding, "filename", position) or file_name, line=line),
        secret=None,
        scanner_sha1=hashed.lower(),
        # detect-secrets' verification (`--only-verified`/`audit`) only ever confirms; false means unchecked.
        validity="valid" if verified else "unknown",
    )
