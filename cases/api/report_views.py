"""`/api/v1/mappings/`, `/api/v1/reports/alignment/`, `/api/v1/report-snapshots/`.

Mappings are scoped by the cases the caller may see; adding or removing one is `case_mapping_add` or
`case_mapping_remove`, each with its rationale. The report and the snapshots count every case, so they need
`cases.view_all_cases` (owners and outsiders get a 403), as in the admin.
"""

import json
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Length
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.alignment import TRACEABLE_MEANS, alignment_report
from cases.api.report_filters import MappingFilter, ReportSnapshotFilter
from cases.api.report_selectors import mapping_list, report_snapshot_list
from cases.api.report_serializers import (
    AlignmentReportSerializer,
    MappingAddSerializer,
    MappingRemoveSerializer,
    MappingSerializer,
    ReportPeriodSerializer,
    ReportSnapshotSerializer,
    SnapshotCreateSerializer,
)
from cases.mapping import case_mapping_add, case_mapping_remove
from cases.models import CaseControlMapping, ReportSnapshot
from cases.reports.outputs import CONTENT_TYPES
from cases.reports.render import report_data
from cases.reports.services import report_snapshot_create
from portal.api.permissions import require_perm
from portal.api.schema import error_responses

SeesAllCases = require_perm("cases.view_all_cases", to="read reports, which count every case")


@extend_schema_view(
    list=extend_schema(
        summary="Case-to-control mappings",
        description="Of the cases the caller may see; removed mappings stay listed (is_active false).",
        responses={200: MappingSerializer, **error_responses(400)},
    ),
    retrieve=extend_schema(summary="One mapping", responses={200: MappingSerializer, **error_responses(404)}),
)
class MappingViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[CaseControlMapping]
):
    lookup_value_regex = r"\d+"
    filterset_class = MappingFilter
    search_fields = ("control__ref_id", "control__title", "rationale")
    ordering_fields = ("id", "changed_at")
    ordering = ("-id",)

    def get_queryset(self) -> QuerySet[CaseControlMapping]:
        return mapping_list(user=self.request.user).select_related("control__framework", "changed_by")

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return MappingAddSerializer
        if self.action == "remove":
            return MappingRemoveSerializer
        return MappingSerializer

    def _shown(self, mapping: CaseControlMapping, *, code: int) -> Response:
        return Response(MappingSerializer(self.get_queryset().get(pk=mapping.pk)).data, status=code)

    @extend_schema(
        summary="Map a case to a control by hand",
        description="A mapping removed earlier comes back as added by hand. 409 when it is already mapped.",
        request=MappingAddSerializer,
        responses={201: MappingSerializer, **error_responses(400, 403, 409)},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = MappingAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        mapping = case_mapping_add(
            actor=request.user, case_id=data["case"], control_id=data["control"], rationale=data["rationale"]
        )
        return self._shown(mapping, code=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Remove a mapping by hand",
        description="The row stays (inactive, removed by hand) and the rules will not bring it back.",
        request=MappingRemoveSerializer,
        responses={200: MappingSerializer, **error_responses(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def remove(self, request: Request, pk: str | None = None) -> Response:
        mapping = self.get_object()
        serializer = MappingRemoveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        removed = case_mapping_remove(
            actor=request.user,
            case_id=mapping.case_id,
            control_id=mapping.control_id,
            rationale=serializer.validated_data["rationale"],
        )
        return self._shown(removed, code=status.HTTP_200_OK)


class AlignmentReportView(APIView):
    permission_classes = (SeesAllCases,)

    @extend_schema(
        operation_id="reports_alignment",
        summary="The framework alignment report",
        description=(
            "The same JSON as the admin's JSON download and `manage.py alignment_report --format json`: "
            "control by control, the cases mapped, their states and the evidence, traceability (cases where "
            f"{TRACEABLE_MEANS}) and four-eyes figures, for the cases identified in the period. Other "
            "formats: save a report snapshot."
        ),
        parameters=[ReportPeriodSerializer],
        responses={200: AlignmentReportSerializer, **error_responses(400, 403)},
    )
    def get(self, request: Request) -> Response:
        query = ReportPeriodSerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        framework = query.validated_data["framework"]
        report = alignment_report(
            framework_key=framework.key,
            since=query.validated_data["since"],
            until=query.validated_data["until"],
        )
        return Response(report_data(report, framework))


class StoredBytesRenderer(BaseRenderer):
    """Lets a client ask for a snapshot's own type (Accept: application/pdf); the view hands out the bytes."""

    media_type = "*/*"
    format = "stored"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        # Only an error answer reaches here (the content itself is returned as it is stored).
        return json.dumps(data).encode()


@extend_schema_view(
    list=extend_schema(
        summary="Stored report snapshots",
        responses={200: ReportSnapshotSerializer, **error_responses(400, 403)},
    ),
    retrieve=extend_schema(
        summary="One report snapshot", responses={200: ReportSnapshotSerializer, **error_responses(403, 404)}
    ),
)
class ReportSnapshotViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ReportSnapshot]
):
    permission_classes = (SeesAllCases,)
    lookup_value_regex = r"\d+"
    filterset_class = ReportSnapshotFilter
    search_fields = ("filename", "=sha256")
    ordering_fields = ("id", "created_at")
    ordering = ("-id",)

    def get_queryset(self) -> QuerySet[ReportSnapshot]:
        return (
            report_snapshot_list(user=self.request.user)
            .select_related("requested_by")
            .annotate(size=Length("content"))
        )

    def get_serializer_class(self) -> Any:
        return SnapshotCreateSerializer if self.action == "create" else ReportSnapshotSerializer

    @extend_schema(
        summary="Save a report snapshot",
        description=(
            "Renders the report now and stores exactly its bytes with the parameters, who asked, when and "
            "their SHA-256. A snapshot is never changed or deleted."
        ),
        request=SnapshotCreateSerializer,
        responses={201: ReportSnapshotSerializer, **error_responses(400, 403)},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SnapshotCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        snapshot = report_snapshot_create(
            actor=request.user,
            framework_key=data["framework"].key,
            fmt=data["format"],
            since=data["since"],
            until=data["until"],
        )
        shown = ReportSnapshotSerializer(
            self.get_queryset().get(pk=snapshot.pk), context={"request": request}
        )
        return Response(shown.data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The stored bytes of a snapshot",
        description="Exactly what was stored; the `X-Content-SHA256` header repeats its SHA-256.",
        responses={
            **{
                (200, media.split(";")[0]): OpenApiResponse(OpenApiTypes.BINARY)
                for media in set(CONTENT_TYPES.values())
            },
            **error_responses(403, 404),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, StoredBytesRenderer])
    def content(self, request: Request, pk: str | None = None) -> HttpResponse:
        snapshot = self.get_object()
        stored = ReportSnapshot.objects.only("content").get(pk=snapshot.pk)
        response = HttpResponse(bytes(stored.content), content_type=snapshot.content_type)
        response["Content-Disposition"] = f'attachment; filename="{snapshot.filename}"'
        response["X-Content-SHA256"] = snapshot.sha256
        return response
