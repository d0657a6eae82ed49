"""Signed, expiring, single-use links to one exposure's answer form, sent to its owners by email.

The token is signed with Django's signing (salted, so no other signed value of the portal passes for one),
carries its signing time (so it expires after FINDINGS_ANSWER_LINK_MAX_AGE seconds) and names an
`AnswerLink` row that holds only the SHA-256 of the token's random nonce (so it works once, and a copy of
the table answers nothing). A link lets its holder answer that one exposure as the owner it was sent to:
it signs nobody in and opens no other page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from findings.models import AnswerLink, Exposure
from findings.selectors import exposure_is_answerable_by

SALT = "findings.answer-link"


class Refusal(StrEnum):
    TAMPERED = "tampered"
    EXPIRED = "expired"
    USED = "used"
    WRONG_EXPOSURE = "wrong_exposure"
    ANSWERED = "answered"
    NOT_OWNER = "not_owner"


_SENTENCES = {
    Refusal.TAMPERED: "This link is not valid: it was changed or cut short. Use it as the email gives it.",
    Refusal.EXPIRED: "This link has expired. Sign in to answer, or wait for the next reminder.",
    Refusal.USED: "This link was already used: each link answers once. Sign in to see or change the answer.",
    Refusal.WRONG_EXPOSURE: "This link is for another exposure.",
    Refusal.ANSWERED: "This exposure no longer awaits an answer: someone has already answered for it.",
    Refusal.NOT_OWNER: "The person this link was sent to no longer answers for this identity.",
}


class AnswerLinkRefused(Exception):
    """A link that cannot be used, with the reason in a sentence fit for the person who followed it."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(_SENTENCES[reason])
        self.reason = reason


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _max_age() -> timedelta:
    return timedelta(seconds=settings.FINDINGS_ANSWER_LINK_MAX_AGE)


def answer_link_issue(*, exposure: Exposure, user: User) -> str:
    """Record a new link for this owner and exposure and return its token (shown once, never stored)."""
    nonce = secrets.token_urlsafe(32)
    now = timezone.now()
    link = AnswerLink.objects.create(
        exposure=exposure,
        user=user,
        nonce_hash=_nonce_hash(nonce),
        created_at=now,
        expires_at=now + _max_age(),
    )
    return _signer().sign_object({"l": link.pk, "n": nonce})


def answer_links_reissue(*, exposures: Sequence[Exposure], user: User) -> list[str]:
    """New links for this owner, one per exposure (tokens in that order), in two queries whatever the count.

    For reminders: an earlier link's token was never stored, so it cannot be sent again; the owner's live
    links for these exposures expire now instead, and each keeps at most one live link per exposure.
    """
    if not exposures:
        return []
    now = timezone.now()
    AnswerLink.objects.filter(
        user=user, exposure__in=exposures, used_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    nonces = [secrets.token_urlsafe(32) for _ in exposures]
    links = AnswerLink.objects.bulk_create(
        AnswerLink(
            exposure=exposure,
            user=user,
            nonce_hash=_nonce_hash(nonce),
            created_at=now,
            expires_at=now + _max_age(),
        )
        for exposure, nonce in zip(exposures, nonces, strict=True)
    )
    return [
        _signer().sign_object({"l": link.pk, "n": nonce}) for link, nonce in zip(links, nonces, strict=True)
    ]


def answer_link_url(*, exposure_id: int, token: str) -> str:
    """The absolute address of the link, for emails (which have no request to build it from)."""
    path = reverse("findings:answer_link", kwargs={"exposure_id": exposure_id, "token": token})
    return f"{settings.PORTAL_BASE_URL}{path}"


def answer_link_verify(*, token: str, exposure_id: int, lock: bool) -> AnswerLink:
    try:
        payload = _signer().unsign_object(token, max_age=_max_age())
    except signing.SignatureExpired:  # a subclass of BadSignature: caught first
        raise AnswerLinkRefused(Refusal.EXPIRED) from None
    except (signing.BadSignature, ValueError):
        raise AnswerLinkRefused(Refusal.TAMPERED) from None
    if not (
        isinstance(payload, dict) and isinstance(payload.get("l"), int) and isinstance(payload.get("n"), str)
    ):
        raise AnswerLinkRefused(Refusal.TAMPERED)
    links = AnswerLink.objects.select_related("exposure", "user")
    if lock:
        # Lock the link only; exposure_answer locks the exposure itself.
        links = links.select_for_update(of=("self",))
    link = links.filter(pk=payload["l"]).first()
    # A signed token whose row is gone or whose nonce differs was not issued as it stands.
    if link is None or not hmac.compare_digest(link.nonce_hash, _nonce_hash(payload["n"])):
        raise AnswerLinkRefused(Refusal.TAMPERED)
    if link.exposure_id != exposure_id:
        raise AnswerLinkRefused(Refusal.WRONG_EXPOSURE)
    if link.used_at is not None:
        raise AnswerLinkRefused(Refusal.USED)
    # The signature's age is checked above; the row's own expiry also covers a later, shorter setting.
    if link.expires_at <= timezone.now():
        raise AnswerLinkRefused(Refusal.EXPIRED)
    if not link.exposure.awaits_answer:
        raise AnswerLinkRefused(Refusal.ANSWERED)
    # Checked again by exposure_answer; here so that a former owner is not shown a form they cannot send.
    if not exposure_is_answerable_by(exposure=link.exposure, user=link.user):
        raise AnswerLinkRefused(Refusal.NOT_OWNER)
    return link


def answer_link_open(*, token: str, exposure_id: int) -> AnswerLink:
    """The link behind a token, if it may still answer this exposure; raises AnswerLinkRefused otherwise."""
    return answer_link_verify(token=token, exposure_id=exposure_id, lock=False)
