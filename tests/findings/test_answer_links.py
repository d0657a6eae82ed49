"""Emailed answer links: signed, expiring, single-use, for one exposure, granting nothing else; the digest."""

import hashlib
import re
import time
from datetime import timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from findings.links import SALT, AnswerLinkRefused, Refusal, answer_link_issue, answer_link_open
from findings.models import AnswerLink, Exposure, ExposureState
from findings.notifications import MAX_LINKS_PER_EMAIL, owner_digest_send
from findings.services import Answer
from findings.tasks import notify_owners
from nhi_inventory.fingerprints import fingerprint_secret, redacted_preview
from tests.factories import NonHumanIdentityFactory, UserFactory
from tests.findings.conftest import MakeExposure
from tests.findings.leaks import tables_containing

pytestmark = pytest.mark.django_db

OWNER_LIST = reverse("findings:owner_list")


def link_path(exposure: Exposure, token: str) -> str:
    return reverse("findings:answer_link", kwargs={"exposure_id": exposure.pk, "token": token})


@pytest.fixture
def exposure(payments_identity: Any, make_exposure: MakeExposure) -> Exposure:
    return make_exposure(payments_identity)


@pytest.fixture
def token(exposure: Exposure, owner: Any) -> str:
    return answer_link_issue(exposure=exposure, user=owner)


def later(seconds: float) -> Any:
    """Move the signer's clock (django.core.signing reads time.time) `seconds` ahead."""
    now = time.time()
    return mock.patch("django.core.signing.time.time", return_value=now + seconds)


def refusal_of(response: Any) -> str:
    assert response.status_code == 403
    return str(response.context["reason"])


# --- Issuing ----------------------------------------------------------------------------------------------


def test_a_link_stores_only_the_hash_of_its_nonce(exposure: Exposure, token: str) -> None:
    payload = signing.TimestampSigner(salt=SALT).unsign_object(token)
    link = AnswerLink.objects.get()

    assert payload["l"] == link.pk
    assert link.nonce_hash == hashlib.sha256(payload["n"].encode()).hexdigest()
    assert tables_containing([payload["n"]]) == []


def test_a_link_expires_after_the_configured_age(exposure: Exposure, token: str) -> None:
    link = AnswerLink.objects.get()

    assert (link.expires_at - link.created_at).total_seconds() == settings.FINDINGS_ANSWER_LINK_MAX_AGE


# --- Opening and answering --------------------------------------------------------------------------------


def test_a_valid_link_shows_that_exposures_form(
    client: Any, exposure: Exposure, token: str, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    other = make_exposure(payments_identity)

    response = client.get(link_path(exposure, token))

    assert response.status_code == 200
    content = response.content.decode()
    assert exposure.preview in content
    assert other.preview not in content
    assert 'name="answer"' in content


def test_the_link_page_keeps_the_token_out_of_referers_and_caches(
    client: Any, exposure: Exposure, token: str
) -> None:
    response = client.get(link_path(exposure, token))

    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


def test_a_valid_link_answers_as_the_owner_it_was_sent_to(
    client: Any, exposure: Exposure, token: str, owner: Any
) -> None:
    response = client.post(
        link_path(exposure, token), {"answer": Answer.FALSE_POSITIVE, "note": "test fixture"}
    )

    assert response.status_code == 200
    exposure.refresh_from_db()
    assert (exposure.state, exposure.answered_by, exposure.answer_note) == (
        ExposureState.FALSE_POSITIVE,
        owner,
        "test fixture",
    )
    row = exposure.history.filter(history_change_reason__startswith="owner answer:").get()
    assert row.history_user == owner


def test_answering_spends_the_link(client: Any, exposure: Exposure, token: str) -> None:
    client.post(link_path(exposure, token), {"answer": Answer.CONFIRM})

    assert AnswerLink.objects.get().used_at is not None


def test_a_used_link_is_refused(client: Any, exposure: Exposure, token: str) -> None:
    client.post(link_path(exposure, token), {"answer": Answer.CONFIRM})

    response = client.get(link_path(exposure, token))

    assert refusal_of(response).startswith("This link was already used")


def test_a_used_link_refuses_a_second_answer(client: Any, exposure: Exposure, token: str) -> None:
    # A confirmed exposure may still be reported rotated: only the spent link stands in the way.
    client.post(link_path(exposure, token), {"answer": Answer.CONFIRM})

    response = client.post(
        link_path(exposure, token),
        {"answer": Answer.REMEDIATED, "remediation": "revoked", "remediated_at": "2026-01-01"},
    )

    assert refusal_of(response).startswith("This link was already used")
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.CONFIRMED


def test_a_refused_answer_leaves_the_link_unused(client: Any, exposure: Exposure, token: str) -> None:
    response = client.post(link_path(exposure, token), {"answer": Answer.NOT_OURS})

    assert response.context["form"].errors == {
        "suggested_owner": ["Say whose it is (a team or a person), so it can be handed on."]
    }
    assert AnswerLink.objects.get().used_at is None


def test_an_expired_link_is_refused(client: Any, exposure: Exposure, token: str) -> None:
    with later(settings.FINDINGS_ANSWER_LINK_MAX_AGE + 1):
        response = client.get(link_path(exposure, token))

    assert refusal_of(response) == "This link has expired. Sign in to answer, or wait for the next reminder."


def test_an_expired_link_cannot_answer(client: Any, exposure: Exposure, token: str) -> None:
    with later(settings.FINDINGS_ANSWER_LINK_MAX_AGE + 1):
        response = client.post(link_path(exposure, token), {"answer": Answer.CONFIRM})

    assert response.status_code == 403
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.PENDING


def test_a_link_still_works_a_minute_before_it_expires(client: Any, exposure: Exposure, token: str) -> None:
    with later(settings.FINDINGS_ANSWER_LINK_MAX_AGE - 60):
        response = client.get(link_path(exposure, token))

    assert response.status_code == 200


def test_a_link_past_its_recorded_expiry_is_refused(exposure: Exposure, token: str) -> None:
    AnswerLink.objects.update(expires_at=timezone.now())

    with pytest.raises(AnswerLinkRefused) as refused:
        answer_link_open(token=token, exposure_id=exposure.pk)

    assert refused.value.reason == Refusal.EXPIRED


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="signature"),
        pytest.param(lambda token: ("e" if token[0] != "e" else "f") + token[1:], id="payload"),
        pytest.param(lambda token: token[: len(token) // 2], id="cut-short"),
    ],
)
def test_a_tampered_link_is_refused(client: Any, exposure: Exposure, token: str, tamper: Any) -> None:
    response = client.get(link_path(exposure, tamper(token)))

    assert refusal_of(response).startswith("This link is not valid")


