"""Query-string filters of the case lists. They narrow what the selectors already scoped to the caller."""

from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field

from cases.models import (
    OPEN_STATES,
    ActionItem,
    ActionKind,
    ActionStatus,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseIdentity,
    CaseKind,
    CaseState,
    Evidence,
    EvidenceKind,
    Priority,
    Severity,
)
from cases.selectors import pending_approvals_for
from portal.api.filters import UtcDateTimeFromToRangeFilter

# Ids beyond a 64-bit integer are refused as input rather than sent to the database.
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.Filter):
    field_class = forms.IntegerField  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class CaseFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=CaseState.choices, help_text="Repeat for several.")
    kind = django_filters.MultipleChoiceFilter(choices=CaseKind.choices, help_text="Repeat for several.")
    severity = django_filters.TypedMultipleChoiceFilter(
        choices=Severity.choices, coerce=int, help_text="1 low … 4 critical; repeat for several."
    )
    priority = django_filters.TypedMultipleChoiceFilter(
        choices=Priority.choices, coerce=int, help_text="1 (P1) … 4 (P4); repeat for several."
    )
    team = IdFilter(field_name="owning_team_id", help_text="Id of the owning team.")
    assignee = IdFilter(field_name="assignee_id", help_text="Id of the assigned user.")
    identity = IdFilter(method="filter_identity", help_text="Id of a linked identity.")
    overdue = django_filters.BooleanFilter(
        method="filter_overdue", help_text="true: open cases past their due date; false: all others."
    )
    created = UtcDateTimeFromToRangeFilter(
        field_name="created_at", help_text="created_after / created_before (ISO 8601)."
    )

    class Meta:
        model = Case
        fields = (
            "state",
            "kind",
            "severity",
            "priority",
            "team",
            "assignee",
            "identity",
            "overdue",
            "created",
        )

    def filter_identity(self, queryset: QuerySet[Case], name: str, value: int) -> QuerySet[Case]:
        # EXISTS, not a join: a join would repeat a case per matching link.
        return queryset.filter(Exists(CaseIdentity.objects.filter(case_id=OuterRef("pk"), nhi_id=value)))

    def filter_overdue(self, queryset: QuerySet[Case], name: str, value: bool) -> QuerySet[Case]:
        overdue = Q(due_at__lt=timezone.now(), state__in=OPEN_STATES)
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class EvidenceFilter(django_filters.FilterSet):
    case = IdFilter(field_name="case_id")
    kind = django_filters.ChoiceFilter(choices=EvidenceKind.choices)

    class Meta:
        model = Evidence
        fields = ("case", "kind")


class ActionItemFilter(django_filters.FilterSet):
    case = IdFilter(field_name="case_id")
    kind = django_filters.ChoiceFilter(choices=ActionKind.choices)
    status = django_filters.MultipleChoiceFilter(
        choices=ActionStatus.choices, help_text="Repeat for several."
    )
    team = IdFilter(field_name="owning_team_id", help_text="Id of the team the item is routed to.")

    class Meta:
        model = ActionItem
        fields = ("case", "kind", "status", "team")


class ApprovalFilter(django_filters.FilterSet):
    case = IdFilter(field_name="case_id")
    kind = django_filters.ChoiceFilter(choices=ApprovalKind.choices)
    status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)
    awaiting_my_decision = django_filters.BooleanFilter(
        method="filter_awaiting", help_text="true: pending requests by someone else that you may decide."
    )

    class Meta:
        model = Approval
        fields = ("case", "kind", "status", "awaiting_my_decision")

    def filter_awaiting(self, queryset: QuerySet[Approval], name: str, value: bool) -> QuerySet[Approval]:
        if not value:
            return queryset
        user = self.request.user if self.request is not None else None
        if user is None or not user.has_perm("cases.decide_approval"):
            return queryset.none()
        return queryset.filter(pk__in=pending_approvals_for(user=user).values("pk"))
