"""What the findings endpoints read and write. Input serializers check shape only; the services decide.

No serializer here has a field for a secret, a fingerprint or a report's content: exposures are shown by
their redacted preview, findings by their scrubbed context.
"""

from __future__ import annotations

from typing import Any, cast

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from findings.forms import AnswerForm
from findings.jobs import ingest_job_progress
from findings.models import (
    AttributionRule,
    Exposure,
    Finding,
    ImportRun,
    IngestJob,
    IngestJobStatus,
    PromotionRule,
    ReportFormat,
)
from findings.services import Answer
from nhi_inventory.models import CredentialStatus
from nhi_inventory.selectors import nhi_list

# --- Reading ------------------------------------------------------------------------------------------------


class NhiReferenceSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class CredentialReferenceSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    preview = serializers.CharField(read_only=True, help_text="Redacted: at most 4 leading characters.")


class ImportSummarySerializer(serializers.Serializer[Any]):
    """What an import did; the same keys the `ingest_findings` command prints."""

    entries = serializers.IntegerField(help_text="Entries read from the report.")
    created = serializers.IntegerField(help_text="New findings (a secret at a new place).")
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    regressions = serializers.IntegerField(help_text="Remediated secrets seen again.")
    resolved_at_source = serializers.IntegerField()
    new_exposures = serializers.IntegerField(help_text="Secrets not seen before.")
    cases_opened = serializers.IntegerField()
    cases_joined = serializers.IntegerField()
    awaiting_triage = serializers.IntegerField()
    skipped = serializers.IntegerField()
    skipped_reasons = serializers.DictField(child=serializers.IntegerField(), help_text="Count per reason.")


@extend_schema_field(ImportSummarySerializer)
class ImportSummaryField(serializers.JSONField):
    """The summary as the import stored it (documented by `ImportSummarySerializer`)."""


class FindingSerializer(serializers.ModelSerializer[Finding]):
    first_import = serializers.IntegerField(source="first_import_id", read_only=True)
    last_import = serializers.IntegerField(source="last_import_id", read_only=True)

    class Meta:
        model = Finding
        fields = (
            "id",
            "exposure",
            "source",
            "scanner",
            "detector",
            "repository",
            "path",
            "line",
            "commit",
            "url",
            "context",
            "first_seen_at",
            "last_seen_at",
            "occurrences",
            "resolved_at_source",
            "resolved_at",
            "source_state",
            "first_import",
            "last_import",
        )
        read_only_fields = fields
        extra_kwargs = {"context": {"help_text": "The line around the secret, with the secret replaced."}}


class ExposureSerializer(serializers.ModelSerializer[Exposure]):
    nhi = NhiReferenceSerializer(read_only=True, allow_null=True)
    credential = CredentialReferenceSerializer(read_only=True, allow_null=True)
    answered_by = serializers.CharField(source="answered_by.username", read_only=True, allow_null=True)
    in_triage = serializers.BooleanField(read_only=True, help_text="Belongs to nobody, or disputed.")
    awaits_answer = serializers.BooleanField(read_only=True, help_text="Waits for its owner's answer.")

    class Meta:
        model = Exposure
        fields: tuple[str, ...] = (
            "id",
            "preview",
            "detector",
            "validity",
            "state",
            "fingerprint_scheme",
            "nhi",
            "credential",
            "attribution",
            "case",
            "promotion_reason",
            "first_seen_at",
            "last_seen_at",
            "occurrences",
            "locations",
            "regressions",
            "remediated_at",
            "answered_by",
            "answered_at",
            "answer_note",
            "suggested_owner",
            "in_triage",
            "awaits_answer",
        )
        read_only_fields: tuple[str, ...] = fields


class ExposureDetailSerializer(ExposureSerializer):
    attribution_rule = serializers.IntegerField(source="attribution_rule_id", read_only=True, allow_null=True)
    recent_findings = FindingSerializer(
        many=True,
        read_only=True,
        help_text="The most recently seen locations (all: /api/v1/findings/?exposure=).",
    )

    class Meta(ExposureSerializer.Meta):
        fields = (*ExposureSerializer.Meta.fields, "attribution_rule", "recent_findings")
        read_only_fields = fields


