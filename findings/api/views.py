"""`/api/v1/` for secrets findings: exposures (and owners' answers), findings, imports, rules and ingest.

Every list comes from a selector scoped by the caller; every write is one service call, which checks the
permission and the scope again. An exposure outside the caller's scope is a 404, never a 403.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from findings.api.filters import (
    AttributionRuleFilter,
    ExposureFilter,
    FindingFilter,
    ImportRunFilter,
    IngestJobFilter,
    PromotionRuleFilter,
)
from findings.api.permissions import ActionPermission
from findings.api.serializers import (
    AnswerSerializer,
    AttributeSerializer,
    AttributionRuleSerializer,
    ExposureDetailSerializer,
    ExposureSerializer,
    FindingSerializer,
    ImportRunSerializer,
    IngestJobSerializer,
    IngestRequestSerializer,
    PromotionRuleSerializer,
)
from findings.api.uploads import EncryptingUploadHandler
from findings.jobs import ingest_submit
from findings.models import AttributionRule, Exposure, Finding, ImportRun, IngestJob, PromotionRule
from findings.pending_files import EncryptedUpload
from findings.selectors import (
    attribution_rule_list,
    exposure_list,
    finding_list,
    import_run_list,
    ingest_job_list,
    promotion_rule_list,
    with_recent_locations,
)
from findings.services import (
    attribution_rule_create,
    attribution_rule_update,
    exposure_answer,
    exposure_attribute,
    promotion_rule_create,
    promotion_rule_update,
)
from portal.api.schema import error_responses

DETAIL_LOCATIONS = 50
# A list answers 400 for a filter value that is not one of its choices.
READ = error_responses(400, 403)
READ_ONE = error_responses(403, 404)
WRITE = error_responses(400, 403)
WRITE_ONE = error_responses(400, 403, 404)

EXPOSURE_COLUMNS = ("nhi", "credential", "answered_by")


class FindingsViewSet(viewsets.GenericViewSet[Any]):
    permission_classes = (IsAuthenticated, ActionPermission)
    action_permissions: dict[str, str] = {}


# --- Exposures ----------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Exposures the caller may see (owners: their teams' identities only)",
        responses={200: ExposureSerializer(many=True), **READ},
    ),
    retrieve=extend_schema(
        summary="One exposure, with its most recently seen locations",
        responses={200: ExposureDetailSerializer, **READ_ONE},
    ),
)
class ExposureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FindingsViewSet):
    filterset_class = ExposureFilter
    search_fields = ("preview", "detector")
    ordering_fields = ("id", "last_seen_at", "first_seen_at", "locations", "occurrences", "regressions")
    ordering = ("-id",)
    action_permissions = {
        "*": "findings.view_exposure",
        "answer": "findings.answer_exposure",
        "attribute": "findings.attribute_exposure",
    }

    def get_queryset(self) -> QuerySet[Exposure]:
        exposures = exposure_list(user=self.request.user).select_related(*EXPOSURE_COLUMNS)
        if self.action == "list":
            return exposures
        return with_recent_locations(exposures, limit=DETAIL_LOCATIONS)

    def get_serializer_class(self) -> type[ExposureSerializer]:
        return ExposureSerializer if self.action == "list" else ExposureDetailSerializer

    def _answered(self, exposure_id: int) -> Response:
        return Response(ExposureDetailSerializer(self.get_queryset().get(pk=exposure_id)).data)

    @extend_schema(
        summary="The owner's answer: confirm, not ours, false positive or already rotated/revoked",
        description=(
            "Only the identity's owner, or a member of its owning team, answers. `not_ours` needs "
            "`suggested_owner`; `false_positive` needs `note`; `remediated` needs `remediation` and "
            "`remediated_at` (not in the future). A confirmed exposure can still be reported `remediated`."
        ),
        request=AnswerSerializer,
        responses={200: ExposureDetailSerializer, **WRITE_ONE},
    )
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, pk: str) -> Response:
        exposure = self.get_object()
        serializer = AnswerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answered = exposure_answer(actor=request.user, exposure_id=exposure.pk, **serializer.validated_data)
        return self._answered(answered.pk)

    @extend_schema(
        summary="Say whose an exposure is (analysts); a disputed one goes to the new owner to answer",
        request=AttributeSerializer,
        responses={200: ExposureDetailSerializer, **WRITE_ONE},
    )
    @action(detail=True, methods=["post"])
    def attribute(self, request: Request, pk: str) -> Response:
        exposure = self.get_object()
        serializer = AttributeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attributed = exposure_attribute(
            actor=request.user,
            exposure_id=exposure.pk,
            nhi_id=serializer.validated_data["nhi"],
            note=serializer.validated_data["note"],
        )
        return self._answered(attributed.pk)


# --- Findings and imports -----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Findings (a secret at one location) of the exposures the caller may see",
        responses={200: FindingSerializer(many=True), **READ},
    ),
    retrieve=extend_schema(summary="One finding", responses={200: FindingSerializer, **READ_ONE}),
)
class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FindingsViewSet):
    serializer_class = FindingSerializer
    filterset_class = FindingFilter
    search_fields = ("repository", "path", "detector")
    ordering_fields = ("id", "last_seen_at", "first_seen_at", "occurrences")
    ordering = ("-id",)
    action_permissions = {"*": "findings.view_finding"}

    def get_queryset(self) -> QuerySet[Finding]:
        return finding_list(user=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="Scanner reports imported", responses={200: ImportRunSerializer(many=True), **READ}
    ),
    retrieve=extend_schema(
        summary="One import, with its summary", responses={200: ImportRunSerializer, **READ_ONE}
    ),
)
class ImportRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FindingsViewSet):
    serializer_class = ImportRunSerializer
    filterset_class = ImportRunFilter
    search_fields = ("source", "file_name")
    ordering_fields = ("id", "started_at")
    ordering = ("-id",)
    action_permissions = {"*": "findings.view_importrun"}

    def get_queryset(self) -> QuerySet[ImportRun]:
        return import_run_list(user=self.request.user).select_related("imported_by")


# --- Rules --------------------------------------------------------------------------------------------------


class RuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    FindingsViewSet,
):
    """Rules are never deleted (mappings and history name them): retire one by setting is_active false."""

    http_method_names = ("get", "post", "put", "patch", "head", "options")
    ordering_fields = ("id", "position")
    ordering = ("-id",)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = self.rule_create(actor=request.user, fields=serializer.validated_data)
        return Response(self.get_serializer(self._fresh(rule.pk)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        serializer = self.get_serializer(rule, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        updated = self.rule_update(actor=request.user, rule_id=rule.pk, changes=serializer.validated_data)
        return Response(self.get_serializer(self._fresh(updated.pk)).data)

    def _fresh(self, pk: int) -> Any:
        return self.get_queryset().get(pk=pk)

    def rule_create(self, *, actor: Any, fields: dict[str, Any]) -> Any:  # pragma: no cover (abstract)
        raise NotImplementedError

    def rule_update(self, *, actor: Any, rule_id: int, changes: dict[str, Any]) -> Any:  # pragma: no cover
        raise NotImplementedError


def _rule_schema(what: str, serializer: type[Any]) -> Any:
    return extend_schema_view(
        list=extend_schema(summary=f"{what} rules (staff)", responses={200: serializer(many=True), **READ}),
        retrieve=extend_schema(summary=f"One {what.lower()} rule", responses={200: serializer, **READ_ONE}),
        create=extend_schema(
            summary=f"Add a {what.lower()} rule (analysts)", responses={201: serializer, **WRITE}
        ),
        update=extend_schema(
            summary=f"Change a {what.lower()} rule (analysts)", responses={200: serializer, **WRITE_ONE}
        ),
        partial_update=extend_schema(
            summary=f"Change some fields of a {what.lower()} rule (analysts)",
            responses={200: serializer, **WRITE_ONE},
        ),
    )


@_rule_schema("Attribution", AttributionRuleSerializer)
class AttributionRuleViewSet(RuleViewSet):
    """Exposures whose first location matches a rule's globs belong to its identity."""

    serializer_class = AttributionRuleSerializer
    filterset_class = AttributionRuleFilter
    search_fields = ("repository_pattern", "path_pattern", "detector_pattern", "note")
    action_permissions = {
        "*": "findings.view_attributionrule",
        "create": "findings.add_attributionrule",
        "update": "findings.change_attributionrule",
        "partial_update": "findings.change_attributionrule",
    }

    def get_queryset(self) -> QuerySet[AttributionRule]:
        return attribution_rule_list(user=self.request.user).select_related("nhi")

    def rule_create(self, *, actor: Any, fields: dict[str, Any]) -> AttributionRule:
        return attribution_rule_create(actor=actor, fields=fields)

    def rule_update(self, *, actor: Any, rule_id: int, changes: dict[str, Any]) -> AttributionRule:
        return attribution_rule_update(actor=actor, rule_id=rule_id, changes=changes)


