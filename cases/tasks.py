"""Periodic jobs on cases, scheduled by celery beat (`portal/celery.py`).

Each task takes no argument but ids (here: none, they read what is due now), calls one sweep, and is safe to
deliver twice, so it runs with `acks_late`: a worker that dies mid-task has its message delivered again
(`task_reject_on_worker_lost`), and the second run finds done what the first committed.
The actor is the portal's own account (`portal-automation`), so every change is attributed to it.
"""

from __future__ import annotations

from celery import shared_task

from cases.sweeps import alignment_snapshots_take, expired_risk_acceptances_reopen, overdue_cases_escalate
from portal.roles import automation_user


@shared_task(acks_late=True)
def escalate_overdue_cases() -> int:
    """Escalate open cases past their due date (and send escalation emails still owed)."""
    return overdue_cases_escalate(actor=automation_user())


@shared_task(acks_late=True)
def reopen_expired_risk_acceptances() -> int:
    """Reopen risk-accepted cases whose acceptance has expired."""
    return expired_risk_acceptances_reopen(actor=automation_user())


@shared_task(acks_late=True)
def snapshot_alignment_reports() -> int:
    """Store last week's alignment-report snapshot of each framework, once per week."""
    return alignment_snapshots_take(actor=automation_user())