class ImportRunSerializer(serializers.ModelSerializer[ImportRun]):
    imported_by = serializers.CharField(source="imported_by.username", read_only=True)
    summary = ImportSummaryField(read_only=True)

    class Meta:
        model = ImportRun
        fields = (
            "id",
            "report_format",
            "source",
            "file_name",
            "file_size",
            "file_sha256",
            "imported_by",
            "started_at",
            "finished_at",
            "summary",
        )
        read_only_fields = fields


class IngestJobSerializer(serializers.ModelSerializer[IngestJob]):
    url = serializers.SerializerMethodField(help_text="Where to follow the job.")
    progress = serializers.SerializerMethodField(help_text="Entries read so far (all of them once ended).")
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    summary = serializers.SerializerMethodField(help_text="The import's summary, once it has succeeded.")
    import_run = serializers.IntegerField(source="import_run_id", read_only=True, allow_null=True)

    class Meta:
        model = IngestJob
        fields = (
            "id",
            "url",
            "status",
            "progress",
            "report_format",
            "source",
            "file_name",
            "file_size",
            "file_sha256",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "import_run",
            "summary",
            "error",
        )
        read_only_fields = fields
        extra_kwargs = {"error": {"help_text": "Why it failed: names the line or field, never quotes it."}}

    def get_url(self, job: IngestJob) -> str:
        path = reverse("ingest-job-detail", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_progress(self, job: IngestJob) -> int:
        return ingest_job_progress(job)

    @extend_schema_field(ImportSummarySerializer(allow_null=True))
    def get_summary(self, job: IngestJob) -> dict[str, Any] | None:
        return job.summary if job.status == IngestJobStatus.SUCCEEDED else None


# --- Writing ------------------------------------------------------------------------------------------------


class AnswerSerializer(serializers.Serializer[Any]):
    """An owner's answer: what the owner page's form accepts, checked by that same form (`validate`)."""

    answer = serializers.ChoiceField(choices=Answer.CHOICES)
    suggested_owner = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="For not_ours: the team or person it belongs to (required then).",
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="For false_positive: why it is not a real secret (required then).",
    )
    remediation = serializers.ChoiceField(
        choices=[CredentialStatus.ROTATED, CredentialStatus.REVOKED],
        required=False,
        allow_blank=True,
        default="",
        help_text="For remediated: rotated or revoked (required then).",
    )
    remediated_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="For remediated: when; not in the future."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        remediated_at = attrs.get("remediated_at")
        form = AnswerForm(
            data={
                **{
                    name: attrs.get(name) or ""
                    for name in ("answer", "suggested_owner", "note", "remediation")
                },
                "remediated_at": remediated_at.isoformat() if remediated_at is not None else "",
            }
        )
        if not form.is_valid():
            raise serializers.ValidationError(
                {
                    field: [error["message"] for error in errors]
                    for field, errors in form.errors.get_json_data().items()
                }
            )
        return dict(form.arguments())


class AttributeSerializer(serializers.Serializer[Any]):
    nhi = serializers.IntegerField(help_text="The id of the identity the exposure belongs to.")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class IngestRequestSerializer(serializers.Serializer[Any]):
    format = serializers.ChoiceField(choices=ReportFormat.choices, help_text="The scanner's report format.")
    source = serializers.CharField(  # type: ignore[assignment]  # a request field
        max_length=200, help_text="Where the report comes from, e.g. a repository."
    )
    file = serializers.FileField(help_text="The scanner's report, as the scanner wrote it.")


class AttributionRuleSerializer(serializers.ModelSerializer[AttributionRule]):
    nhi_name = serializers.CharField(source="nhi.name", read_only=True)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:  # only the identities the caller may see can be named
            cast(Any, fields["nhi"]).queryset = nhi_list(user=request.user)
        return fields

    class Meta:
        model = AttributionRule
        fields = (
            "id",
            "position",
            "repository_pattern",
            "path_pattern",
            "detector_pattern",
            "nhi",
            "nhi_name",
            "is_active",
            "note",
        )
        read_only_fields = ("id", "nhi_name")


class PromotionRuleSerializer(serializers.ModelSerializer[PromotionRule]):
    class Meta:
        model = PromotionRule
        fields = (
            "id",
            "position",
            "condition",
            "requires_attribution",
            "min_locations",
            "severity",
            "is_active",
        )
        read_only_fields = ("id",)
