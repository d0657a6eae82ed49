"""`GET /api/v1/cases/{id}/evidence-bundle/`: the case's signed evidence bundle, as a zip download.

Who may not export is refused before anything is read (403: owners and outsiders lack the permission);
a case the caller cannot see, or no case, is a 404, as everywhere in the API. The bundle is built into a
temporary file (evidence files can be large) and streamed from there.
"""

from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from audit.downloads import bundle_download
from audit.models import EXPORT_PERMISSION
from cases.selectors import case_list
from portal.api.filters import MAX_ID
from portal.api.permissions import require_perm
from portal.api.schema import error_responses

MayExportBundles = require_perm(EXPORT_PERMISSION, to="export evidence bundles")


class ZipRenderer(BaseRenderer):
    """Lets a client ask for `application/zip`; the view returns the file itself, errors keep their JSON."""

    media_type = "application/zip"
    format = "zip"
    charset = None
    render_style = "binary"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


def _case_id(segment: str) -> int | None:
    """The path segment as a row id, or None (any segment reaches the view, so a bad one is a JSON 404)."""
    if not (segment.isascii() and segment.isdigit()):
        return None
    value = int(segment)
    return value if 1 <= value <= MAX_ID else None


class CaseEvidenceBundleView(APIView):
    permission_classes = (MayExportBundles,)
    renderer_classes = (JSONRenderer, ZipRenderer)

    @extend_schema(
        operation_id="cases_evidence_bundle",
        summary="The case's evidence bundle: a signed zip an auditor checks without the portal",
        description=(
            "The case, its transitions, history, approvals, action items, comments, mappings, exposures, "
            "evidence files with their metadata, the audit chain entries of the case and the result of a "
            "full chain verification run for this export, a manifest with every file's SHA-256, and "
            "verify_bundle.py with README.txt. Signed with Ed25519 in the zip's comment; the headers "
            "`X-Bundle-SHA256`, `X-Bundle-Public-Key` and `X-Bundle-Key-Fingerprint` name the bundle and the "
            "key (compare the key with the one obtained out of band). The export is recorded in the audit "
            "chain (`case.bundle_export`)."
        ),
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="Id of the case.")],
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The bundle."),
            **error_responses(403, 404),
        },
    )
    def get(self, request: Request, pk: str) -> FileResponse:
        case_id = _case_id(pk)
        case = case_list(user=request.user).filter(pk=case_id).first() if case_id is not None else None
        if case is None:
            raise NotFound("No such case, or not one you may see.")
        response, _summary = bundle_download(actor=request.user, case_id=case.pk)
        return response
