"""Owners who leave an exposure unanswered are reminded, then their team lead is told.

The cadence (FINDINGS_REMINDER_EVERY_DAYS = N, FINDINGS_REMINDERS_BEFORE_ESCALATION = M): an exposure that
awaits the answer of a team's identity's owners is reminded N days into its wait, again every N days until
M reminders were sent, and N days after the last one the team's lead is told, once. A wait starts again,
from zero, when the exposure regresses or is handed to another identity (see
`findings.selectors.exposures_awaiting_owners`); an answered exposure is reminded of nothing.

`owner_reminders_send` is the one sweep: run it as often as you like (the beat runs
`findings.tasks.remind_owners`). It locks the due exposures, records the reminders and escalations (on
`OwnerReminder` and in the exposure's history) and issues the answer links in one transaction, and sends the
emails only once that has committed: two sweeps at once, or one delivered twice, send nothing twice, and a
worker killed before the commit leaves nothing behind. An email that then fails to send is logged and not
retried; the cadence goes on from it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from findings.bulk import one_of
from findings.models import Exposure, OwnerReminder
from findings.notifications import (
    Waiting,
    exposure_owners,
    lead_escalation_compose,
    owner_reminder_compose,
)
from findings.selectors import exposures_awaiting_owners, exposures_due_for_reminder
from portal.roles import automation_user

logger = logging.getLogger(__name__)

HISTORY_BATCH = 1_000


@dataclass(frozen=True)
class Cadence:
    every: timedelta
    reminders: int

    @classmethod
    def from_settings(cls) -> Cadence:
        return cls(
            every=timedelta(days=settings.FINDINGS_REMINDER_EVERY_DAYS),
            reminders=settings.FINDINGS_REMINDERS_BEFORE_ESCALATION,
        )


class Step(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"


@dataclass
class ReminderSummary:
    """What one sweep did. Counts only: it is also the Celery task's result."""

    reminded: int = 0  # exposures whose owners were reminded
    escalated: int = 0  # exposures reported to their team's lead
    owner_emails: int = 0
    lead_emails: int = 0
    # Reminders recorded with nobody able to answer to email: the cadence goes on, so the lead hears of it.
    without_owner: int = 0
    # Escalations due where the team has no lead with an email: not recorded, tried again every sweep.
    without_lead: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def counting_reminder(exposure: Exposure) -> OwnerReminder | None:
    """The exposure's reminder row if it counts for its current wait (needs `exposures_awaiting_owners`)."""
    reminder: OwnerReminder | None = getattr(exposure, "owner_reminder", None)
    return reminder if reminder is not None and exposure.reminder_counts else None  # type: ignore[attr-defined]


def next_step(exposure: Exposure, *, now: datetime, cadence: Cadence) -> Step | None:
    """What is due for this exposure now, if anything (needs `exposures_awaiting_owners`' annotations)."""
    reminder = counting_reminder(exposure)
    if reminder is None:
        if exposure.wait_started_at > now - cadence.every:  # type: ignore[attr-defined]
            return None
        return Step.REMIND if cadence.reminders > 0 else Step.ESCALATE
    if reminder.escalated_at is not None:
        return None
    if (reminder.last_reminded_at or reminder.waiting_since) > now - cadence.every:
        return None
    return Step.REMIND if reminder.reminders_sent < cadence.reminders else Step.ESCALATE


