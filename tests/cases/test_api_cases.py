"""`/api/v1/cases/`: who sees which cases, who may open and edit them, and what the lists cost."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases import mapping, services
from cases.models import Case, CaseKind, CaseOrigin, CaseState, CaseTransition, Severity
from frameworks.models import Control, ControlKind, Framework
from portal.roles import automation_user
from tests.factories import NonHumanIdentityFactory, UserFactory

CASES = "/api/v1/cases/"
STAFF = ("analyst", "approver", "auditor")
EVERYONE = (*STAFF, "owner", "outsider")


def detail(case):
    return f"{CASES}{case.pk}/"


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def both_teams(open_case, platform_identity):
    """One case about a Payments identity, one about a Platform identity."""
    return open_case(), open_case(identities=[platform_identity])


# --- Reading ------------------------------------------------------------------------------------------------


def test_an_anonymous_caller_gets_401_on_the_list_and_a_case(api, both_teams):
    payments_case, _ = both_teams

    assert api(None).get(CASES).status_code == 401
    assert api(None).get(detail(payments_case)).status_code == 401


@pytest.mark.parametrize("who", STAFF)
def test_staff_see_every_teams_cases(api, persona, both_teams, who):
    assert ids(api(persona(who)).get(CASES)) == {case.pk for case in both_teams}


def test_an_owner_sees_only_the_cases_of_their_team(api, owner, both_teams):
    payments_case, _ = both_teams

    assert ids(api(owner).get(CASES)) == {payments_case.pk}


def test_an_owner_gets_404_for_another_teams_case(api, owner, both_teams):
    payments_case, platform_case = both_teams

    assert api(owner).get(detail(payments_case)).status_code == 200
    assert api(owner).get(detail(platform_case)).status_code == 404


def test_an_outsider_sees_an_empty_list_and_404s(api, outsider, both_teams):
    payments_case, _ = both_teams

    assert ids(api(outsider).get(CASES)) == set()
    assert api(outsider).get(detail(payments_case)).status_code == 404


def test_a_case_that_does_not_exist_is_a_404(api, analyst, db):
    assert api(analyst).get(f"{CASES}999999/").status_code == 404
    assert api(analyst).get(f"{CASES}not-a-number/").status_code == 404


def test_the_detail_shows_identities_team_assignee_due_date_state_facts_and_links(
    api, analyst, case_in_state, payments, payments_identity
):
    case = case_in_state(CaseState.ASSIGNED)

    body = api(analyst).get(detail(case)).json()

    assert body["reference"] == case.reference
    assert body["state"] == "assigned"
    assert body["owning_team"] == {"id": payments.pk, "name": "Payments", "slug": "payments"}
    assert body["assignee"]["username"] == "analyst"
    assert body["opened_by"]["username"] == "analyst"
    assert [identity["name"] for identity in body["identities"]] == [payments_identity.name]
    assert body["facts"] == {
        "has_evidence": False,
        "traceable": False,
        "closure_second_person_approved": False,
    }
    assert body["links"]["transitions"].endswith(f"/api/v1/cases/{case.pk}/transitions/")
    assert body["links"]["evidence"].endswith(f"/api/v1/evidence/?case={case.pk}")


def test_the_detail_summarises_the_active_control_mappings(api, analyst, open_case):
    framework = Framework.objects.create(
        key="test-fw", name="Test", version="1", publisher="Us", source="here", license="none"
    )
    control = Control.objects.create(
        framework=framework, ref_id="TF-1", kind=ControlKind.SUBCATEGORY, statement="Do it."
    )
    case = open_case()
    mapping.case_mapping_add(actor=analyst, case_id=case.pk, control_id=control.pk, rationale="it fits")

    mappings = api(analyst).get(detail(case)).json()["mappings"]

    assert {
        "control": "TF-1",
        "framework": "test-fw",
        "source": "manual",
        "rationale": "it fits",
    }.items() <= (next(row for row in mappings if row["control"] == "TF-1").items())


def test_no_raw_secret_or_email_appears_in_a_case(api, analyst, open_case):
    body = api(analyst).get(detail(open_case())).content.decode()

    assert "@example.test" not in body


# --- Filters, search, ordering, pagination ------------------------------------------------------------------


def test_the_list_filters_by_state(api, analyst, case_in_state):
    identified = case_in_state(CaseState.IDENTIFIED)
    confirmed = case_in_state(CaseState.CONFIRMED)

    assert ids(api(analyst).get(CASES, {"state": "confirmed"})) == {confirmed.pk}
    assert ids(api(analyst).get(CASES + "?state=confirmed&state=identified")) == {identified.pk, confirmed.pk}


def test_the_list_filters_by_kind_severity_and_priority(api, analyst, open_case):
    triage = open_case(kind=CaseKind.ALERT_TRIAGE, severity=Severity.LOW)
    critical = open_case(severity=Severity.CRITICAL)

    assert ids(api(analyst).get(CASES, {"kind": "alert_triage"})) == {triage.pk}
    assert ids(api(analyst).get(CASES, {"severity": 4})) == {critical.pk}
    assert ids(api(analyst).get(CASES, {"priority": critical.priority})) == {critical.pk}


def test_the_list_filters_by_team_and_assignee(api, analyst, case_in_state, payments):
    assigned = case_in_state(CaseState.ASSIGNED)
    case_in_state(CaseState.IDENTIFIED)

    assert ids(api(analyst).get(CASES, {"team": payments.pk})) == {assigned.pk}
    assert ids(api(analyst).get(CASES, {"assignee": analyst.pk})) == {assigned.pk}


def test_the_list_filters_by_linked_identity(api, analyst, both_teams, platform_identity):
    _, platform_case = both_teams

    assert ids(api(analyst).get(CASES, {"identity": platform_identity.pk})) == {platform_case.pk}


def test_the_list_filters_overdue_open_cases(api, analyst, open_case):
    late = open_case()
    on_time = open_case()
    services.case_update(
        actor=analyst, case_id=late.pk, changes={"due_at": timezone.now() - timedelta(days=1)}, reason="SLA"
    )
    services.case_update(
        actor=analyst,
        case_id=on_time.pk,
        changes={"due_at": timezone.now() + timedelta(days=1)},
        reason="SLA",
    )

    assert ids(api(analyst).get(CASES, {"overdue": "true"})) == {late.pk}
    assert ids(api(analyst).get(CASES, {"overdue": "false"})) == {on_time.pk}
    assert api(analyst).get(detail(late)).json()["overdue"] is True


def test_it_shows_when_an_overdue_case_was_escalated(api, analyst, open_case):
    case = open_case()
    services.case_update(
        actor=analyst, case_id=case.pk, changes={"due_at": timezone.now() - timedelta(hours=1)}, reason="SLA"
    )
    assert api(analyst).get(detail(case)).json()["escalated_at"] is None

    services.case_escalate(actor=automation_user(), case_id=case.pk)

    assert api(analyst).get(detail(case)).json()["escalated_at"] is not None


def test_the_list_filters_by_creation_range(api, analyst, open_case):
    old = open_case()
    Case.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    new = open_case()
    since = (timezone.now() - timedelta(days=1)).isoformat()

    assert ids(api(analyst).get(CASES, {"created_after": since})) == {new.pk}
    assert ids(api(analyst).get(CASES, {"created_before": since})) == {old.pk}


def test_the_list_searches_title_and_summary(api, analyst, payments_identity):
    wanted = services.case_open(
        actor=analyst, title="Slack token", kind=CaseKind.SECRET_EXPOSURE, summary="found in wiki"
    )
    services.case_open(actor=analyst, title="Other", kind=CaseKind.SECRET_EXPOSURE)

    assert ids(api(analyst).get(CASES, {"search": "slack"})) == {wanted.pk}
    assert ids(api(analyst).get(CASES, {"search": "wiki"})) == {wanted.pk}


def test_the_list_orders_by_severity(api, analyst, open_case):
    low = open_case(severity=Severity.LOW)
    high = open_case(severity=Severity.HIGH)

    rows = api(analyst).get(CASES, {"ordering": "-severity"}).json()["results"]

    assert [row["id"] for row in rows] == [high.pk, low.pk]


def test_a_bad_filter_value_is_a_400_naming_the_filter(api, analyst, db):
    response = api(analyst).get(CASES, {"state": "nonsense", "team": "x"})

    assert response.status_code == 400
    assert {"state", "team"} <= set(response.json())


def test_the_list_is_cursor_paginated(api, analyst, open_case):
    first, second = open_case(), open_case()

    page = api(analyst).get(CASES, {"page_size": 1}).json()
    following = api(analyst).get(page["next"]).json()

    assert [row["id"] for row in page["results"]] == [second.pk]
    assert [row["id"] for row in following["results"]] == [first.pk]


# --- Opening and editing ------------------------------------------------------------------------------------


def new_case_body(identity):
    return {
        "title": "GitHub token in CI logs",
        "kind": "secret_exposure",
        "severity": 3,
        "summary": "Printed by a debug step.",
        "identities": [identity.pk],
    }


def test_an_analyst_opens_a_case_attributed_to_them_with_origin_api(api, analyst, payments_identity):
    response = api(analyst).post(CASES, new_case_body(payments_identity))

    assert response.status_code == 201, response.content
    case = Case.objects.get(pk=response.json()["id"])
    assert (case.title, case.origin, case.opened_by, case.state) == (
        "GitHub token in CI logs",
        CaseOrigin.API,
        analyst,
        CaseState.IDENTIFIED,
    )
    assert list(case.identities.all()) == [payments_identity]
    assert CaseTransition.objects.filter(case=case, name="open", actor=analyst).exists()


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_nobody_but_an_analyst_may_open_a_case(api, persona, payments_identity, who):
    response = api(persona(who)).post(CASES, new_case_body(payments_identity))

    assert response.status_code == 403
    assert "cases.add_case" in response.json()["detail"]
    assert not Case.objects.exists()


def test_an_anonymous_caller_cannot_open_a_case(api, payments_identity):
    assert api(None).post(CASES, new_case_body(payments_identity)).status_code == 401


def test_opening_a_case_without_a_title_is_a_400_naming_it(api, analyst, payments_identity):
    body = new_case_body(payments_identity)
    del body["title"]

    response = api(analyst).post(CASES, body)

    assert response.status_code == 400
    assert "title" in response.json()
    assert not Case.objects.exists()


def test_opening_a_case_about_an_unknown_identity_is_a_400_naming_it(api, analyst, payments_identity):
    body = {**new_case_body(payments_identity), "identities": [payments_identity.pk, 999999]}

    response = api(analyst).post(CASES, body)

    assert response.status_code == 400
    assert any(key.startswith("identities") for key in response.json())
    assert not Case.objects.exists()


def test_an_analyst_edits_a_case_with_a_reason_recorded_in_history(api, analyst, open_case):
    case = open_case()

    response = api(analyst).patch(detail(case), {"severity": 4, "reason": "customer data at risk"})

    assert response.status_code == 200, response.content
    assert response.json()["severity"] == 4
    assert Case.history.filter(id=case.pk).first().history_change_reason == "customer data at risk"


def test_the_state_cannot_be_edited_only_transitioned(api, analyst, open_case):
    case = open_case()

    response = api(analyst).patch(detail(case), {"state": "closed"})

    assert response.status_code == 400
    assert "transition" in response.json()["state"][0]
    assert Case.objects.get(pk=case.pk).state == CaseState.IDENTIFIED


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_nobody_but_an_analyst_may_edit_a_case(api, persona, open_case, who):
    case = open_case()

    response = api(persona(who)).patch(detail(case), {"title": "changed"})

    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).title == case.title


def test_put_is_not_offered(api, analyst, open_case):
    assert api(analyst).put(detail(open_case()), {"title": "x"}).status_code == 405


# --- Linking identities -------------------------------------------------------------------------------------


def test_an_analyst_links_and_unlinks_an_identity(api, analyst, open_case, platform_identity):
    case = open_case()

    linked = api(analyst).post(f"{detail(case)}link-identity/", {"nhi": platform_identity.pk})
    unlinked = api(analyst).post(f"{detail(case)}unlink-identity/", {"nhi": platform_identity.pk})

    assert linked.status_code == 200, linked.content
    assert platform_identity.pk in {row["id"] for row in linked.json()["identities"]}
    assert unlinked.status_code == 200, unlinked.content
    assert platform_identity.pk not in {row["id"] for row in unlinked.json()["identities"]}


def test_linking_an_unknown_identity_is_a_400_naming_it(api, analyst, open_case):
    response = api(analyst).post(f"{detail(open_case())}link-identity/", {"nhi": 999999})

    assert response.status_code == 400
    assert "nhi" in response.json()


def test_linking_an_identity_to_a_closed_case_is_a_409(api, analyst, case_in_state, platform_identity):
    case = case_in_state(CaseState.CLOSED)

    response = api(analyst).post(f"{detail(case)}link-identity/", {"nhi": platform_identity.pk})

    assert response.status_code == 409
    assert not case.identities.filter(pk=platform_identity.pk).exists()


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_nobody_but_an_analyst_may_link_identities(api, persona, open_case, payments_identity, who):
    other = NonHumanIdentityFactory.create(owner_team=payments_identity.owner_team)
    case = open_case()

    response = api(persona(who)).post(f"{detail(case)}link-identity/", {"nhi": other.pk})

    assert response.status_code == 403
    assert not case.identities.filter(pk=other.pk).exists()


# --- Cost of the list ---------------------------------------------------------------------------------------


def _cases(analyst, payments, count):
    for number in range(count):
        assignee = UserFactory.create()
        case = services.case_open(
            actor=analyst,
            title=f"case {number}",
            kind=CaseKind.SECRET_EXPOSURE,
            identities=[NonHumanIdentityFactory.create(owner_team=payments)],
            owning_team=payments,
        )
        Case.objects.filter(pk=case.pk).update(assignee=assignee)


@pytest.mark.parametrize("who", ["analyst", "owner"])
def test_the_list_costs_the_same_number_of_queries_for_2_and_12_cases(
    api, persona, analyst, payments, django_assert_num_queries, who
):
    client = api(persona(who))
    _cases(analyst, payments, 2)
    with CaptureQueriesContext(connection) as two:
        assert len(ids(client.get(CASES))) == 2
    _cases(analyst, payments, 10)

    with django_assert_num_queries(len(two.captured_queries)):
        assert len(ids(client.get(CASES))) == 12