@_rule_schema("Promotion", PromotionRuleSerializer)
class PromotionRuleViewSet(RuleViewSet):
    """When an exposure opens or joins a case: the first active matching rule says why."""

    serializer_class = PromotionRuleSerializer
    filterset_class = PromotionRuleFilter
    search_fields = ()
    action_permissions = {
        "*": "findings.view_promotionrule",
        "create": "findings.add_promotionrule",
        "update": "findings.change_promotionrule",
        "partial_update": "findings.change_promotionrule",
    }

    def get_queryset(self) -> QuerySet[PromotionRule]:
        return promotion_rule_list(user=self.request.user)

    def rule_create(self, *, actor: Any, fields: dict[str, Any]) -> PromotionRule:
        return promotion_rule_create(actor=actor, fields=fields)

    def rule_update(self, *, actor: Any, rule_id: int, changes: dict[str, Any]) -> PromotionRule:
        return promotion_rule_update(actor=actor, rule_id=rule_id, changes=changes)


# --- Ingest -------------------------------------------------------------------------------------------------

# The service's names for what the API calls `format` and `file`.
_INGEST_FIELDS = {"report_format": "format", "report": "file"}


class IngestView(APIView):
    parser_classes = (MultiPartParser,)
    permission_classes = (IsAuthenticated, ActionPermission)
    action_permissions = {"post": "findings.import_findings"}

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before anything reads the body (the session's CSRF check reads the form): the report is
        # encrypted as it arrives, never written or kept anywhere in the clear.
        request.upload_handlers = [EncryptingUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        summary="Import a scanner report: at once if small (201), by a background job if large (202)",
        description=(
            "Reports up to `FINDINGS_INGEST_SYNC_MAX_BYTES` are imported during the request: 201 with the "
            "import and its summary (what `manage.py ingest_findings` prints). Larger ones are queued: 202 "
            "with the job, whose `url` (also the Location header) reports status, progress and, at the end, "
            "the summary or the error. A malformed report is refused whole (400 naming the line or field); "
            "nothing is written."
        ),
        request={"multipart/form-data": IngestRequestSerializer},
        responses={
            201: OpenApiResponse(ImportRunSerializer, description="Imported; the summary says what it did."),
            202: OpenApiResponse(IngestJobSerializer, description="Queued; follow the job's url."),
            **WRITE,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = IngestRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if not isinstance(upload, EncryptedUpload):  # pragma: no cover (the handler above makes every upload)
            raise ValidationError({"file": "The upload was not received through the encrypting handler."})
        try:
            outcome = ingest_submit(
                actor=request.user,
                report_format=serializer.validated_data["format"],
                source=serializer.validated_data["source"],
                upload=upload,
            )
        except ValidationError as error:
            if not hasattr(error, "error_dict"):
                raise
            raise ValidationError(
                {_INGEST_FIELDS.get(name, name): errors for name, errors in error.error_dict.items()}
            ) from None
        if isinstance(outcome, IngestJob):
            body = IngestJobSerializer(outcome, context={"request": request}).data
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})
        location = request.build_absolute_uri(reverse("import-run-detail", args=[outcome.pk]))
        return Response(
            ImportRunSerializer(outcome).data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )


@extend_schema_view(
    list=extend_schema(
        summary="Background ingest jobs", responses={200: IngestJobSerializer(many=True), **READ}
    ),
    retrieve=extend_schema(
        summary="One ingest job: status, progress, and the summary or the error",
        responses={200: IngestJobSerializer, **READ_ONE},
    ),
)
class IngestJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FindingsViewSet):
    serializer_class = IngestJobSerializer
    filterset_class = IngestJobFilter
    search_fields = ("source", "file_name")
    ordering_fields = ("id", "created_at")
    ordering = ("-id",)
    action_permissions = {"*": "findings.view_ingestjob"}

    def get_queryset(self) -> QuerySet[IngestJob]:
        return ingest_job_list(user=self.request.user).select_related("created_by")
