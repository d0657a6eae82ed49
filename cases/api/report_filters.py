"""Ids are plain numbers, not checked against the tables: a filter cannot tell whether a row exists."""

import django_filters

from cases.models import CaseControlMapping, ReportFormat, ReportSnapshot
from portal.api.filters import IdFilter


class MappingFilter(django_filters.FilterSet):
    case = IdFilter(help_text="The case's id.")
    control = IdFilter(help_text="The control's id.")
    framework = IdFilter(help_text="The framework's id.")
    framework_key = django_filters.CharFilter(field_name="framework__key", help_text="e.g. nist-csf-2.0")

    class Meta:
        model = CaseControlMapping
        fields = ("case", "control", "framework", "framework_key", "is_active", "source", "removed_by_hand")


class ReportSnapshotFilter(django_filters.FilterSet):
    # Not "format": DRF reads ?format= as the answer's media type (json, api).
    report_format = django_filters.ChoiceFilter(field_name="format", choices=ReportFormat.choices)

    class Meta:
        model = ReportSnapshot
        fields = ("framework_key", "report_format")
