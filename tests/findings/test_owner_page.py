"""The owner page: an NHI owner lists the exposures of their identities and answers each, and nothing else."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from findings.models import Exposure, ExposureState
from findings.services import Answer, exposure_answer
from tests.factories import CredentialFactory, NonHumanIdentityFactory
from tests.findings.conftest import MakeExposure

pytestmark = pytest.mark.django_db

OWNER_LIST = reverse("findings:owner_list")


def detail(exposure: Exposure) -> str:
    return reverse("findings:exposure_detail", args=[exposure.pk])


def listed_ids(response: Any) -> set[int]:
    return {exposure.pk for exposure in response.context["page"]}


# --- The list ---------------------------------------------------------------------------------------------


def test_the_list_asks_a_stranger_to_sign_in_on_the_plain_sign_in_page(client: Any) -> None:
    response = client.get(OWNER_LIST)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={OWNER_LIST}"


def test_the_owner_signs_in_on_the_plain_page_and_lands_on_their_list(client: Any, owner: Any) -> None:
    response = client.post(reverse("login"), {"username": "owner", "password": "pw"})

    assert response.status_code == 302
    assert response["Location"] == OWNER_LIST


def test_the_sign_in_page_is_not_the_admin(client: Any) -> None:
    content = client.get(reverse("login")).content.decode()

    assert 'for="id_username"' in content
    assert "admin/css" not in content


def test_the_owner_sees_their_teams_pending_exposures_and_not_another_teams(
    client: Any, owner: Any, payments_identity: Any, platform_identity: Any, make_exposure: MakeExposure
) -> None:
    ours = make_exposure(payments_identity)
    theirs = make_exposure(platform_identity)
    client.force_login(owner)

    response = client.get(OWNER_LIST)

    assert listed_ids(response) == {ours.pk}
    assert theirs.preview not in response.content.decode()


def test_the_list_includes_identities_the_owner_owns_personally(
    client: Any, owner: Any, platform: Any, make_exposure: MakeExposure
) -> None:
    personal = make_exposure(NonHumanIdentityFactory.create(owner_team=platform, owner=owner))
    client.force_login(owner)

    assert listed_ids(client.get(OWNER_LIST)) == {personal.pk}


def test_the_list_leaves_out_answered_exposures(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    make_exposure(payments_identity, state=ExposureState.CONFIRMED)
    waiting = make_exposure(payments_identity)
    client.force_login(owner)

    assert listed_ids(client.get(OWNER_LIST)) == {waiting.pk}


def test_the_list_includes_exposures_seen_again_after_remediation(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    regressed = make_exposure(payments_identity, state=ExposureState.REGRESSED)
    client.force_login(owner)

    response = client.get(OWNER_LIST)

    assert listed_ids(response) == {regressed.pk}
    assert "Seen again after it was reported rotated or revoked" in response.content.decode()


def test_an_analyst_lists_only_what_they_own_not_every_teams_queue(
    client: Any, analyst: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    make_exposure(payments_identity)
    client.force_login(analyst)

    assert listed_ids(client.get(OWNER_LIST)) == set()


def test_the_list_shows_the_context_of_each_exposure(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity, detector="github-pat", validity="valid")
    finding = exposure.findings.get()
    client.force_login(owner)

    content = client.get(OWNER_LIST).content.decode()

    for shown in (
        payments_identity.name,
        exposure.preview,
        "github-pat",
        "Valid (live)",
        f"{finding.repository}:{finding.path}:{finding.line}",
        exposure.first_seen_at.strftime("%Y-%m-%d %H:%M"),
        exposure.last_seen_at.strftime("%Y-%m-%d %H:%M"),
        detail(exposure),
    ):
        assert shown in content, shown


def test_the_list_shows_a_registered_credentials_preview(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    credential = CredentialFactory.create(nhi=payments_identity, preview="AKIA…(20 chars)")
    make_exposure(payments_identity, credential=credential)
    client.force_login(owner)

    assert "AKIA…(20 chars)" in client.get(OWNER_LIST).content.decode()


def test_the_list_shows_five_locations_and_the_total(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity, locations=7)
    client.force_login(owner)

    response = client.get(OWNER_LIST)

    (listed,) = response.context["page"]
    assert len(listed.recent_findings) == 5
    assert "Found in 7 locations" in response.content.decode()
    oldest = exposure.findings.order_by("last_seen_at", "id").first()
    assert oldest is not None
    assert oldest.path not in response.content.decode()


def test_the_list_query_count_does_not_grow_with_exposures(
    client: Any, owner: Any, payments: Any, make_exposure: MakeExposure
) -> None:
    client.force_login(owner)

    def grow(count: int) -> None:
        # A credential and several locations each, so every relation the page shows is exercised.
        for _ in range(count):
            nhi = NonHumanIdentityFactory.create(owner_team=payments)
            credential = CredentialFactory.create(nhi=nhi)
            make_exposure(nhi, locations=6, credential=credential)

    def queries() -> int:
        client.get(OWNER_LIST)  # warm per-process caches (content types, permissions) first
        with CaptureQueriesContext(connection) as captured:
            response = client.get(OWNER_LIST)
        assert response.status_code == 200
        return len(captured)

    grow(10)
    few = queries()
    grow(20)
    many = queries()

    assert Exposure.objects.count() == 30
    assert few == many


# --- The detail page: scope -------------------------------------------------------------------------------


def test_another_owner_gets_a_404_on_the_detail(
    client: Any, platform_owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(platform_owner)

    assert client.get(detail(exposure)).status_code == 404


def test_another_owners_answer_is_refused_and_changes_nothing(
    client: Any, platform_owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(platform_owner)

    response = client.post(detail(exposure), {"answer": Answer.CONFIRM})

    assert response.status_code == 404
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.PENDING
    assert exposure.answered_by is None


def test_an_auditor_sees_the_detail_without_a_form(
    client: Any, auditor: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(auditor)

    response = client.get(detail(exposure))

    assert response.status_code == 200
    assert response.context["form"] is None


def test_an_auditors_answer_is_refused(
    client: Any, auditor: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(auditor)

    response = client.post(detail(exposure), {"answer": Answer.CONFIRM})

    assert response.status_code == 403
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.PENDING


def test_the_detail_asks_a_stranger_to_sign_in(
    client: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)

    response = client.get(detail(exposure))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- The detail page: answers -----------------------------------------------------------------------------

YESTERDAY = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

ANSWERS = [
    pytest.param({"answer": Answer.CONFIRM}, ExposureState.CONFIRMED, id="confirm"),
    pytest.param(
        {"answer": Answer.NOT_OURS, "suggested_owner": "Platform team"}, ExposureState.NOT_OURS, id="not-ours"
    ),
    pytest.param(
        {"answer": Answer.FALSE_POSITIVE, "note": "A documented example key."},
        ExposureState.FALSE_POSITIVE,
        id="false-positive",
    ),
    pytest.param(
        {"answer": Answer.REMEDIATED, "remediation": "rotated", "remediated_at": YESTERDAY},
        ExposureState.REMEDIATED,
        id="remediated",
    ),
]


@pytest.mark.parametrize(("data", "state"), ANSWERS)
def test_each_answer_moves_the_exposure(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure, data: Any, state: str
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(owner)

    client.post(detail(exposure), data)

    exposure.refresh_from_db()
    assert exposure.state == state
    assert exposure.answered_by == owner


@pytest.mark.parametrize(("data", "state"), ANSWERS)
def test_each_answer_is_in_the_history_attributed_to_the_owner(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure, data: Any, state: str
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(owner)

    client.post(detail(exposure), data)

    row = exposure.history.filter(history_change_reason__startswith="owner answer:").get()
    assert (row.state, row.history_user) == (state, owner)


def test_an_answer_returns_to_the_list_with_a_message_and_the_exposure_gone(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(owner)

    response = client.post(detail(exposure), {"answer": Answer.CONFIRM}, follow=True)

    assert response.redirect_chain == [(OWNER_LIST, 302)]
    assert f"Thank you: {exposure.preview}" in response.content.decode()
    assert listed_ids(response) == set()


def test_confirming_opens_a_case_for_the_exposure(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(owner)

    client.post(detail(exposure), {"answer": Answer.CONFIRM})

    exposure.refresh_from_db()
    assert exposure.case is not None
    assert exposure.case.identities.filter(pk=payments_identity.pk).exists()


def test_not_ours_without_a_suggested_owner_shows_the_error_next_to_that_field(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(owner)

    response = client.post(detail(exposure), {"answer": Answer.NOT_OURS})

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "suggested_owner": ["Say whose it is (a team or a person), so it can be handed on."]
    }
    assert "Say whose it is" in response.content.decode()
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.PENDING


def test_a_false_positive_without_a_reason_shows_the_error_on_the_note(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(owner)

    response = client.post(detail(exposure), {"answer": Answer.FALSE_POSITIVE, "note": "  "})

    assert list(response.context["form"].errors) == ["note"]


def test_a_rotation_date_in_the_future_is_refused_on_the_date(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client.force_login(owner)

    response = client.post(
        detail(exposure), {"answer": Answer.REMEDIATED, "remediation": "revoked", "remediated_at": tomorrow}
    )

    assert response.context["form"].errors == {
        "remediated_at": ["The rotation or revocation date is in the future."]
    }


def test_a_malformed_date_is_refused_by_the_form(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    client.force_login(owner)

    response = client.post(
        detail(exposure),
        {"answer": Answer.REMEDIATED, "remediation": "revoked", "remediated_at": "last week"},
    )

    assert list(response.context["form"].errors) == ["remediated_at"]


def test_an_exposure_answered_meanwhile_shows_who_answered(
    client: Any, owner: Any, payments: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity)
    colleague = type(owner).objects.create(username="colleague")
    colleague.groups.set(owner.groups.all())
    payments.memberships.create(user=colleague)
    client.force_login(owner)
    form_page = client.get(detail(exposure))
    exposure_answer(actor=colleague, exposure_id=exposure.pk, answer=Answer.CONFIRM)

    response = client.post(detail(exposure), {"answer": Answer.FALSE_POSITIVE, "note": "test key"})

    assert form_page.context["form"] is not None
    assert response.status_code == 200
    assert "already answered by colleague" in " ".join(response.context["form"].errors["answer"])


def test_a_confirmed_exposure_can_only_be_reported_rotated_or_revoked(
    client: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity, state=ExposureState.CONFIRMED)
    client.force_login(owner)

    form = client.get(detail(exposure)).context["form"]

    assert [value for value, _ in form.fields["answer"].choices] == [Answer.REMEDIATED]
