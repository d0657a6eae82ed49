"""TruffleHog v3 `--json` output: JSON lines, one finding object per line.

`Raw` holds the secret. TruffleHog releases up to late 2022 marshalled it as Go `[]byte`, i.e. base64 (the
sample here); later ones write the plain string and add `DecoderName` (and, from 3.32, `RawV2`), which is how
the two are told apart. `RawV2` (id and secret joined, for multi-part credentials) is not used: `Raw` is the
identifier TruffleHog itself dedupes on, and what gitleaks reports for the same credential.

`Redacted` is display text that for many detectors (AWS key ids, for one) IS the raw secret: never used.
"""

import base64
import binascii
from collections.abc import Iterator
from typing import BinaryIO

from findings.parsers import fields
from findings.parsers.base import Entry, Location, ReportFormatError, ScannedSecret, Skipped
from findings.parsers.fields import JSONObject
from findings.parsers.json_stream import iter_json_lines

SCANNER = "trufflehog"
# Keys of SourceMetadata.Data.<source> across sources (Git, Github, Gitlab, Filesystem, S3, Docker, ...).
_REPOSITORY_KEYS = ("repository", "bucket", "image")


def parse(stream: BinaryIO) -> Iterator[Entry]:
    for line_number, value in iter_json_lines(stream, report="TruffleHog report"):
        position = f"line {line_number}"
        if isinstance(value, list):
            raise ReportFormatError(
                f"{position} is a JSON array: TruffleHog --json writes one object per line "
                "(is it another format?)"
            )
        finding = fields.as_object(value, position)
        if "DetectorName" not in finding and "SourceMetadata" not in finding:
            # Run in a terminal (docker -t), TruffleHog's own JSON log lines land in the same file.
            if "level" in finding and "msg" in finding:
                yield Skipped(position=position, reason="a TruffleHog log line, not a finding")
                continue
            raise ReportFormatError(f"{position}: not a TruffleHog v3 finding (no 'DetectorName' field)")
        yield _finding(finding, position)


def _finding(finding: JSONObject, position: str) -> Entry:
    detector = fields.text(finding, "DetectorName", position, required=True)
    raw = fields.text(finding, "Raw", position)
    plain = "DecoderName" in finding or "RawV2" in finding
    secret = raw if plain else _legacy_raw(raw)
    if not secret:
        secret = fields.text(finding, "RawV2", position)
    if not secret:
        return Skipped(position=position, reason="the finding carries no raw secret")
    verified = fields.boolean(finding, "Verified", position)
    source, source_label = _source_data(finding, position)
    location = Location()
    found_at = None
    if source is not None:
        repository = ""
        for key in _REPOSITORY_KEYS:
            repository = fields.text(source, key, position, label=f"{source_label}.{key}")
            if repository:
                break
        location = Location(
            repository=repository,
            path=fields.text(source, "file", position, label=f"{source_label}.file"),
            line=fields.line_number(source, "line", position, label=f"{source_label}.line"),
            commit=fields.text(source, "commit", position, label=f"{source_label}.commit"),
            url=fields.text(source, "link", position, label=f"{source_label}.link"),
        )
        found_at = fields.timestamp(source, "timestamp", position, label=f"{source_label}.timestamp")
    return ScannedSecret(
        position=position,
        scanner=SCANNER,
        detector=detector,
        location=location,
        secret=secret,
        # TruffleHog verifies against the provider; unverified means "not checked or not confirmed", not dead.
        validity="valid" if verified else "unknown",
        found_at=found_at,
    )


def _legacy_raw(raw: str) -> str:
    """The secret from a `Raw` written before TruffleHog dropped base64; `raw` itself when it cannot be base64
    of text (a release in between wrote plain strings without the DecoderName marker)."""
    decoded: str | None
    try:
        decoded = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = None
    if decoded is None or not all(char.isprintable() or char in "\r\n\t" for char in decoded):
        return raw
    return decoded


def _source_data(finding: JSONObject, position: str) -> tuple[JSONObject | None, str]:
    """The one object under SourceMetadata.Data, whichever source (Git, Github, Filesystem, ...) wrote it."""
    metadata = fields.sub_object(finding, "SourceMetadata", position)
    if metadata is None:
        return None, ""
    data = fields.sub_object(metadata, "Data", position, label="SourceMetadata.Data")
    if not data:
        return None, ""
    source_name = next(iter(data))
    # The key is a source type name ("Git"); anything else could be report content, so it is not repeated.
    shown = source_name if source_name.isidentifier() and len(source_name) <= 32 else "<source>"
    label = f"SourceMetadata.Data.{shown}"
    return fields.sub_object(data, source_name, position, label=label), label