@transaction.atomic
def owner_reminders_send(*, now: datetime | None = None) -> ReminderSummary:
    """Remind the owners of every exposure whose reminder is due and tell the leads of those escalated.

    One email per owner and one per lead, whatever the number of exposures: the queries grow with the
    people emailed, not with the exposures. `now` (default: the current time) is when the sweep runs.
    """
    now = timezone.now() if now is None else now
    cadence = Cadence.from_settings()
    summary = ReminderSummary()
    # Rows another transaction holds are skipped, left to the next sweep: a second sweep running at once
    # sends none of the first one's reminders, and a long import holding exposure rows neither waits for
    # the sweep nor deadlocks with it. The rows locked are then read again, as they now stand.
    due_ids = list(
        exposures_due_for_reminder(waited_since=now - cadence.every)
        .select_for_update(of=("self",), skip_locked=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not due_ids:
        return summary
    exposures = list(
        exposures_awaiting_owners()
        .filter(one_of("pk", due_ids))
        .select_related("nhi__owner_team__lead", "nhi__owner", "credential", "owner_reminder")
        .order_by("-last_seen_at", "-id")
    )
    to_remind: list[Exposure] = []
    to_escalate: list[Exposure] = []
    for exposure in exposures:
        step = next_step(exposure, now=now, cadence=cadence)
        if step is Step.REMIND:
            to_remind.append(exposure)
        elif step is Step.ESCALATE:
            to_escalate.append(exposure)
    reminders: dict[int, OwnerReminder] = {}
    mails: list[EmailMessage] = []
    _remind(to_remind, now=now, cadence=cadence, reminders=reminders, mails=mails, summary=summary)
    _escalate(to_escalate, now=now, reminders=reminders, mails=mails, summary=summary)
    if not reminders:
        return summary
    OwnerReminder.objects.bulk_create(
        reminders.values(),
        update_conflicts=True,
        unique_fields=["exposure"],
        update_fields=["waiting_since", "reminders_sent", "last_reminded_at", "escalated_at", "escalated_to"],
    )
    changed = [exposure for exposure in exposures if exposure.pk in reminders]
    Exposure.history.bulk_history_create(
        changed, batch_size=HISTORY_BATCH, update=True, default_user=automation_user()
    )
    logger.info("Owner reminders as of %s: %s", now.isoformat(), summary.as_dict())
    # Tokens live in these emails only: they leave the process once the links they name are committed.
    transaction.on_commit(lambda: _deliver(mails))
    return summary


def _reminder_for(exposure: Exposure, reminders: dict[int, OwnerReminder]) -> OwnerReminder:
    """The row to write for this exposure: the one counting for this wait, or a fresh one that starts it."""
    reminder = reminders.get(exposure.pk) or counting_reminder(exposure)
    if reminder is None:
        reminder = OwnerReminder(exposure=exposure, waiting_since=exposure.wait_started_at)  # type: ignore[attr-defined]
    reminders[exposure.pk] = reminder
    return reminder


def _remind(
    exposures: list[Exposure],
    *,
    now: datetime,
    cadence: Cadence,
    reminders: dict[int, OwnerReminder],
    mails: list[EmailMessage],
    summary: ReminderSummary,
) -> None:
    for exposure in exposures:
        reminder = _reminder_for(exposure, reminders)
        reminder.reminders_sent += 1
        reminder.last_reminded_at = now
    emailed: defaultdict[int, int] = defaultdict(int)
    for person, theirs in exposure_owners(exposures=exposures).values():
        waiting = [_waiting(exposure, reminders) for exposure in theirs]
        mails.append(owner_reminder_compose(person=person, waiting=waiting, reminders=cadence.reminders))
        summary.owner_emails += 1
        for exposure in theirs:
            emailed[exposure.pk] += 1
    for exposure in exposures:
        sent = reminders[exposure.pk].reminders_sent
        owners = emailed[exposure.pk]
        to = f"emailed to {owners} owner(s)" if owners else "no owner to email"
        exposure._change_reason = f"owner reminder {sent} of {cadence.reminders}: {to}"  # type: ignore[attr-defined]
        summary.reminded += 1
        summary.without_owner += 0 if owners else 1


def _escalate(
    exposures: list[Exposure],
    *,
    now: datetime,
    reminders: dict[int, OwnerReminder],
    mails: list[EmailMessage],
    summary: ReminderSummary,
) -> None:
    by_lead: dict[int, tuple[User, list[Exposure]]] = {}
    leaderless: set[str] = set()
    for exposure in exposures:
        # exposures_awaiting_owners keeps the exposures of a team's identities only
        assert exposure.nhi is not None
        assert exposure.nhi.owner_team is not None
        team = exposure.nhi.owner_team
        lead = team.lead
        if lead is None or not lead.is_active or not lead.email:
            leaderless.add(team.name)
            summary.without_lead += 1
            continue
        by_lead.setdefault(lead.pk, (lead, []))[1].append(exposure)
        reminder = _reminder_for(exposure, reminders)
        reminder.escalated_at, reminder.escalated_to = now, lead
        reason = f"escalated to {lead.get_username()}, lead of {team.name}, after {reminder.reminders_sent}"
        exposure._change_reason = f"{reason} reminder(s)"[:100]  # type: ignore[attr-defined]
        summary.escalated += 1
    for lead, theirs in by_lead.values():
        mails.append(lead_escalation_compose(lead=lead, waiting=[_waiting(e, reminders) for e in theirs]))
        summary.lead_emails += 1
    if leaderless:
        # Team names only; logged every sweep until the team has a lead, which is the point.
        logger.warning(
            "Unanswered exposures are due for escalation, but these teams have no lead with an email: %s",
            ", ".join(sorted(leaderless)),
        )


def _waiting(exposure: Exposure, reminders: dict[int, OwnerReminder]) -> Waiting:
    reminder = reminders[exposure.pk]
    return Waiting(exposure=exposure, since=reminder.waiting_since, reminders=reminder.reminders_sent)


def _deliver(mails: Sequence[EmailMessage]) -> None:
    """Send each email on its own: one refused address does not keep the others from going out."""
    connection = get_connection()
    for mail in mails:
        try:
            connection.send_messages([mail])
        except Exception as error:
            # Already recorded, so not retried: the cadence's next step follows. The recipient and the
            # error's kind only: the body holds answer links.
            logger.warning("Reminder email to %s not sent: %s", ", ".join(mail.to), type(error).__name__)
