"""Emails to owners: one digest per person, one signed answer link per exposure of theirs.

An email carries previews only (the detector, at most four leading characters and the length), never a
fingerprint, a location's context or anything else derived from the secret.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage, send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from findings.links import answer_link_issue, answer_link_url, answer_links_reissue
from findings.models import AWAITING_ANSWER, AnswerLink, Exposure
from nhi_inventory.models import Team, TeamMembership

MAX_LINKS_PER_EMAIL = 50


def owner_digest_send(*, exposure_ids: Iterable[int]) -> int:
    """Email every owner of these exposures (those still awaiting an answer) their links; return the count.

    Each owner's email is sent in its own transaction with its links, so a failed send leaves no link
    behind, and an owner who already holds a live, unused link for an exposure is not sent another: a
    retried or redelivered task does not email anyone twice.
    """
    exposures = list(
        Exposure.objects.filter(pk__in=list(exposure_ids), state__in=AWAITING_ANSWER, nhi__isnull=False)
        .select_related("nhi", "nhi__owner", "credential")
        .order_by("-last_seen_at", "-id")
    )
    sent = 0
    for person, theirs in _owners_of(exposures).values():
        with transaction.atomic():
            linked = _already_linked(person, theirs)
            fresh = [exposure for exposure in theirs if exposure.pk not in linked]
            if not fresh:
                continue
            shown = fresh[:MAX_LINKS_PER_EMAIL]
            links = [(exposure, _link_for(exposure, person)) for exposure in shown]
            send_mail(
                subject=_subject(len(fresh)),
                message=_body(person, links, more=len(fresh) - len(shown)),
                from_email=None,
                recipient_list=[person.email],
            )
            sent += 1
    return sent


def _owners_of(exposures: list[Exposure]) -> dict[int, tuple[User, list[Exposure]]]:
    """Each owner (team member or personal owner) who may answer, with the exposures they answer for."""
    team_ids = {
        exposure.nhi.owner_team_id for exposure in exposures if exposure.nhi and exposure.nhi.owner_team_id
    }
    members: dict[int, list[User]] = defaultdict(list)
    for membership in TeamMembership.objects.filter(team_id__in=team_ids).select_related("user"):
        members[membership.team_id].append(membership.user)
    found: dict[int, tuple[User, list[Exposure]]] = {}
    for exposure in exposures:
        nhi = exposure.nhi
        assert nhi is not None  # the query keeps attributed exposures only
        people = list(members.get(nhi.owner_team_id, [])) if nhi.owner_team_id else []
        if nhi.owner is not None:
            people.append(nhi.owner)
        for person in people:
            _, theirs = found.setdefault(person.pk, (person, []))
            if not theirs or theirs[-1].pk != exposure.pk:  # a team member who is also the personal owner
                theirs.append(exposure)
    # A link the service would refuse (inactive, or no right to answer) is only noise in an inbox.
    return {
        pk: (person, theirs)
        for pk, (person, theirs) in found.items()
        if person.is_active and person.email and person.has_perm("findings.answer_exposure")
    }


def _already_linked(person: User, exposures: list[Exposure]) -> set[int]:
    return set(
        AnswerLink.objects.filter(
            user=person, exposure__in=exposures, used_at__isnull=True, expires_at__gt=timezone.now()
        ).values_list("exposure_id", flat=True)
    )


def _link_for(exposure: Exposure, person: User) -> str:
    return answer_link_url(exposure_id=exposure.pk, token=answer_link_issue(exposure=exposure, user=person))


def _subject(count: int) -> str:
    noun = "leaked secret awaits" if count == 1 else "leaked secrets await"
    return f"[NHI portal] {count} {noun} your answer"


def _body(person: User, links: list[tuple[Exposure, str]], *, more: int) -> str:
    owner_page = f"{settings.PORTAL_BASE_URL}{reverse('findings:owner_list')}"
    days = settings.FINDINGS_ANSWER_LINK_MAX_AGE / 86400
    lines = [
        f"Hello {person.get_short_name() or person.get_username()},",
        "",
        "Secrets of identities you own were found where they should not be. For each one below, say whether",
        "it is yours and real, not yours, a false positive, or already rotated or revoked.",
        f"Each link opens that one answer form; it works once and expires after {days:g} day(s).",
        "",
    ]
    for number, (exposure, url) in enumerate(links, start=1):
        nhi = exposure.nhi
        assert nhi is not None
        preview = exposure.credential.preview if exposure.credential else exposure.preview
        lines += [
            f"{number}. {nhi.name}: {preview}",
            f"   {exposure.detector}, validity {exposure.get_validity_display().lower()}, "
            f"in {exposure.locations} location(s), first seen {exposure.first_seen_at:%Y-%m-%d}, "
            f"last seen {exposure.last_seen_at:%Y-%m-%d}",
            f"   Answer: {url}",
            "",
        ]
    if more:
        lines += [f"... and {more} more. Sign in to see them all: {owner_page}", ""]
    lines += [f"All the exposures awaiting your answer, after signing in: {owner_page}"]
    return "\n".join(lines) + "\n"


# --- Reminders and escalations (findings/reminders.py) ------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """An exposure in a reminder or an escalation: since when it waits, and the reminders sent for it."""

    exposure: Exposure
    since: datetime
    reminders: int


def exposure_owners(*, exposures: list[Exposure]) -> dict[int, tuple[User, list[Exposure]]]:
    """Who may answer for these exposures (team members and personal owners, active, with an email and the
    right to answer), each with the exposures they answer for, keyed by user id. Exposures need `nhi` and
    `nhi__owner` loaded; one query for the teams' members, and each person's permissions."""
    return _owners_of(exposures)


def owner_reminder_compose(*, person: User, waiting: Sequence[Waiting], reminders: int) -> EmailMessage:
    """One owner's reminder: a fresh answer link for each exposure shown (their earlier links for those
    exposures stop working, see `answer_links_reissue`). Issues the links; sending is the caller's."""
    shown = list(waiting[:MAX_LINKS_PER_EMAIL])
    tokens = answer_links_reissue(exposures=[entry.exposure for entry in shown], user=person)
    owner_page = f"{settings.PORTAL_BASE_URL}{reverse('findings:owner_list')}"
    days = settings.FINDINGS_ANSWER_LINK_MAX_AGE / 86400
    lines = [
        f"Hello {person.get_short_name() or person.get_username()},",
        "",
        "A reminder: these secrets of identities you own were found where they should not be, and still",
        "await your answer. For each one, say whether it is yours and real, not yours, a false positive, or",
        "already rotated or revoked.",
        f"Each link opens that one answer form; it works once and expires after {days:g} day(s). Links sent",
        "to you earlier for these secrets no longer work.",
        "",
    ]
    for number, (entry, token) in enumerate(zip(shown, tokens, strict=True), start=1):
        exposure = entry.exposure
        url = answer_link_url(exposure_id=exposure.pk, token=token)
        lines += [
            f"{number}. {_identity_name(exposure)}: {_preview(exposure)}",
            f"   {exposure.detector}, validity {exposure.get_validity_display().lower()}, "
            f"in {exposure.locations} location(s), awaiting an answer since {entry.since:%Y-%m-%d}; "
            f"reminder {entry.reminders} of {reminders}",
            f"   Answer: {url}",
            "",
        ]
    if len(waiting) > len(shown):
        lines += [f"... and {len(waiting) - len(shown)} more. Sign in to see them all: {owner_page}", ""]
    lines += [
        "Left unanswered after the last reminder, a secret is reported to your team's lead.",
        f"All the exposures awaiting your answer, after signing in: {owner_page}",
    ]
    count = len(waiting)
    noun = "leaked secret still awaits" if count == 1 else "leaked secrets still await"
    return EmailMessage(
        subject=f"[NHI portal] Reminder: {count} {noun} your answer",
        body="\n".join(lines) + "\n",
        to=[person.email],
    )