def test_a_token_signed_for_something_else_is_refused(exposure: Exposure, owner: Any) -> None:
    link = AnswerLink.objects.create(
        exposure=exposure,
        user=owner,
        nonce_hash=hashlib.sha256(b"n").hexdigest(),
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=1),
    )
    # Right payload, but signed with another salt (as another feature of the portal would sign it).
    forged = signing.TimestampSigner(salt="another.feature").sign_object({"l": link.pk, "n": "n"})

    with pytest.raises(AnswerLinkRefused) as refused:
        answer_link_open(token=forged, exposure_id=exposure.pk)

    assert refused.value.reason == Refusal.TAMPERED


def test_a_token_whose_nonce_does_not_match_is_refused(exposure: Exposure, token: str) -> None:
    payload = signing.TimestampSigner(salt=SALT).unsign_object(token)
    guessed = signing.TimestampSigner(salt=SALT).sign_object({"l": payload["l"], "n": "guessed"})

    with pytest.raises(AnswerLinkRefused) as refused:
        answer_link_open(token=guessed, exposure_id=exposure.pk)

    assert refused.value.reason == Refusal.TAMPERED


def test_a_link_for_another_exposure_is_refused(
    client: Any, exposure: Exposure, token: str, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    other = make_exposure(payments_identity)

    response = client.post(link_path(other, token), {"answer": Answer.CONFIRM})

    assert refusal_of(response) == "This link is for another exposure."
    other.refresh_from_db()
    assert other.state == ExposureState.PENDING


def test_a_link_for_an_exposure_answered_meanwhile_is_refused(
    client: Any, exposure: Exposure, token: str
) -> None:
    Exposure.objects.filter(pk=exposure.pk).update(state=ExposureState.NOT_OURS)

    response = client.get(link_path(exposure, token))

    assert refusal_of(response).startswith("This exposure no longer awaits an answer")


def test_a_link_of_an_owner_who_left_the_team_is_refused(
    client: Any, exposure: Exposure, token: str, owner: Any
) -> None:
    owner.team_memberships.all().delete()

    response = client.post(link_path(exposure, token), {"answer": Answer.CONFIRM})

    assert refusal_of(response) == "The person this link was sent to no longer answers for this identity."
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.PENDING


# --- Granting nothing else --------------------------------------------------------------------------------


def test_using_a_link_signs_nobody_in(client: Any, exposure: Exposure, token: str) -> None:
    client.post(link_path(exposure, token), {"answer": Answer.CONFIRM})

    assert "_auth_user_id" not in client.session
    response = client.get(OWNER_LIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_link_does_not_open_the_exposures_detail_page(client: Any, exposure: Exposure, token: str) -> None:
    client.get(link_path(exposure, token))

    response = client.get(reverse("findings:exposure_detail", args=[exposure.pk]))

    assert response.status_code == 302


# --- The digest email -------------------------------------------------------------------------------------


def links_in(body: str) -> list[str]:
    return re.findall(r"Answer: (\S+)", body)


def test_each_owner_gets_one_email_with_a_link_per_exposure(
    mailoutbox: Any, owner: Any, platform_owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposures = [make_exposure(payments_identity), make_exposure(payments_identity)]

    sent = owner_digest_send(exposure_ids=[exposure.pk for exposure in exposures])

    assert sent == 1
    (email,) = mailoutbox
    assert email.to == [owner.email]
    assert email.subject == "[NHI portal] 2 leaked secrets await your answer"
    assert len(links_in(email.body)) == 2


def test_the_digest_links_are_absolute_and_open_their_answer_form(
    client: Any, mailoutbox: Any, owner: Any, exposure: Exposure, settings: Any
) -> None:
    settings.PORTAL_BASE_URL = "https://nhi.example.com"

    owner_digest_send(exposure_ids=[exposure.pk])

    (url,) = links_in(mailoutbox[0].body)
    assert url.startswith(f"https://nhi.example.com/owner/exposures/{exposure.pk}/answer/")
    assert client.get(urlsplit(url).path).status_code == 200


def test_the_digest_reaches_team_members_and_the_personal_owner(
    mailoutbox: Any, owner: Any, platform_owner: Any, payments: Any, make_exposure: MakeExposure
) -> None:
    nhi = NonHumanIdentityFactory.create(owner_team=payments, owner=platform_owner)

    owner_digest_send(exposure_ids=[make_exposure(nhi).pk])

    assert sorted(email.to[0] for email in mailoutbox) == sorted([owner.email, platform_owner.email])


def test_the_digest_carries_no_secret_nor_fingerprint(
    mailoutbox: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    planted = "AKIAPLANTEDDIGEST2026"
    fingerprint = fingerprint_secret(planted).value
    exposure = make_exposure(
        payments_identity,
        fingerprint=fingerprint,
        preview=redacted_preview(planted, detector="aws-access-key"),
    )

    owner_digest_send(exposure_ids=[exposure.pk])

    body = mailoutbox[0].body
    assert "aws-access-key:AKIA…(21 chars)" in body
    assert planted not in body
    assert fingerprint not in body


def test_the_digest_caps_the_links_and_points_to_the_owner_page(
    mailoutbox: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure, settings: Any
) -> None:
    ids = [make_exposure(payments_identity).pk for _ in range(MAX_LINKS_PER_EMAIL + 2)]

    owner_digest_send(exposure_ids=ids)

    body = mailoutbox[0].body
    assert len(links_in(body)) == MAX_LINKS_PER_EMAIL
    assert f"... and 2 more. Sign in to see them all: {settings.PORTAL_BASE_URL}/owner/" in body
    assert AnswerLink.objects.count() == MAX_LINKS_PER_EMAIL


def test_the_digest_skips_owners_without_an_email(mailoutbox: Any, owner: Any, exposure: Exposure) -> None:
    owner.email = ""
    owner.save()

    assert owner_digest_send(exposure_ids=[exposure.pk]) == 0
    assert mailoutbox == []


def test_the_digest_skips_owners_no_longer_active(
    mailoutbox: Any, owner: Any, payments: Any, exposure: Exposure
) -> None:
    gone = UserFactory.create(username="gone", is_active=False)
    gone.groups.set(owner.groups.all())
    payments.memberships.create(user=gone)

    owner_digest_send(exposure_ids=[exposure.pk])

    assert [email.to for email in mailoutbox] == [[owner.email]]


def test_the_digest_skips_team_members_who_may_not_answer(
    mailoutbox: Any, owner: Any, analyst: Any, payments: Any, exposure: Exposure
) -> None:
    payments.memberships.create(user=analyst)

    owner_digest_send(exposure_ids=[exposure.pk])

    assert [email.to for email in mailoutbox] == [[owner.email]]


def test_the_digest_skips_exposures_already_answered(
    mailoutbox: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    answered = make_exposure(payments_identity, state=ExposureState.FALSE_POSITIVE)

    assert owner_digest_send(exposure_ids=[answered.pk]) == 0


def test_the_digest_sent_twice_does_not_email_twice(mailoutbox: Any, owner: Any, exposure: Exposure) -> None:
    owner_digest_send(exposure_ids=[exposure.pk])
    owner_digest_send(exposure_ids=[exposure.pk])

    assert len(mailoutbox) == 1
    assert AnswerLink.objects.count() == 1


def test_a_failed_send_leaves_no_link_behind(owner: Any, exposure: Exposure) -> None:
    with (
        mock.patch("findings.notifications.send_mail", side_effect=ConnectionRefusedError),
        pytest.raises(ConnectionRefusedError),
    ):
        owner_digest_send(exposure_ids=[exposure.pk])

    assert not AnswerLink.objects.exists()


def test_the_notify_owners_task_sends_the_digest(mailoutbox: Any, owner: Any, exposure: Exposure) -> None:
    result = notify_owners.apply(args=([exposure.pk],))

    assert result.get() == 1
    assert len(mailoutbox) == 1
