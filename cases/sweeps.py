"""The periodic jobs on cases, run by celery beat through `cases.tasks` (see `portal/celery.py`).

Each sweep reads what is due *now* from the database and hands every row to one service, each in its own
transaction: a sweep that dies half-way leaves every case either done or untouched, and a sweep delivered
twice (or two at once) finds nothing left to do the second time, because each service refuses a case that
is no longer due (CaseWorkflowError), under the case's row lock.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from cases.errors import CaseWorkflowError
from cases.models import OPEN_STATES, Case, CaseState, ReportFormat, ReportSnapshot
from cases.reports.services import report_snapshot_create
from cases.services import case_escalate, case_risk_acceptance_expire
from cases.sla import case_escalation_notify
from frameworks.models import Framework
from portal.permissions import Actor, require_permission

logger = logging.getLogger(__name__)

# The scheduled snapshots: PDF, the form people read, stored byte for byte like a snapshot saved by hand.
SCHEDULED_SNAPSHOT_FORMAT = ReportFormat.PDF


def overdue_cases_escalate(*, actor: Actor) -> int:
    """Escalate every open case past its due date that is not escalated yet; returns how many were.

    Then emails the escalations whose email is still owed (the worker died after an escalation committed,
    or the mail server refused it), so an escalation's email is sent once it can be, and only once.
    """
    now = timezone.now()
    due = (
        Case.objects.filter(state__in=OPEN_STATES, escalated_at__isnull=True, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)
    )
    escalated = 0
    for case_id in list(due):
        try:
            case_escalate(actor=actor, case_id=case_id)
        except CaseWorkflowError as refusal:  # moved, closed or escalated since the list was read
            logger.info("escalation skipped: %s", refusal)
            continue
        escalated += 1
    owed = Case.objects.filter(
        state__in=OPEN_STATES, escalated_at__isnull=False, escalation_notified_at__isnull=True
    ).values_list("pk", flat=True)
    for case_id in list(owed):
        try:
            case_escalation_notify(case_id=case_id)
        except Exception:  # a refused address or a mail server down: the next sweep tries again
            logger.exception("escalation email for case #%s not sent; the next sweep tries again", case_id)
    return escalated


def expired_risk_acceptances_reopen(*, actor: Actor) -> int:
    """Reopen every risk-accepted case whose acceptance ended before today; returns how many were."""
    expired = Case.objects.filter(
        state=CaseState.RISK_ACCEPTED, risk_accepted_until__lt=timezone.localdate()
    ).values_list("pk", flat=True)
    reopened = 0
    for case_id in list(expired.order_by("pk")):
        try:
            case_risk_acceptance_expire(actor=actor, case_id=case_id)
        except CaseWorkflowError as refusal:
            logger.info("risk-acceptance expiry skipped: %s", refusal)
            continue
        reopened += 1
    return reopened


def snapshot_week(today: date) -> date:
    """The last day (Sunday) of the most recent full ISO week before `today`."""
    return today - timedelta(days=today.weekday() + 1)


def alignment_snapshots_take(*, actor: Actor, today: date | None = None) -> int:
    """Store one alignment-report snapshot per framework for the last full week, unless it exists already.

    Each snapshot covers every case identified up to the end of that week (Sunday), as the report stands
    when it is taken. Run daily: the first run of a week takes the snapshots, later runs find them. The
    framework's row is locked while its snapshot is checked for and taken, so two deliveries at once take
    it once (SQLite, which has no row locks, serialises the two writes instead). Returns how many were taken.
    """
    user = require_permission(actor, "cases.add_reportsnapshot", to="save report snapshots")
    until = snapshot_week(today or timezone.localdate())
    taken = 0
    for key in list(Framework.objects.order_by("key").values_list("key", flat=True)):
        with transaction.atomic():
            Framework.objects.select_for_update().filter(key=key).first()
            exists = ReportSnapshot.objects.filter(
                framework_key=key,
                format=SCHEDULED_SNAPSHOT_FORMAT,
                since__isnull=True,
                until=until,
                requested_by=user,
            ).exists()
            if exists:
                continue
            report_snapshot_create(
                actor=user, framework_key=key, fmt=SCHEDULED_SNAPSHOT_FORMAT, since=None, until=until
            )
        taken += 1
    return taken
