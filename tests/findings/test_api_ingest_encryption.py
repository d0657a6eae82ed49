"""The pending report's encryption at rest (findings/pending_files.py) and the upload handler behind it."""

import hashlib
import io
from typing import Any

import pytest

from findings.api.uploads import EncryptingUploadHandler
from findings.pending_files import (
    HEADER_BYTES,
    MAGIC,
    RECORD_BYTES,
    RECORD_HEADER,
    TAG_BYTES,
    EncryptingWriter,
    PendingFileError,
    decrypted,
)
from tests.findings.reports import AWS_SECRET
from tests.portal.test_settings import manage, production_env

SECRET = AWS_SECRET.encode()


def encrypt(content: bytes, *, pieces: int = 1) -> bytes:
    sink = io.BytesIO()
    writer = EncryptingWriter(sink)
    step = max(1, len(content) // pieces)
    for start in range(0, len(content), step):
        writer.write(content[start : start + step])
    writer.close()
    return sink.getvalue()


def records(ciphertext: bytes) -> list[bytes]:
    """The file's records, each with its own header."""
    found, offset = [], HEADER_BYTES
    while offset < len(ciphertext):
        _, length = RECORD_HEADER.unpack_from(ciphertext, offset)
        end = offset + RECORD_HEADER.size + length
        found.append(ciphertext[offset:end])
        offset = end
    return found


def lines_report(count: int) -> bytes:
    return b"".join(b'{"n": %d, "secret": "%s"}\n' % (n, SECRET) for n in range(count))


def test_a_report_of_many_records_reads_back_exactly() -> None:
    content = lines_report(8000)  # about 6 records
    assert len(content) > 4 * RECORD_BYTES

    assert decrypted(io.BytesIO(encrypt(content, pieces=37))).read() == content


def test_the_plaintext_reads_back_line_by_line() -> None:
    content = lines_report(3000)

    assert list(decrypted(io.BytesIO(encrypt(content)))) == content.splitlines(keepends=True)


def test_an_empty_report_reads_back_empty() -> None:
    assert decrypted(io.BytesIO(encrypt(b""))).read() == b""


def test_a_report_of_exactly_one_record_reads_back() -> None:
    content = b"x" * RECORD_BYTES

    assert decrypted(io.BytesIO(encrypt(content))).read() == content


def test_the_secret_is_not_in_the_ciphertext() -> None:
    ciphertext = encrypt(lines_report(100))

    assert SECRET not in ciphertext
    assert ciphertext.startswith(MAGIC)


def test_the_same_report_encrypts_differently_each_time() -> None:
    content = lines_report(10)

    assert encrypt(content)[HEADER_BYTES:] != encrypt(content)[HEADER_BYTES:]


def test_the_writer_keeps_the_reports_own_digest_and_size() -> None:
    content = lines_report(500)
    writer = EncryptingWriter(io.BytesIO())
    writer.write(content)
    writer.close()

    assert writer.size == len(content)
    assert writer.digest.hexdigest() == hashlib.sha256(content).hexdigest()


def test_writing_after_the_last_record_is_refused() -> None:
    writer = EncryptingWriter(io.BytesIO())
    writer.close()

    with pytest.raises(ValueError, match="sealed"):
        writer.write(b"more")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip a byte", "cannot be decrypted"),
        ("drop the last record", "cut short"),
        ("swap two records", "cannot be decrypted"),
        ("append data", "after its end"),
        ("another file's header", "cannot be decrypted"),
        ("not a pending file", "expected format"),
    ],
)
def test_an_altered_file_is_refused(damage: str, message: str) -> None:
    ciphertext = encrypt(lines_report(3000))
    header, parts = ciphertext[:HEADER_BYTES], records(ciphertext)
    assert len(parts) >= 3
    if damage == "flip a byte":
        altered = bytearray(ciphertext)
        altered[HEADER_BYTES + RECORD_HEADER.size + 5] ^= 1
        ciphertext = bytes(altered)
    elif damage == "drop the last record":
        ciphertext = header + b"".join(parts[:-1])
    elif damage == "swap two records":
        ciphertext = header + parts[1] + parts[0] + b"".join(parts[2:])
    elif damage == "append data":
        ciphertext += b"\x00"
    elif damage == "another file's header":
        ciphertext = encrypt(b"other")[:HEADER_BYTES] + b"".join(parts)
    else:
        ciphertext = b"[" + ciphertext[1:]

    with pytest.raises(PendingFileError, match=message):
        decrypted(io.BytesIO(ciphertext)).read()


def test_a_record_length_out_of_range_is_refused() -> None:
    ciphertext = encrypt(b"abc")
    forged = ciphertext[:HEADER_BYTES] + RECORD_HEADER.pack(1, RECORD_BYTES + TAG_BYTES + 1)

    with pytest.raises(PendingFileError, match="damaged"):
        decrypted(io.BytesIO(forged)).read()


def test_the_key_comes_from_the_dedicated_setting_when_there_is_one(settings: Any) -> None:
    settings.FINDINGS_INGEST_KEY = "a-dedicated-ingest-key-" + "k" * 20
    ciphertext = encrypt(b"report")

    settings.FINDINGS_INGEST_KEY = ""  # back to the key derived from SECRET_KEY
    with pytest.raises(PendingFileError, match="key changed"):
        decrypted(io.BytesIO(ciphertext)).read()


def test_the_upload_handler_encrypts_each_chunk_as_it_arrives() -> None:
    handler = EncryptingUploadHandler()
    handler.new_file("file", "report.json", "application/json", None)
    content = lines_report(2000)
    for start in range(0, len(content), handler.chunk_size):
        assert handler.receive_data_chunk(content[start : start + handler.chunk_size], start) is None

    upload = handler.file_complete(len(content))

    upload.ciphertext.seek(0)
    assert SECRET not in upload.ciphertext.read()
    assert (upload.name, upload.size) == ("report.json", len(content))
    assert upload.plaintext().read() == content
    upload.close()


def test_a_short_dedicated_key_stops_start_up_naming_it(tmp_path: Any) -> None:
    result = manage(production_env(tmp_path, FINDINGS_INGEST_KEY="short"), "check")

    assert result.returncode != 0
    assert "FINDINGS_INGEST_KEY must be at least 32 characters" in result.stderr


def test_a_cache_url_that_is_not_redis_stops_start_up_naming_it(tmp_path: Any) -> None:
    result = manage(production_env(tmp_path, CACHE_URL="memcached://cache:11211"), "check")

    assert result.returncode != 0
    assert "CACHE_URL='memcached://cache:11211' is not a Redis URL" in result.stderr
