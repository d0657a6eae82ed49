"""Mappings, the alignment report and report snapshots as the API shows and takes them."""

from datetime import date
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cases.alignment import TRACEABLE_MEANS
from cases.models import CaseControlMapping, ReportFormat, ReportSnapshot
from frameworks.models import Framework
from frameworks.selectors import framework_list


class MappingSerializer(serializers.ModelSerializer[CaseControlMapping]):
    control_ref_id = serializers.CharField(source="control.ref_id", read_only=True)
    framework_key = serializers.CharField(source="control.framework.key", read_only=True)
    changed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = CaseControlMapping
        fields = (
            "id",
            "case",
            "control",
            "control_ref_id",
            "framework_key",
            "source",
            "rule",
            "rationale",
            "is_active",
            "removed_by_hand",
            "changed_by",
            "changed_at",
        )
        read_only_fields = fields


class MappingAddSerializer(serializers.Serializer[Any]):
    case = serializers.IntegerField(help_text="The case's id.")
    control = serializers.IntegerField(help_text="The control's id (see /api/v1/controls/).")
    rationale = serializers.CharField(help_text="Why the case falls under the control; kept in the history.")


class MappingRemoveSerializer(serializers.Serializer[Any]):
    rationale = serializers.CharField(
        help_text="Why the case does not fall under the control; the rules will not map it again."
    )


class ReportPeriodSerializer(serializers.Serializer[Any]):
    framework = serializers.CharField(
        max_length=60, help_text="The framework's id or key, e.g. nist-csf-2.0."
    )
    since = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Cases identified on or after this day."
    )
    until = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="Cases identified on or before this day."
    )

    def validate_framework(self, text: str) -> Framework:
        """Among the frameworks the caller may see, by id or key."""
        frameworks = framework_list(user=self.context["request"].user)
        found = (
            frameworks.filter(pk=int(text)).first()
            if text.isdigit() and len(text) < 10
            else frameworks.filter(key=text).first()
        )
        if found is None:
            raise serializers.ValidationError(
                f"No framework {text!r}; give its id or key, e.g. nist-csf-2.0."
            )
        return found

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since: date | None = attrs.get("since")
        until: date | None = attrs.get("until")
        if since and until and since > until:
            raise serializers.ValidationError({"until": "The period ends before it starts."})
        return attrs


class SnapshotCreateSerializer(ReportPeriodSerializer):
    format = serializers.ChoiceField(choices=ReportFormat.choices, help_text="The rendering to store.")


class ReportSnapshotSerializer(serializers.ModelSerializer[ReportSnapshot]):
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    size = serializers.IntegerField(read_only=True, help_text="Bytes stored.")
    content_url = serializers.SerializerMethodField(help_text="Where to download exactly the stored bytes.")

    class Meta:
        model = ReportSnapshot
        fields = (
            "id",
            "framework_key",
            "format",
            "since",
            "until",
            "requested_by",
            "created_at",
            "filename",
            "content_type",
            "size",
            "sha256",
            "content_url",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_content_url(self, snapshot: ReportSnapshot) -> str:
        path = reverse("api-report-snapshot-content", args=[snapshot.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


# --- The alignment report's JSON, described for the schema (the data is `cases.reports.render.report_data`)


class _FiguresSerializer(serializers.Serializer[Any]):
    mapped_cases = serializers.IntegerField()
    with_evidence = serializers.IntegerField()
    traceable = serializers.IntegerField(
        help_text=f"Cases where {TRACEABLE_MEANS}; cases from before the audit chain do not count."
    )
    severe_closures = serializers.IntegerField()
    severe_closures_approved = serializers.IntegerField()
    overdue_open = serializers.IntegerField()
    median_hours_to_verified = serializers.FloatField(allow_null=True)
    evidence_coverage = serializers.FloatField(allow_null=True, help_text="Share 0..1; null without cases.")
    traceability = serializers.FloatField(
        allow_null=True, help_text="Share 0..1 of the cases that are traceable; null without cases."
    )
    four_eyes_coverage = serializers.FloatField(allow_null=True)


class ReportGroupSerializer(_FiguresSerializer):
    ref_id = serializers.CharField()
    kind = serializers.CharField()
    title = serializers.CharField()
    controls = serializers.IntegerField()
    covered_controls = serializers.IntegerField()
    control_coverage = serializers.FloatField(allow_null=True)


class ReportControlSerializer(_FiguresSerializer):
    ref_id = serializers.CharField()
    kind = serializers.CharField()
    title = serializers.CharField()
    statement = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    function = serializers.CharField(allow_null=True)
    by_state = serializers.DictField(child=serializers.IntegerField(), help_text="Mapped cases per state.")
    is_gap = serializers.BooleanField()


class ReportFrameworkSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()
    publisher = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    license = serializers.CharField()
    url = serializers.CharField(allow_blank=True)


class ReportPeriodOutSerializer(serializers.Serializer[Any]):
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)


class ReportAuditChainSerializer(serializers.Serializer[Any]):
    proven_through = serializers.IntegerField(
        help_text=(
            "The last audit chain entry proven intact when the report was made; a case is traceable only "
            "if all its transitions' entries lie at or before it."
        )
    )


class AlignmentReportSerializer(serializers.Serializer[Any]):
    framework = ReportFrameworkSerializer()
    period = ReportPeriodOutSerializer()
    generated_at = serializers.DateTimeField()
    audit_chain = ReportAuditChainSerializer()
    summary = ReportGroupSerializer()
    groups = ReportGroupSerializer(many=True)
    controls = ReportControlSerializer(many=True)
    gaps = serializers.ListField(child=serializers.CharField(), help_text="Leaf controls with no case.")
