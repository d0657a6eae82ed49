"""secretlint's JSON formatter output (`secretlint --format json`): an array of per-file results.

Each result is {filePath, sourceContent, messages: [{ruleId, range: [start, end], loc, ...}]}. The
message text and `data` are masked; the secret is `sourceContent[start:end]`. secretlint runs on Node, so
`range` counts UTF-16 code units, which differ from Python's code points once a file holds characters
outside the Basic Multilingual Plane (emoji): those files are sliced through their UTF-16 encoding.
"""

import re
from collections.abc import Iterator
from typing import BinaryIO, TypeGuard

from findings.parsers import fields
from findings.parsers.base import Entry, Location, ReportFormatError, ScannedSecret, Skipped
from findings.parsers.fields import JSONObject
from findings.parsers.json_stream import iter_array_items

SCANNER = "secretlint"
_AWS_QUOTE = "[\"']?"
_AWS_CONNECT = r"\s*(?::|=>|=)\s*"
# secretlint-rule-aws reports a range that starts at `aws_secret_access_key = ` rather than at the key: the
# whole assignment in older releases, the key's length from the assignment's start in newer ones. Its own
# patterns, anchored at the reported start, recover the key; a range already on the key does not match them.
_RANGE_FIXES: dict[str, tuple[re.Pattern[str], ...]] = {
    "@secretlint/secretlint-rule-aws": (
        re.compile(
            rf"{_AWS_QUOTE}(?:AWS|aws|Aws)?_?(?:SECRET|secret|Secret)?_?(?:ACCESS|access|Access)?_?(?:KEY|key|Key)"
            rf"{_AWS_QUOTE}{_AWS_CONNECT}{_AWS_QUOTE}([A-Za-z0-9/+=]{{40}})"
        ),
        re.compile(
            rf"{_AWS_QUOTE}(?:AWS|aws|Aws)?_?(?:ACCOUNT|account|Account)_?(?:ID|id|Id)?{_AWS_QUOTE}{_AWS_CONNECT}"
            rf"{_AWS_QUOTE}([0-9]{{4}}-?[0-9]{{4}}-?[0-9]{{4}})"
        ),
    ),
}


class _Source:
    """One file's content, with secretlint's UTF-16 offsets mapped to Python string indexes."""

    def __init__(self, content: str) -> None:
        self.content = content
        self._utf16: bytes | None = None
        if not content.isascii():
            encoded = content.encode("utf-16-le", "surrogatepass")
            if len(encoded) // 2 != len(content):  # only astral characters take two code units
                self._utf16 = encoded
        self.length = len(content) if self._utf16 is None else len(self._utf16) // 2

    def index(self, utf16_offset: int) -> int:
        if self._utf16 is None:
            return utf16_offset
        return len(self._utf16[: 2 * utf16_offset].decode("utf-16-le", "surrogatepass"))


def parse(stream: BinaryIO) -> Iterator[Entry]:
    for file_index, item in iter_array_items(stream, report="secretlint report", item="file"):
        file_position = f"file {file_index}"
        result = fields.as_object(item, file_position)
        if "filePath" not in result or "messages" not in result:
            raise ReportFormatError(
                f"{file_position}: not a secretlint result (no 'filePath' or 'messages' field)"
            )
        path = fields.text(result, "filePath", file_position, required=True)
        messages = fields.array(result, "messages", file_position, required=True)
        content = fields.text(result, "sourceContent", file_position)
        source = _Source(content) if result.get("sourceContent") is not None and messages else None
        for message_index, message in enumerate(messages, start=1):
            position = f"{file_position}, message {message_index}"
            yield _entry(fields.as_object(message, position), path, source, position)


def _entry(message: JSONObject, path: str, source: _Source | None, position: str) -> Entry:
    detector = fields.text(message, "ruleId", position, required=True)
    start, end = _range(message, position)
    if source is None:
        return Skipped(position=position, reason="the report does not include the file's content")
    if end > source.length:
        raise ReportFormatError(f"{position}: field 'range' lies outside the file's content")
    content = source.content
    first, last = source.index(start), source.index(end)
    for pattern in _RANGE_FIXES.get(detector, ()):
        if match := pattern.match(content, first):
            first, last = match.span(1)
            break
    secret = content[first:last]
    if not secret:
        return Skipped(position=position, reason="the message marks an empty range")
    if not secret.strip("*"):
        return Skipped(position=position, reason="the secret is masked in the report")
    line_start = content.rfind("\n", 0, first) + 1
    line_end = content.find("\n", last)
    return ScannedSecret(
        position=position,
        scanner=SCANNER,
        detector=detector,
        location=Location(path=path, line=content.count("\n", 0, first) + 1),
        secret=secret,
        context=content[line_start : len(content) if line_end < 0 else line_end],
    )


def _range(message: JSONObject, position: str) -> tuple[int, int]:
    bounds = fields.array(message, "range", position, required=True)
    if len(bounds) == 2:
        start, end = bounds
        if _is_offset(start) and _is_offset(end) and start <= end:
            return start, end
    raise ReportFormatError(f"{position}: field 'range' must be two offsets [start, end] with start <= end")


def _is_offset(value: object) -> TypeGuard[int]:
    # bool is an int in Python, but `true` is never an offset
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
