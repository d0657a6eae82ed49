"""Helpers shared by the case-lifecycle tests."""

from typing import Any

from cases.models import Case, CaseTransition


def record_of(case: Case) -> dict[str, Any]:
    """What a refused call must leave exactly as it was: the row in the DB, its log and its history."""
    row = Case.objects.get(pk=case.pk)
    return {
        "state": row.state,
        "assignee_id": row.assignee_id,
        "owning_team_id": row.owning_team_id,
        "dismissal_reason": row.dismissal_reason,
        "transitions": CaseTransition.objects.filter(case_id=case.pk).count(),
        "history": Case.history.filter(id=case.pk).count(),
    }