def lead_escalation_compose(*, lead: User, waiting: Sequence[Waiting]) -> EmailMessage:
    """A team lead's escalation: what their teams' owners left unanswered, by team, with links to sign in
    and see each one (no answer links: those are for the owners). Exposures need `nhi__owner_team` loaded."""
    teams: dict[int, tuple[Team, list[Waiting]]] = {}
    for entry in waiting:
        team = _team_of(entry)
        teams.setdefault(team.pk, (team, []))[1].append(entry)
    names = ", ".join(team.name for team, _ in teams.values())
    lines = [
        f"Hello {lead.get_short_name() or lead.get_username()},",
        "",
        f"You lead {names}. The owners of the identities below were reminded and have still not said",
        "whether these leaked secrets are theirs: until they do, nobody has confirmed the leak or rotated",
        "the secret.",
        "Please see that an owner of each identity answers.",
        "",
    ]
    shown = [entry for _, entries in teams.values() for entry in entries][:MAX_LINKS_PER_EMAIL]
    current: Team | None = None
    for number, entry in enumerate(shown, start=1):
        exposure, team = entry.exposure, _team_of(entry)
        if team != current:
            current = team
            lines += [f"{team.name}: {len(teams[team.pk][1])} unanswered", ""]
        path = reverse("findings:exposure_detail", kwargs={"exposure_id": exposure.pk})
        lines += [
            f"{number}. {_identity_name(exposure)}: {_preview(exposure)}",
            f"   {exposure.detector}, validity {exposure.get_validity_display().lower()}, "
            f"awaiting an answer since {entry.since:%Y-%m-%d}, {entry.reminders} reminder(s) sent",
            f"   {settings.PORTAL_BASE_URL}{path}",
            "",
        ]
    if len(waiting) > len(shown):
        lines += [f"... and {len(waiting) - len(shown)} more.", ""]
    lines += ["You are told once per secret; its owners' reminders have stopped."]
    count = len(waiting)
    noun = "leaked secret left" if count == 1 else "leaked secrets left"
    return EmailMessage(
        subject=f"[NHI portal] Escalation: {count} {noun} unanswered by {names}",
        body="\n".join(lines) + "\n",
        to=[lead.email],
    )


def _team_of(entry: Waiting) -> Team:
    team = entry.exposure.nhi.owner_team if entry.exposure.nhi else None
    assert team is not None  # only exposures of a team's identities are escalated
    return team


def _identity_name(exposure: Exposure) -> str:
    return exposure.nhi.name if exposure.nhi else "(no identity)"


def _preview(exposure: Exposure) -> str:
    """The credential's preview when the exposure matches a registered one, else the exposure's own."""
    return exposure.credential.preview if exposure.credential else exposure.preview
