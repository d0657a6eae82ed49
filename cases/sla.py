"""Service levels per severity: the due date a case gets, the policies' edits, and the escalation email.

The due date comes from the active `SlaPolicy` of the case's severity, counted from when the case was opened
(or last reopened). Overdue cases are found by a periodic sweep (`cases.sweeps.overdue_cases_escalate`, run
by celery beat), not by a task scheduled with a countdown at opening: a countdown longer than the Redis
broker's visibility timeout is redelivered (and so run twice), it is lost with a purged queue, and it would
not follow a due date that changes afterwards. The sweep reads the due dates as they are, every time.

This module does not import `cases.services` (which imports it): the escalation itself is
`cases.services.case_escalate`; the email it triggers on commit is `case_escalation_notify` below.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.canonical import text_digest
from audit.services import audit_entry_append
from cases.models import Case, SlaPolicy, user_display
from nhi_inventory.models import Team
from portal.permissions import Actor, require_permission

logger = logging.getLogger(__name__)

MAX_HOURS_TO_RESOLVE = 366 * 24


def sla_due_at(*, severity: int, start: datetime) -> datetime | None:
    """When a case of this severity, opened (or reopened) at `start`, is due; None if no SLA is active."""
    policy = SlaPolicy.objects.filter(severity=severity, is_active=True).first()
    if policy is None:
        return None
    return start + timedelta(hours=policy.hours_to_resolve)


@transaction.atomic
def sla_policy_update(
    *, actor: Actor, policy_id: int, hours_to_resolve: int, is_active: bool, reason: str = ""
) -> SlaPolicy:
    """Change how long cases of one severity may stay open, or turn that SLA off.

    Applies to cases opened, reopened or re-graded from now on; due dates already set stay as they are.
    """
    user = require_permission(actor, "cases.change_slapolicy", to="edit SLA policies")
    policy = SlaPolicy.objects.select_for_update().filter(pk=policy_id).first()
    if policy is None:
        raise ValidationError({"policy": f"No SLA policy with id {policy_id}."})
    if not isinstance(hours_to_resolve, int) or not 1 <= hours_to_resolve <= MAX_HOURS_TO_RESOLVE:
        raise ValidationError(
            {"hours_to_resolve": f"Give a whole number of hours from 1 to {MAX_HOURS_TO_RESOLVE} (a year)."}
        )
    changed = []
    if policy.hours_to_resolve != hours_to_resolve:
        changed.append(f"{policy.hours_to_resolve} h → {hours_to_resolve} h")
    if policy.is_active != is_active:
        changed.append("turned on" if is_active else "turned off")
    if not changed:
        return policy
    before = _policy_terms(policy)
    policy.hours_to_resolve = hours_to_resolve
    policy.is_active = is_active
    policy._history_user = user  # type: ignore[attr-defined]
    policy._change_reason = "; ".join(changed) + (f": {reason.strip()}" if reason.strip() else "")  # type: ignore[attr-defined]
    policy.save()
    audit_entry_append(
        actor=user,
        event="sla_policy.update",
        target=policy,
        before=before,
        after=_policy_terms(policy),
        details={"severity": policy.severity, "reason": text_digest(reason.strip())},
    )
    return policy


def _policy_terms(policy: SlaPolicy) -> dict[str, int | bool]:
    # Seconds, a whole number: the chain's canonical JSON has no floats, and hours may become minutes later.
    return {"seconds_to_resolve": policy.hours_to_resolve * 3600, "is_active": policy.is_active}


# --- The escalation email ----------------------------------------------------------------------------------


def escalation_teams(case: Case) -> list[Team]:
    """The case's owning team; failing that (not assigned yet), the teams owning its linked identities."""
    if case.owning_team is not None:
        return [case.owning_team]
    teams = (
        Team.objects.filter(identities__case_links__case=case)
        .select_related("lead")
        .distinct()
        .order_by("name")
    )
    return list(teams)


def escalation_addresses(teams: list[Team]) -> list[str]:
    """Each team's lead (if active with an address), else the team's contact address."""
    addresses: list[str] = []
    for team in teams:
        lead = team.lead
        address = lead.email if lead is not None and lead.is_active and lead.email else team.contact_email
        if address and address not in addresses:
            addresses.append(address)
    return addresses


def escalation_recipients_sentence(case: Case) -> str:
    """Who the escalation email goes to, for the comment written with the escalation."""
    teams = escalation_teams(case)
    named = [
        f"{user_display(team.lead)} (lead of {team.name})"
        if team.lead is not None
        else f"{team.name}'s contact"
        for team in teams
        if escalation_addresses([team])
    ]
    if not named:
        return "No team lead or team address to email: the case has no team with one."
    return "Emailing " + ", ".join(named) + "."


def _email(case: Case, addresses: list[str]) -> EmailMessage:
    # The case's own fields only: titles and states, never a finding's preview, context or fingerprint.
    link = settings.PORTAL_BASE_URL + reverse("admin:cases_case_change", args=(case.pk,))
    due = timezone.localtime(case.due_at).strftime("%Y-%m-%d %H:%M %Z") if case.due_at else "—"
    body = "\n".join(
        (
            f"{case.reference} is past its due date and has been escalated.",
            "",
            f"Title: {case.title}",
            f"Severity: {case.get_severity_display()}",
            f"State: {case.get_state_display()}",
            f"Due: {due}",
            f"Owning team: {case.owning_team or '—'}",
            f"Assignee: {user_display(case.assignee)}",
            "",
            f"Open the case: {link}",
        )
    )
    return EmailMessage(
        subject=f"[NHI portal] Overdue: {case.reference} ({case.get_severity_display()})",
        body=body,
        to=addresses,
    )


def case_escalation_notify(*, case_id: int) -> int:
    """Email the teams' leads about an escalated case, once; returns the number of emails sent (0 or 1).

    Run on commit of `case_escalate`, and again by the sweep for escalations whose email did not go out
    (the worker died after the commit, or the mail server refused). The case is claimed by a conditional
    update and the email is sent inside that transaction: a failed send rolls the claim back (to be tried
    again by the next sweep); a redelivery after a successful send finds the claim and sends nothing.
    """
    with transaction.atomic():
        case = (
            Case.objects.select_for_update()
            .filter(pk=case_id, escalated_at__isnull=False, escalation_notified_at__isnull=True)
            .first()
        )
        if case is None:
            return 0
        claimed = Case.objects.filter(
            pk=case_id, escalated_at__isnull=False, escalation_notified_at__isnull=True
        ).update(escalation_notified_at=timezone.now())
        if not claimed:  # SQLite has no row locks: another delivery got here first
            return 0
        addresses = escalation_addresses(escalation_teams(case))
        if not addresses:
            logger.warning("%s escalated: no team lead or team address to email", case.reference)
            return 0
        sent = get_connection().send_messages([_email(case, addresses)]) or 0
    logger.info("%s escalated: emailed %s address(es)", case.reference, len(addresses))
    return sent
