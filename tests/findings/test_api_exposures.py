"""`/api/v1/exposures/`: scoped lists and details, the owner's answer and the analyst's attribution."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from findings.models import Attribution, Exposure, ExposureState, Validity
from findings.services import Answer
from tests.factories import ExposureFactory, FindingFactory, NonHumanIdentityFactory
from tests.findings.conftest import MakeExposure

pytestmark = pytest.mark.django_db

EXPOSURES = "/api/v1/exposures/"
STAFF = ["analyst", "approver", "auditor"]


def one(exposure: Exposure) -> str:
    return f"{EXPOSURES}{exposure.pk}/"


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def exposures(
    payments_identity: Any, platform_identity: Any, make_exposure: MakeExposure
) -> dict[str, Exposure]:
    """Payments', Platform's, and one that belongs to nobody yet."""
    return {
        "payments": make_exposure(payments_identity, locations=2),
        "platform": make_exposure(platform_identity),
        "nobody": make_exposure(None),
    }


# --- Who sees what ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_see_every_exposure_including_the_triage_queue(
    api: Any, persona: str, request: pytest.FixtureRequest, exposures: dict[str, Exposure]
) -> None:
    client = api(request.getfixturevalue(persona))

    assert ids(client.get(EXPOSURES)) == {exposure.pk for exposure in exposures.values()}
    assert client.get(one(exposures["platform"])).status_code == 200


def test_the_owner_sees_only_their_teams_exposures(
    api: Any, owner: Any, exposures: dict[str, Exposure]
) -> None:
    client = api(owner)

    assert ids(client.get(EXPOSURES)) == {exposures["payments"].pk}
    assert client.get(one(exposures["payments"])).status_code == 200
    assert client.get(one(exposures["platform"])).status_code == 404
    assert client.get(one(exposures["nobody"])).status_code == 404


def test_the_owner_sees_the_identities_they_own_personally(
    api: Any, owner: Any, platform: Any, make_exposure: MakeExposure
) -> None:
    personal = make_exposure(NonHumanIdentityFactory.create(owner_team=platform, owner=owner))

    assert ids(api(owner).get(EXPOSURES)) == {personal.pk}


def test_an_outsider_may_not_read_exposures(api: Any, outsider: Any, exposures: dict[str, Exposure]) -> None:
    client = api(outsider)

    assert client.get(EXPOSURES).status_code == 403
    assert client.get(one(exposures["payments"])).status_code == 403


def test_an_anonymous_caller_must_sign_in(api: Any, exposures: dict[str, Exposure]) -> None:
    assert api(None).get(EXPOSURES).status_code == 401
    assert api(None).get(one(exposures["payments"])).status_code == 401


def test_no_fingerprint_is_ever_shown(api: Any, analyst: Any, exposures: dict[str, Exposure]) -> None:
    client = api(analyst)
    listed = client.get(EXPOSURES).content.decode()
    detail = client.get(one(exposures["payments"])).content.decode()

    for exposure in exposures.values():
        assert exposure.fingerprint not in listed
        assert exposure.fingerprint not in detail
    assert '"fingerprint"' not in listed + detail


def test_the_detail_lists_the_exposures_locations(
    api: Any, analyst: Any, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["payments"]

    body = api(analyst).get(one(exposure)).json()

    assert {row["path"] for row in body["recent_findings"]} == set(
        exposure.findings.values_list("path", flat=True)
    )
    assert body["nhi"]["name"] == "payments-api-bot"
    assert body["locations"] == 2


# --- Filters, search, ordering ------------------------------------------------------------------------------


def test_filters_by_state_validity_identity_and_detector(
    api: Any, analyst: Any, payments_identity: Any, platform_identity: Any, make_exposure: MakeExposure
) -> None:
    confirmed = make_exposure(payments_identity, state=ExposureState.CONFIRMED, validity=Validity.VALID)
    pending = make_exposure(payments_identity, detector="slack-token")
    other = make_exposure(platform_identity, state=ExposureState.REMEDIATED)
    client = api(analyst)

    assert ids(client.get(EXPOSURES, {"state": "confirmed"})) == {confirmed.pk}
    assert ids(client.get(EXPOSURES, {"state": ["confirmed", "remediated"]})) == {confirmed.pk, other.pk}
    assert ids(client.get(EXPOSURES, {"validity": "valid"})) == {confirmed.pk}
    assert ids(client.get(EXPOSURES, {"nhi": platform_identity.pk})) == {other.pk}
    assert ids(client.get(EXPOSURES, {"detector": "slack-token"})) == {pending.pk}
    assert ids(client.get(EXPOSURES, {"awaits_answer": "true"})) == {pending.pk}


def test_an_unknown_state_is_refused_by_name(api: Any, analyst: Any) -> None:
    response = api(analyst).get(EXPOSURES, {"state": "lost"})

    assert response.status_code == 400
    assert list(response.json()) == ["state"]


def test_filters_the_triage_queue(
    api: Any, analyst: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    nobodys = make_exposure(None)
    disputed = make_exposure(payments_identity, state=ExposureState.NOT_OURS)
    owned = make_exposure(payments_identity)
    client = api(analyst)

    assert ids(client.get(EXPOSURES, {"in_triage": "true"})) == {nobodys.pk, disputed.pk}
    assert ids(client.get(EXPOSURES, {"in_triage": "false"})) == {owned.pk}
    assert ids(client.get(EXPOSURES, {"attributed": "false"})) == {nobodys.pk}
    assert ids(client.get(EXPOSURES, {"attributed": "true"})) == {disputed.pk, owned.pk}


def test_filters_by_case(
    api: Any, analyst: Any, open_case: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    case = open_case()
    in_case = make_exposure(payments_identity, case=case)
    make_exposure(payments_identity)

    assert ids(api(analyst).get(EXPOSURES, {"case": case.pk})) == {in_case.pk}


def test_searches_the_preview_and_the_detector(
    api: Any, analyst: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    slack = make_exposure(
        payments_identity, detector="slack-bot-token", preview="slack-bot-token:xoxb…(52 chars)"
    )
    make_exposure(payments_identity)
    client = api(analyst)

    assert ids(client.get(EXPOSURES, {"search": "xoxb"})) == {slack.pk}
    assert ids(client.get(EXPOSURES, {"search": "slack-bot"})) == {slack.pk}


def test_orders_by_last_seen_or_by_locations(
    api: Any, analyst: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    now = timezone.now()
    old = make_exposure(payments_identity, locations=3, last_seen_at=now - timedelta(days=9))
    new = make_exposure(payments_identity, locations=1, last_seen_at=now)
    client = api(analyst)

    def order(ordering: str) -> list[int]:
        return [row["id"] for row in client.get(EXPOSURES, {"ordering": ordering}).json()["results"]]

    assert order("-last_seen_at") == [new.pk, old.pk]
    assert order("last_seen_at") == [old.pk, new.pk]
    assert order("-locations") == [old.pk, new.pk]


def test_pages_follow_a_cursor(
    api: Any, analyst: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    made = {make_exposure(payments_identity).pk for _ in range(3)}
    client = api(analyst)

    first = client.get(EXPOSURES, {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert {row["id"] for row in first["results"] + second["results"]} == made
    assert second["next"] is None


@pytest.mark.parametrize("count", [2, 12])
@pytest.mark.parametrize("persona", ["analyst", "owner"])
def test_the_list_costs_the_same_whatever_its_length(
    api: Any,
    persona: str,
    request: pytest.FixtureRequest,
    count: int,
    payments_identity: Any,
    make_exposure: MakeExposure,
    django_assert_num_queries: Any,
) -> None:
    for n in range(count):
        make_exposure(
            payments_identity, locations=2, answered_by=request.getfixturevalue("analyst") if n % 2 else None
        )
    client = api(request.getfixturevalue(persona))
    client.get(EXPOSURES)

    # Session, user, their permissions (user and groups), the page with identities, credentials, answerers.
    with django_assert_num_queries(5):
        response = client.get(EXPOSURES)
    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("locations", [1, 6])
def test_the_detail_costs_the_same_whatever_its_locations(
    api: Any,
    analyst: Any,
    payments_identity: Any,
    make_exposure: MakeExposure,
    locations: int,
    django_assert_num_queries: Any,
) -> None:
    exposure = make_exposure(payments_identity, locations=locations)
    client = api(analyst)
    client.get(one(exposure))

    # Session, user, permissions (2), the exposure, its recent locations.
    with django_assert_num_queries(6):
        response = client.get(one(exposure))
    assert len(response.json()["recent_findings"]) == locations


# --- The owner's answer -------------------------------------------------------------------------------------

YESTERDAY = (timezone.now() - timedelta(days=1)).isoformat()

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
def test_the_owner_answers_for_their_teams_exposure(
    api: Any, owner: Any, exposures: dict[str, Exposure], data: dict[str, str], state: str
) -> None:
    exposure = exposures["payments"]

    response = api(owner).post(f"{one(exposure)}answer/", data)

    assert response.status_code == 200, response.content
    assert response.json()["state"] == state
    assert response.json()["answered_by"] == "owner"
    exposure.refresh_from_db()
    assert (exposure.state, exposure.answered_by) == (state, owner)
    row = exposure.history.filter(history_change_reason__startswith="owner answer:").get()
    assert row.history_user == owner


def test_the_owner_cannot_see_or_answer_another_teams_exposure(
    api: Any, owner: Any, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["platform"]

    response = api(owner).post(f"{one(exposure)}answer/", {"answer": Answer.CONFIRM})

    assert response.status_code == 404
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.PENDING


@pytest.mark.parametrize("persona", [*STAFF, "outsider"])
def test_only_owners_answer(
    api: Any, persona: str, request: pytest.FixtureRequest, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["payments"]

    response = api(request.getfixturevalue(persona)).post(
        f"{one(exposure)}answer/", {"answer": Answer.CONFIRM}
    )

    assert response.status_code == 403
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.PENDING


def test_an_anonymous_answer_is_refused(api: Any, exposures: dict[str, Exposure]) -> None:
    assert api(None).post(f"{one(exposures['payments'])}answer/", {"answer": "confirm"}).status_code == 401


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({}, "answer", id="no-answer"),
        pytest.param({"answer": "maybe"}, "answer", id="not-an-answer"),
        pytest.param({"answer": Answer.NOT_OURS}, "suggested_owner", id="not-ours-without-owner"),
        pytest.param(
            {"answer": Answer.FALSE_POSITIVE, "note": "  "}, "note", id="false-positive-without-reason"
        ),
        pytest.param({"answer": Answer.REMEDIATED, "remediated_at": YESTERDAY}, "remediation", id="neither"),
        pytest.param({"answer": Answer.REMEDIATED, "remediation": "revoked"}, "remediated_at", id="no-date"),
        pytest.param(
            {
                "answer": Answer.REMEDIATED,
                "remediation": "revoked",
                "remediated_at": (timezone.now() + timedelta(days=2)).isoformat(),
            },
            "remediated_at",
            id="future-date",
        ),
        pytest.param(
            {"answer": Answer.REMEDIATED, "remediation": "lost"}, "remediation", id="bad-remediation"
        ),
        pytest.param({"answer": Answer.CONFIRM, "note": "x" * 2001}, "note", id="note-too-long"),
        pytest.param(
            {"answer": Answer.REMEDIATED, "remediation": "revoked", "remediated_at": "soon"},
            "remediated_at",
            id="bad-date",
        ),
    ],
)
def test_an_incomplete_answer_names_the_field_and_changes_nothing(
    api: Any, owner: Any, exposures: dict[str, Exposure], data: dict[str, str], field: str
) -> None:
    exposure = exposures["payments"]

    response = api(owner).post(f"{one(exposure)}answer/", data)

    assert response.status_code == 400
    assert field in response.json()
    exposure.refresh_from_db()
    assert (exposure.state, exposure.answered_by) == (ExposureState.PENDING, None)


def test_an_exposure_answered_already_says_by_whom(
    api: Any, owner: Any, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["payments"]
    client = api(owner)
    client.post(f"{one(exposure)}answer/", {"answer": Answer.FALSE_POSITIVE, "note": "Example key."})

    response = client.post(f"{one(exposure)}answer/", {"answer": Answer.CONFIRM})

    assert response.status_code == 400
    assert "already answered by owner" in response.json()["answer"][0]


def test_a_confirmed_exposure_can_still_be_reported_rotated(
    api: Any, owner: Any, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["payments"]
    client = api(owner)
    client.post(f"{one(exposure)}answer/", {"answer": Answer.CONFIRM})

    response = client.post(
        f"{one(exposure)}answer/",
        {"answer": Answer.REMEDIATED, "remediation": "rotated", "remediated_at": YESTERDAY},
    )

    assert response.status_code == 200
    assert response.json()["state"] == ExposureState.REMEDIATED


# --- The analyst's attribution ------------------------------------------------------------------------------


def test_an_analyst_says_whose_an_exposure_is(
    api: Any, analyst: Any, payments_identity: Any, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["nobody"]

    response = api(analyst).post(
        f"{one(exposure)}attribute/", {"nhi": payments_identity.pk, "note": "our key"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["nhi"] == {"id": payments_identity.pk, "name": payments_identity.name}
    assert response.json()["attribution"] == Attribution.ANALYST
    exposure.refresh_from_db()
    assert exposure.nhi == payments_identity
    assert exposure.history.latest().history_user == analyst


def test_the_owner_then_sees_the_attributed_exposure(
    api: Any, analyst: Any, owner: Any, payments_identity: Any, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["nobody"]
    api(analyst).post(f"{one(exposure)}attribute/", {"nhi": payments_identity.pk})

    assert exposure.pk in ids(api(owner).get(EXPOSURES))


def test_a_disputed_exposure_goes_to_its_new_owner_to_answer(
    api: Any, analyst: Any, platform_identity: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity, state=ExposureState.NOT_OURS, suggested_owner="Platform")

    body = api(analyst).post(f"{one(exposure)}attribute/", {"nhi": platform_identity.pk}).json()

    assert (body["state"], body["suggested_owner"], body["nhi"]["id"]) == (
        "pending",
        "",
        platform_identity.pk,
    )


@pytest.mark.parametrize("persona", ["approver", "auditor", "owner", "outsider"])
def test_only_analysts_attribute(
    api: Any,
    persona: str,
    request: pytest.FixtureRequest,
    payments_identity: Any,
    exposures: dict[str, Exposure],
) -> None:
    exposure = exposures["nobody"]

    response = api(request.getfixturevalue(persona)).post(
        f"{one(exposure)}attribute/", {"nhi": payments_identity.pk}
    )

    assert response.status_code == 403
    exposure.refresh_from_db()
    assert exposure.nhi is None


def test_an_anonymous_attribution_is_refused(
    api: Any, payments_identity: Any, exposures: dict[str, Exposure]
) -> None:
    response = api(None).post(f"{one(exposures['nobody'])}attribute/", {"nhi": payments_identity.pk})

    assert response.status_code == 401


@pytest.mark.parametrize(("data", "field"), [({}, "nhi"), ({"nhi": "x"}, "nhi"), ({"nhi": 999_999}, "nhi")])
def test_an_attribution_to_no_identity_names_the_field(
    api: Any, analyst: Any, exposures: dict[str, Exposure], data: dict[str, Any], field: str
) -> None:
    exposure = exposures["nobody"]

    response = api(analyst).post(f"{one(exposure)}attribute/", data)

    assert response.status_code == 400
    assert list(response.json()) == [field]
    exposure.refresh_from_db()
    assert exposure.nhi is None


def test_attributing_an_exposure_that_does_not_exist_is_a_404(
    api: Any, analyst: Any, payments_identity: Any
) -> None:
    response = api(analyst).post(f"{EXPOSURES}999999/attribute/", {"nhi": payments_identity.pk})

    assert response.status_code == 404


def test_findings_of_an_exposure_are_not_duplicated_in_the_list(
    api: Any, analyst: Any, payments_identity: Any
) -> None:
    exposure = ExposureFactory.create(nhi=payments_identity, locations=3)
    FindingFactory.create_batch(3, exposure=exposure)

    assert [row["id"] for row in api(analyst).get(EXPOSURES).json()["results"]] == [exposure.pk]
