"""`/api/v1/audit/`: read the chain's entries and its verifications, and run a verification.

Nothing here changes the chain. Entries and verifications come from `audit.selectors` (which check the
permission); a verification is one call to `audit.services.audit_trail_verify`, recorded with trigger `api`
and the person who asked.
"""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.filters import AuditEntryFilter
from audit.api.serializers import AuditEntrySerializer, AuditVerificationSerializer
from audit.models import AuditEntry, AuditVerification, VerificationTrigger
from audit.selectors import audit_entry_list, audit_verification_list
from audit.services import audit_trail_verify
from portal.api.permissions import require_perm
from portal.api.schema import error_responses

CanReadTrail = require_perm("audit.view_auditentry", to="read the audit trail")
CanReadVerifications = require_perm("audit.view_auditverification", to="read the audit trail's verifications")

ENTRIES_DESCRIPTION = """\
The audit chain in order (oldest first; `ordering=-seq` for the newest first), cursor-paginated. Each entry
holds its sealed `body`, its `entry_hash` (SHA-256 of the body) and the previous entry's hash, so a client can
check the links itself; the MAC needs the portal's key (`POST /api/v1/audit/verifications/` checks it all).
Analysts, approvers and auditors (`audit.view_auditentry`); owners and outsiders get a 403."""

VERIFY_DESCRIPTION = """\
Walks the whole chain now, checking every hash, MAC and link and the head, and records the result (trigger
`api`, requested by the caller): `ok`, how far the chain is intact and, if not, the first changed, missing,
inserted or reordered entry. A broken chain is still a 201: the verification was made and recorded. The answer
waits for the walk (seconds for a million entries: docs/PERFORMANCE.md). Needs `audit.view_auditentry`."""


@extend_schema_view(
    list=extend_schema(
        summary="Audit chain entries",
        description=ENTRIES_DESCRIPTION,
        responses={200: AuditEntrySerializer, **error_responses(400, 403)},
    ),
    retrieve=extend_schema(
        summary="One audit chain entry, by position",
        responses={200: AuditEntrySerializer, **error_responses(403, 404)},
    ),
)
class AuditEntryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[AuditEntry]
):
    queryset = AuditEntry.objects.none()  # for the schema; rows come from audit_entry_list
    serializer_class = AuditEntrySerializer
    permission_classes = (CanReadTrail,)
    lookup_field = "seq"
    lookup_value_regex = r"\d+"
    filterset_class = AuditEntryFilter
    ordering_fields = ("seq",)
    ordering = ("seq",)

    def get_queryset(self) -> QuerySet[AuditEntry]:
        return audit_entry_list(user=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="Verifications of the audit chain, latest first",
        description="Each walk over the chain (nightly task, command, admin, API, bundle) and its result.",
        responses={200: AuditVerificationSerializer, **error_responses(400, 403)},
    ),
    retrieve=extend_schema(
        summary="One verification of the audit chain",
        responses={200: AuditVerificationSerializer, **error_responses(403, 404)},
    ),
)
class AuditVerificationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[AuditVerification]
):
    queryset = AuditVerification.objects.none()  # for the schema; rows come from audit_verification_list
    serializer_class = AuditVerificationSerializer
    lookup_value_regex = r"\d+"
    filterset_fields = ("ok", "trigger")
    ordering_fields = ("id",)
    ordering = ("-id",)

    def get_permissions(self) -> list[Any]:
        # Running one reads the whole trail: it needs the trail's permission, as the service checks.
        return [CanReadTrail()] if self.action == "create" else [CanReadVerifications()]

    def get_queryset(self) -> QuerySet[AuditVerification]:
        return audit_verification_list(user=self.request.user)

    @extend_schema(
        summary="Verify the audit chain now",
        description=VERIFY_DESCRIPTION,
        request=None,
        responses={201: AuditVerificationSerializer, **error_responses(403)},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        verification = audit_trail_verify(trigger=VerificationTrigger.API, actor=request.user)
        shown = AuditVerificationSerializer(self.get_queryset().get(pk=verification.pk))
        return Response(shown.data, status=status.HTTP_201_CREATED)
