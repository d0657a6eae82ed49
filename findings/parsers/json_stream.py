"""Incremental JSON reading for the parsers, with errors that name a place but never quote the input.

ijson's C backend (yajl) is what lets a 100,000-finding report parse at speed without being loaded whole.
Its error messages, like those of `json` and `datetime`, echo the text around the fault: a report is full
of secrets, so every failure here is re-raised as a `ReportFormatError` of our own wording, raised outside
the `except` block so that no input-quoting exception rides along as `__context__` into logs.
"""

import codecs
import json
import re
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

    def take_peeked(self) -> bytes:
        """The bytes read to check the top-level type, for a reader of its own to start from."""
        peeked, self._peeked = self._peeked, b""
        return peeked

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


_CHUNK_CHARACTERS = 1024 * 1024
# An element of a report (one finding, one secretlint file with its source) is far smaller; an "element"
# still incomplete at this size is malformed JSON, and reading on would hold the whole file.
MAX_ITEM_CHARACTERS = 32 * 1024 * 1024


class _ArrayReader:
    """The text of a top-level JSON array, decoded chunk by chunk, with the lines already let go of."""

    def __init__(self, stream: BinaryIO, peeked: bytes) -> None:
        self._stream = stream
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._pending = peeked
        self.text = ""
        self.lines_dropped = 0
        self.at_eof = False

    def more(self, position: int) -> int:
        """Drop the text before `position`, append the next chunk; the new position of the same place."""
        self.lines_dropped += self.text.count("\n", 0, position)
        data, self._pending = self._pending or self._stream.read(_CHUNK_CHARACTERS), b""
        if not data:
            self.at_eof = True
        self.text = self.text[position:] + self._utf8.decode(data, final=self.at_eof)
        return 0

    def line_at(self, position: int) -> int:
        return self.lines_dropped + self.text.count("\n", 0, position) + 1


def iter_array_items(
    stream: BinaryIO, *, report: str, item: str, allow_null: bool = False
) -> Iterator[tuple[int, object]]:
    """Yield (1-based index, value) for each element of a top-level JSON array, one element at a time.

    The standard library's C scanner decodes each element (`raw_decode`), twice as fast as ijson's event
    stream for arrays of objects; only the current chunk and element are in memory.
    """
    reader_check = _open(stream, expect="array", report=report, allow_null=allow_null)
    reader = _ArrayReader(stream, reader_check.take_peeked())
    index, position, failure = 0, 0, ""
    try:
        position = reader.more(0)
        position = _skip_space(reader, position)
        if reader.text.startswith("null", position):
            return  # gitleaks writes null when it found nothing (only reached with allow_null)
        position += 1  # the "[" that _open checked
        expect_comma = False
        while True:
            position = _skip_space(reader, position)
            if position >= len(reader.text):
                failure = _truncated(reader, report)
                break
            character = reader.text[position]
            if character == "]":
                position = _skip_space(reader, position + 1)
                if position < len(reader.text):
                    failure = (
                        f"the {report} has content after its JSON array, at line {reader.line_at(position)}"
                    )
                return
            if expect_comma:
                if character != ",":
                    failure = f"the {report} is not valid JSON at line {reader.line_at(position)}"
                    break
                position = _skip_space(reader, position + 1)
            value, position, failure = _element(reader, position, report)
            if failure:
                break
            index += 1
            expect_comma = True
            yield index, value
    except UnicodeDecodeError:
        failure = f"the {report} is not valid UTF-8 (from line {reader.lines_dropped + 1} on)"
    finally:
        if failure:
            progress = f"after {item} {index}" if index else f"before {item} 1 was read"
            raise ReportFormatError(f"{failure}, {progress}")


_DECODER = json.JSONDecoder()
_SPACE_RUN = re.compile(r"[ \t\r\n]*")  # JSON's whitespace


def _skip_space(reader: _ArrayReader, position: int) -> int:
    while True:
        position = _SPACE_RUN.match(reader.text, position).end()  # type: ignore[union-attr]  # "*" always matches
        if position < len(reader.text) or reader.at_eof:
            return position
        position = reader.more(position)


def _truncated(reader: _ArrayReader, report: str) -> str:
    last_line = reader.line_at(len(reader.text)) - (1 if reader.text.endswith("\n") else 0)
    return f"the {report} ends before its JSON is complete (truncated after line {max(last_line, 1)})"


def _element(reader: _ArrayReader, position: int, report: str) -> tuple[object, int, str]:
    """Decode the element at `position`, reading on while it is cut by the end of the chunk."""
    while True:
        error_at = -1
        try:
            value, end = _DECODER.raw_decode(reader.text, position)
        except json.JSONDecodeError as error:
            error_at = error.pos
        except RecursionError:
            return None, position, f"the {report} nests too deep at line {reader.line_at(position)}"
        # A value that ends exactly at the end of the text may be a number cut in two: read on to be sure.
        if error_at < 0 and (end < len(reader.text) or reader.at_eof):
            return value, end, ""
        if reader.at_eof:
            if error_at >= 0 and reader.text[position:].rstrip().endswith("]"):
                return None, position, f"the {report} is not valid JSON at line {reader.line_at(error_at)}"
            return None, position, _truncated(reader, report)
        if len(reader.text) - position > MAX_ITEM_CHARACTERS:
            return None, position, f"the {report} is not valid JSON at line {reader.line_at(error_at)}"
        position = reader.more(position)


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
