"""Scanner reports waiting for a background import, encrypted at rest.

A report is full of raw secrets, so it is never written anywhere in the clear: the API encrypts it as it
arrives (`findings/api/uploads.py`) into an unnamed temporary file, and a report too large to import during
the request is copied, still encrypted, to the default storage until its job has run; then it is deleted.

Format (version 1): `MAGIC`, a random 16-byte salt, then records of at most `RECORD_BYTES` of plaintext,
each `final flag (1 byte) | length (4 bytes, big-endian) | AES-256-GCM ciphertext and tag`. The file's key
is HKDF-SHA256(master, salt, info=`INFO`), where the master key is `FINDINGS_INGEST_KEY` or, when that is
not set, `SECRET_KEY`; a fresh salt gives every file its own key. Record i is sealed under the nonce
`i (11 bytes) | final flag`, with the header as associated data (the STREAM construction): records cannot be
reordered, dropped, cut short or moved to another file without decryption failing. Plaintext is handled one
record at a time, so a large report is never held whole in memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
import uuid
from typing import IO, TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAGIC = b"NHIPF\x01"
SALT_BYTES = 16
HEADER_BYTES = len(MAGIC) + SALT_BYTES
RECORD_BYTES = 64 * 1024
TAG_BYTES = 16
RECORD_HEADER = struct.Struct(">BI")
INFO = b"nhi-portal findings pending report v1"
STORAGE_DIRECTORY = "findings/pending"


class PendingFileError(Exception):
    """The pending report cannot be read back; the message is safe to show (it quotes nothing)."""


def _cipher(salt: bytes) -> AESGCM:
    master = (settings.FINDINGS_INGEST_KEY or settings.SECRET_KEY).encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO).derive(master)
    return AESGCM(key)


def _nonce(index: int, *, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class EncryptingWriter:
    """Encrypts what is written to it into `sink`, record by record; `close()` seals the last record.

    Keeps the SHA-256 and size of the plaintext, which are the report's own.
    """

    def __init__(self, sink: IO[bytes]) -> None:
        salt = os.urandom(SALT_BYTES)
        self.sink, self.header = sink, MAGIC + salt
        self.cipher = _cipher(salt)
        self.digest, self.size = hashlib.sha256(), 0
        self._index = 0
        self._buffer = bytearray()
        self._closed = False
        sink.write(self.header)

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("The pending report was already sealed.")
        self.digest.update(data)
        self.size += len(data)
        self._buffer += data
        # Strictly more than a record: the last bytes are kept for the final record, sealed by close().
        while len(self._buffer) > RECORD_BYTES:
            self._seal(bytes(self._buffer[:RECORD_BYTES]), final=False)
            del self._buffer[:RECORD_BYTES]

    def close(self) -> None:
        if not self._closed:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True

    def _seal(self, chunk: bytes, *, final: bool) -> None:
        sealed = self.cipher.encrypt(_nonce(self._index, final=final), chunk, self.header)
        self.sink.write(RECORD_HEADER.pack(int(final), len(sealed)))
        self.sink.write(sealed)
        self._index += 1


class _DecryptingReader(io.RawIOBase):
    """The plaintext of an encrypted report, read record by record. Does not close its source."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self.source = source
        self.header = self._exactly(HEADER_BYTES)
        if not self.header.startswith(MAGIC):
            raise PendingFileError("The pending report is not in the expected format.")
        self.cipher = _cipher(self.header[len(MAGIC) :])
        self._index, self._record, self._offset, self._done = 0, b"", 0, False

    def _exactly(self, size: int) -> bytes:
        data = self.source.read(size)
        if len(data) != size:
            raise PendingFileError("The pending report is cut short.")
        return data

    def _next_record(self) -> None:
        final, length = RECORD_HEADER.unpack(self._exactly(RECORD_HEADER.size))
        if final not in (0, 1) or not TAG_BYTES <= length <= RECORD_BYTES + TAG_BYTES:
            raise PendingFileError("The pending report is damaged.")
        try:
            self._record = self.cipher.decrypt(
                _nonce(self._index, final=bool(final)), self._exactly(length), self.header
            )
        except InvalidTag:
            raise PendingFileError(
                "The pending report cannot be decrypted: it was altered, or the key changed since its upload."
            ) from None
        self._index, self._offset, self._done = self._index + 1, 0, bool(final)
        if self._done and self.source.read(1):
            raise PendingFileError("The pending report has data after its end.")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while self._offset >= len(self._record):
            if self._done:
                return 0
            self._next_record()
        count = min(len(view), len(self._record) - self._offset)
        view[:count] = self._record[self._offset : self._offset + count]
        self._offset += count
        return count


def decrypted(source: IO[bytes]) -> io.BufferedReader:
    """A binary stream (read, readline, iteration) of the report encrypted in `source`, from its start."""
    return io.BufferedReader(_DecryptingReader(source), buffer_size=RECORD_BYTES)


class EncryptedUpload(UploadedFile):
    """An uploaded report, encrypted in `file` (an unnamed temporary file) as it arrived.

    `size` and `sha256` are the report's own; reading the file itself gives ciphertext, which is what
    `pending_file_save` copies to the storage. `plaintext()` decrypts it.
    """

    def __init__(
        self, *, ciphertext: IO[bytes], name: str, size: int, sha256: str, content_type: str
    ) -> None:
        super().__init__(file=ciphertext, name=name, content_type=content_type, size=size)
        self.ciphertext, self.sha256 = ciphertext, sha256

    def plaintext(self) -> io.BufferedReader:
        self.ciphertext.seek(0)
        return decrypted(self.ciphertext)

    @classmethod
    def from_bytes(
        cls, content: bytes, *, name: str, content_type: str = "application/json"
    ) -> EncryptedUpload:
        """A report already in memory (a test, a script), encrypted as the upload handler would."""
        sink = tempfile.TemporaryFile()  # noqa: SIM115 (owned by the upload, closed with it)
        writer = EncryptingWriter(sink)
        writer.write(content)
        writer.close()
        return cls(
            ciphertext=sink,
            name=name,
            size=writer.size,
            sha256=writer.digest.hexdigest(),
            content_type=content_type,
        )


def pending_file_save(upload: EncryptedUpload) -> str:
    """Copy the encrypted report to the default storage; returns its storage name."""
    upload.ciphertext.seek(0)
    return default_storage.save(f"{STORAGE_DIRECTORY}/{uuid.uuid4().hex}.enc", upload)


def pending_file_open(name: str) -> IO[bytes]:
    """The encrypted file as stored (ciphertext): pass it to `decrypted()`."""
    try:
        return default_storage.open(name, "rb")
    except FileNotFoundError:
        raise PendingFileError("The pending report is missing from the storage.") from None


def pending_file_check(name: str, *, sha256: str) -> None:
    """Decrypt the whole file once and compare it with the upload's SHA-256; raises PendingFileError.

    Done before the import, so that an altered file or a changed key fails the job with a clear reason
    rather than midway through parsing.
    """
    digest = hashlib.sha256()
    with pending_file_open(name) as stored, decrypted(stored) as stream:
        while chunk := stream.read(RECORD_BYTES):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise PendingFileError("The pending report is not the one uploaded: its SHA-256 differs.")


def pending_file_delete(name: str) -> None:
    default_storage.delete(name)
