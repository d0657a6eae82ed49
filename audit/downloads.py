"""The evidence bundle as an HTTP download, shared by the API and the admin.

Plain Django: the admin is loaded in every process (admin autodiscovery at start-up), so what it imports must
not pull in the API stack.
"""

import tempfile

from django.http import FileResponse

from audit.bundle import BundleSummary, evidence_bundle_export
from portal.permissions import Actor


def bundle_download(*, actor: Actor, case_id: int) -> tuple[FileResponse, BundleSummary]:
    """Export the bundle into a temporary file and answer with it (the API's and the admin's download).

    The headers name the bundle's SHA-256 and the signing key, to compare with the one obtained out of band.
    """
    # Not a `with`: the response closes (and so deletes) it once the download is sent.
    scratch = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        summary = evidence_bundle_export(actor=actor, case_id=case_id, output=scratch)
    except BaseException:
        scratch.close()
        raise
    scratch.seek(0)
    response = FileResponse(
        scratch, as_attachment=True, filename=summary.filename, content_type="application/zip"
    )
    response["X-Bundle-SHA256"] = summary.sha256
    response["X-Bundle-Public-Key"] = summary.public_key.hex
    response["X-Bundle-Key-Fingerprint"] = summary.public_key.fingerprint
    return response, summary
