"""Incremental JSON reading for the parsers, with errors that name a place but never quote the input.

ijson's C backend (yajl) is what lets a 100,000-finding report parse at speed without being loaded whole.
Its error messages, like those of `json` and `datetime`, echo the text around the fault: a report is full
of secrets, so every failure here is re-raised as a `ReportFormatError` of our own wording, raised outside
the `except` block so that no input-quoting exception rides along as `__context__` into logs.
"""

import json
from collections.abc import Iterator
from typing import BinaryIO, Literal

import ijson  # type: ignore[import-untyped]  # ijson ships no type information

from findings.parsers.base import ReportFormatError

# "yajl2_c" when ijson's compiled backend is installed: the pure-Python fallback is about ten times slower.
BACKEND: str = ijson.backend
UTF8_BOM = b"\xef\xbb\xbf"
_PEEK_BYTES = 64 * 1024
# One TruffleHog finding is a few KiB; a longer "line" means the file is not JSON lines at all, and reading it
# whole would defeat streaming.
MAX_JSON_LINE_BYTES = 16 * 1024 * 1024
# yajl reports every parse failure, truncation included, as IncompleteJSONError (a JSONError).
_PARSE_ERRORS = (ijson.JSONError, ValueError, RecursionError)

Event = tuple[str, str, object]


class _TrackingReader:
    """Hands ijson the input chunk by chunk, counting newlines so a failure can name the lines it lies in."""

    def __init__(self, stream: BinaryIO, peeked: bytes) -> None:
        self._stream = stream
        self._peeked = peeked
        self._lines_before_chunk = 0
        self._lines_through_chunk = 0
        self._ends_with_newline = False
        self.at_eof = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to tell bytes from text
            return b""
        if self._peeked:
            chunk, self._peeked = self._peeked, b""
        else:
            chunk = self._stream.read(size)
        if not chunk:
            self.at_eof = True
            return b""
        self._lines_before_chunk = self._lines_through_chunk
        self._lines_through_chunk += chunk.count(b"\n")
        self._ends_with_newline = chunk.endswith(b"\n")
        return chunk

    def describe_failure(self, report: str) -> str:
        if self.at_eof:
            last_line = self._lines_through_chunk + (0 if self._ends_with_newline else 1)
            return f"the {report} ends before its JSON is complete (truncated after line {max(last_line, 1)})"
        first, last = self._lines_before_chunk + 1, self._lines_through_chunk + 1
        where = f"at line {first}" if first == last else f"between lines {first} and {last}"
        return f"the {report} is not valid JSON {where}"


def _open(
    stream: BinaryIO, *, expect: Literal["array", "object"], report: str, allow_null: bool
) -> _TrackingReader:
    """Check the top-level type before streaming, so that a report of another format is named as such.

    ijson would otherwise yield nothing for `items(..., "item")` over an object: the import would look empty.
    """
    peeked = b""
    while True:
        chunk = stream.read(_PEEK_BYTES)
        peeked += chunk
        if peeked.startswith(UTF8_BOM):  # editors on Windows add one; yajl rejects it
            peeked = peeked[len(UTF8_BOM) :]
        if not chunk or peeked.lstrip():
            break
    content = peeked.lstrip()
    if not content:
        raise ReportFormatError(f"the {report} is empty: expected a JSON {expect}")
    first = content[:1]
    found = {b"[": "array", b"{": "object", b"n": "null"}.get(first, "")
    if found == expect or (found == "null" and allow_null):
        return _TrackingReader(stream, peeked)
    described = {"array": "a JSON array", "object": "a JSON object", "null": "null"}.get(
        found, "neither a JSON array nor an object"
    )
    raise ReportFormatError(
        f"the {report} must be a JSON {expect}, found {described} (is it another format?)"
    )


def iter_array_items(
    stream: BinaryIO, *, report: str, item: str, allow_null: bool = False
) -> Iterator[tuple[int, object]]:
    """Yield (1-based index, value) for each element of a top-level JSON array, via ijson's C backend."""
    reader = _open(stream, expect="array", report=report, allow_null=allow_null)
    items = ijson.items(reader, "item", use_float=True)
    index = 0
    while True:
        failure = None
        try:
            value = next(items)
        except StopIteration:
            return
        except _PARSE_ERRORS:
            progress = f"after {item} {index}" if index else f"before {item} 1 was read"
            failure = f"{reader.describe_failure(report)}, {progress}"
        if failure is not None:
            raise ReportFormatError(failure)
        index += 1
        yield index, value


def iter_object_events(stream: BinaryIO, *, report: str) -> Iterator[Event]:
    """Yield ijson's (prefix, event, value) events for a top-level JSON object, for formats nested too deep
    for `ijson.items` (SARIF `runs[].results[]`, detect-secrets `results{file: [...]}`)."""
    reader = _open(stream, expect="object", report=report, allow_null=False)
    events = ijson.parse(reader, use_float=True)
    while True:
        failure = None
        try:
            event = next(events)
        except StopIteration:
            return
        except _PARSE_ERRORS:
            failure = reader.describe_failure(report)
        if failure is not None:
            raise ReportFormatError(failure)
        yield event


class ValueBuilder:
    """Assembles one JSON value from a run of events, so event-driven parsers hold one finding at a time."""

    def __init__(self, event: str, value: object) -> None:
        self._builder = ijson.ObjectBuilder()
        self._depth = 0
        self.done = False
        self.feed(event, value)

    def feed(self, event: str, value: object) -> bool:
        """Take the next event; True once the value is complete."""
        self._builder.event(event, value)
        if event in ("start_map", "start_array"):
            self._depth += 1
        elif event in ("end_map", "end_array"):
            self._depth -= 1
        self.done = self._depth == 0
        return self.done

    @property
    def value(self) -> object:
        return self._builder.value


def iter_json_lines(stream: BinaryIO, *, report: str) -> Iterator[tuple[int, object]]:
    """Yield (1-based line number, value) for each non-blank line of a JSON-lines report."""
    line_number = 0
    while True:
        line = stream.readline(MAX_JSON_LINE_BYTES + 1)
        if not line:
            return
        line_number += 1
        if len(line) > MAX_JSON_LINE_BYTES:
            raise ReportFormatError(
                f"line {line_number} of the {report} is longer than {MAX_JSON_LINE_BYTES} bytes "
                "(expected one JSON object per line)"
            )
        if line_number == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM) :]
        if not line.strip():
            continue
        column = 0
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            column = error.colno
        except (ValueError, RecursionError):  # invalid UTF-8, or nesting too deep
            column = -1
        if column:
            where = f"line {line_number}" + (f", column {column}" if column > 0 else "")
            hint = "" if line.endswith(b"\n") else " (the report may be truncated)"
            raise ReportFormatError(f"{where}: not valid JSON{hint}")
        yield line_number, value
