"""The ingest endpoint's upload handler: a report is encrypted as it arrives, never written in the clear.

Django's own handlers would keep an upload in memory (small) or write it to a named temporary file in the
clear (large). This one encrypts each chunk as it is received into an unnamed temporary file
(`findings.pending_files`), so a report full of raw secrets reaches no disk unencrypted and is never held
whole in memory.
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

from django.core.files.uploadhandler import FileUploadHandler

from findings.pending_files import EncryptedUpload, EncryptingWriter


class EncryptingUploadHandler(FileUploadHandler):
    chunk_size = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink: IO[bytes] | None = None
        self._writer: EncryptingWriter | None = None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._sink = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the upload, closed with the request)
        self._writer = EncryptingWriter(self._sink)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        assert self._writer is not None
        self._writer.write(raw_data)
        return None  # consumed: no later handler sees the chunk

    def file_complete(self, file_size: int) -> EncryptedUpload:
        assert self._writer is not None
        assert self._sink is not None
        self._writer.close()
        upload = EncryptedUpload(
            ciphertext=self._sink,
            name=self.file_name or "",
            size=self._writer.size,
            sha256=self._writer.digest.hexdigest(),
            content_type=self.content_type or "application/octet-stream",
        )
        self._sink, self._writer = None, None
        return upload

    def upload_interrupted(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink, self._writer = None, None
