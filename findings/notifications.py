"""Emails to owners: one digest per person, one signed answer link per exposure of theirs.

An email carries previews only (the detector, at most four leading characters and the length), never a
fingerprint, a location's context or anything else derived from the secret.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from findings.links import answer_link_issue, answer_link_url
from findings.models import AWAITING_ANSWER, AnswerLink, Exposure
from nhi_inventory.models import TeamMembership

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
