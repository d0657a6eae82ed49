"""Query filters of the findings endpoints (django-filter). Ids are plain numbers: no lookup to validate."""

from __future__ import annotations

import django_filters as filters
from django.db.models import Q, QuerySet

from findings.models import (
    AWAITING_ANSWER,
    Attribution,
    AttributionRule,
    Exposure,
    ExposureState,
    Finding,
    ImportRun,
    IngestJob,
    IngestJobStatus,
    PromotionCondition,
    PromotionRule,
    ReportFormat,
    Validity,
)


class ExposureFilter(filters.FilterSet):
    state = filters.MultipleChoiceFilter(choices=ExposureState.choices, help_text="One or more states.")
    validity = filters.ChoiceFilter(choices=Validity.choices)
    nhi = filters.NumberFilter(field_name="nhi_id", help_text="The identity's id.")
    case = filters.NumberFilter(field_name="case_id", help_text="The case's id.")
    detector = filters.CharFilter()
    attribution = filters.ChoiceFilter(choices=Attribution.choices)
    attributed = filters.BooleanFilter(
        field_name="nhi", lookup_expr="isnull", exclude=True, help_text="false: belongs to no identity yet."
    )
    in_triage = filters.BooleanFilter(
        method="filter_in_triage",
        help_text="true: waiting in triage (belongs to nobody, or its owner said it is not theirs).",
    )
    awaits_answer = filters.BooleanFilter(
        method="filter_awaits_answer", help_text="true: pending, or seen again after remediation."
    )

    class Meta:
        model = Exposure
        fields = ("state", "validity", "nhi", "case", "detector", "attribution")

    def filter_in_triage(self, queryset: QuerySet[Exposure], name: str, value: bool) -> QuerySet[Exposure]:
        triage = Q(nhi__isnull=True) | Q(state=ExposureState.NOT_OURS)
        return queryset.filter(triage) if value else queryset.exclude(triage)

    def filter_awaits_answer(
        self, queryset: QuerySet[Exposure], name: str, value: bool
    ) -> QuerySet[Exposure]:
        awaiting = Q(state__in=AWAITING_ANSWER)
        return queryset.filter(awaiting) if value else queryset.exclude(awaiting)


class FindingFilter(filters.FilterSet):
    exposure = filters.NumberFilter(field_name="exposure_id", help_text="The exposure's id.")
    repository = filters.CharFilter(help_text="Normalised, e.g. github.com/acme/payments.")
    path = filters.CharFilter()
    path_prefix = filters.CharFilter(field_name="path", lookup_expr="startswith", help_text="e.g. deploy/.")
    scanner = filters.CharFilter()
    detector = filters.CharFilter()
    resolved_at_source = filters.BooleanFilter()

    class Meta:
        model = Finding
        fields = ("exposure", "repository", "path", "scanner", "detector", "resolved_at_source")


class ImportRunFilter(filters.FilterSet):
    report_format = filters.ChoiceFilter(choices=ReportFormat.choices)
    source = filters.CharFilter()
    imported_by = filters.NumberFilter(field_name="imported_by_id", help_text="The user's id.")

    class Meta:
        model = ImportRun
        fields = ("report_format", "source", "imported_by")


class AttributionRuleFilter(filters.FilterSet):
    nhi = filters.NumberFilter(field_name="nhi_id", help_text="The identity's id.")
    is_active = filters.BooleanFilter()

    class Meta:
        model = AttributionRule
        fields = ("nhi", "is_active")


class PromotionRuleFilter(filters.FilterSet):
    condition = filters.ChoiceFilter(choices=PromotionCondition.choices)
    is_active = filters.BooleanFilter()

    class Meta:
        model = PromotionRule
        fields = ("condition", "is_active")


class IngestJobFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=IngestJobStatus.choices)

    class Meta:
        model = IngestJob
        fields = ("status",)
