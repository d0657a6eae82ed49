"""Emails about hand-offs, to the owning team's lead (or, without one, the team's contact address).

They name the case, the action item, the endpoint and what went wrong (a status code or an error class):
never the payload, a key or a signature.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from handoffs.models import Delivery
from nhi_inventory.models import Team

logger = logging.getLogger(__name__)


def team_contacts(team: Team) -> list[str]:
    lead = team.lead
    if lead is not None and lead.is_active and lead.email:
        return [lead.email]
    return [team.contact_email] if team.contact_email else []


def _greeting(team: Team) -> str:
    lead = team.lead
    return f"Hello {lead.get_short_name() or lead.get_username()}," if lead else "Hello,"


def _delivery_link(delivery: Delivery) -> str:
    return settings.PORTAL_BASE_URL + reverse("admin:handoffs_delivery_change", args=(delivery.pk,))


def _send(delivery: Delivery, *, subject: str, lines: list[str]) -> bool:
    team = delivery.action_item.owning_team
    recipients = team_contacts(team)
    if not recipients:
        logger.warning(
            "Hand-off delivery %s: team %s has no lead or contact email to tell.", delivery.pk, team
        )
        return False
    send_mail(subject=subject, message="\n".join(lines), from_email=None, recipient_list=recipients)
    return True


def delivery_failed_send(delivery: Delivery, *, why: str) -> bool:
    """The portal gave up sending: tell the lead, who can fix the endpoint and hand the item off again."""
    item = delivery.action_item
    case = item.case
    return _send(
        delivery,
        subject=f"[NHI portal] Hand-off failed: {case.reference} {item.get_kind_display().lower()}",
        lines=[
            _greeting(item.owning_team),
            "",
            f"The portal could not hand off an action item of your team {item.owning_team.name}:",
            "",
            f"  Case:        {case.reference} {case.title}",
            f"  Action item: {item.get_kind_display()}: {item.title}",
            f"  Endpoint:    {delivery.endpoint.name}",
            f"  Attempts:    {delivery.attempts} ({why})",
            "",
            "Every attempt is logged on the delivery:",
            _delivery_link(delivery),
            "",
            "Check the endpoint's URL and the receiver, then hand the action item off again.",
        ],
    )


def outcome_failed_send(*, delivery_id: int) -> bool:
    """The receiver reported that it could not do the work: tell the lead."""
    delivery = (
        Delivery.objects.select_related("endpoint", "action_item__case", "action_item__owning_team__lead")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return False
    item = delivery.action_item
    case = item.case
    lines = [
        _greeting(item.owning_team),
        "",
        f"{delivery.endpoint.name} reports that it could not do an action item of your team "
        f"{item.owning_team.name}:",
        "",
        f"  Case:        {case.reference} {case.title}",
        f"  Action item: {item.get_kind_display()}: {item.title}",
    ]
    if delivery.external_reference:
        lines.append(f"  Reference:   {delivery.external_reference}")
    if delivery.outcome_note:
        lines.append(f"  Its note:    {delivery.outcome_note}")
    lines += ["", "The action item is open again:", _delivery_link(delivery)]
    return _send(
        delivery,
        subject=f"[NHI portal] Hand-off reported failed: {case.reference} {item.get_kind_display().lower()}",
        lines=lines,
    )
