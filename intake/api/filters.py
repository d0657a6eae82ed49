"""Filters of the intake list. Ids are plain numbers, not checked against the table: an unknown or another
team's id gives an empty list, so a filter cannot tell whether a row exists."""

import django_filters

from intake.models import AssistantOutput
from portal.api.filters import UtcDateTimeFilter


class AssistantOutputFilter(django_filters.FilterSet):
    assistant = django_filters.CharFilter(lookup_expr="iexact")
    case = django_filters.NumberFilter(field_name="case_id", help_text="The case's id.")
    nhi = django_filters.NumberFilter(
        field_name="identity_links__nhi_id", help_text="Outputs concerning this identity (id)."
    )
    submitted_after = UtcDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = UtcDateTimeFilter(field_name="submitted_at", lookup_expr="lt")

    class Meta:
        model = AssistantOutput
        fields = (
            "outcome",
            "case_kind",
            "assistant",
            "case",
            "nhi",
            "changes_ownership",
            "changes_state",
            "changes_evidence_requirements",
        )
