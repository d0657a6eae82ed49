"""`/api/v1/cases/{id}/transitions/`: what each person may do on a case now, and doing it over HTTP.

The API offers exactly the case page's choices (`cases.workflow.available_actions`); the refusals are the
services': 400 naming the missing field or listing the guards, 403 without the role, 404 out of scope, 409
when the case's state no longer allows it.
"""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from cases import services
from cases.models import ApprovalKind, Case, CaseState, CaseTransition, Evidence, Severity
from cases.workflow import ACTIONS_BY_NAME, available_actions
from tests.cases.support import record_of


def transitions_url(case):
    return f"/api/v1/cases/{case.pk}/transitions/"


def perform_url(case, name):
    return f"/api/v1/cases/{case.pk}/transitions/{name}/"


def listed(response):
    assert response.status_code == 200, response.content
    return {action["name"]: action for action in response.json()["actions"]}


def field(action, name):
    return next(row for row in action["fields"] if row["name"] == name)


# --- Listing ------------------------------------------------------------------------------------------------


def test_the_list_offers_exactly_the_case_pages_actions(api, analyst, case_in_state):
    for state in (CaseState.IDENTIFIED, CaseState.ASSIGNED, CaseState.VERIFIED, CaseState.CLOSED):
        case = case_in_state(state)
        on_the_page = [item.action.name for item in available_actions(case=case, user=analyst)]

        body = api(analyst).get(transitions_url(case)).json()

        assert [action["name"] for action in body["actions"]] == on_the_page, state
        assert body["state"] == state


def test_an_identified_case_offers_an_analyst_confirm_and_dismiss_with_their_fields(api, analyst, open_case):
    actions = listed(api(analyst).get(transitions_url(open_case())))

    assert actions["confirm"]["allowed"] is True
    assert actions["confirm"]["is_transition"] is True
    assert field(actions["confirm"], "reason") == {
        "name": "reason",
        "label": "Reason",
        "type": "string",
        "required": False,
        "help_text": "Why; recorded in the case history.",
        "choices": None,
        "references": None,
        "max_length": None,
    }
    assert field(actions["dismiss"], "reason")["required"] is True
    assert field(actions["dismiss"], "dismissal_reason")["choices"] == [
        {"value": "false_positive", "label": "False positive"},
        {"value": "benign", "label": "Benign (true positive, no risk)"},
    ]
    assert actions["dismiss"]["danger"] is True
    assert "verify" not in actions


def test_assign_names_the_models_of_its_id_fields(api, analyst, case_in_state):
    actions = listed(api(analyst).get(transitions_url(case_in_state(CaseState.CONFIRMED))))

    assert actions["assign"]["allowed"] is True  # the form supplies the assignee and team its guard needs
    assert field(actions["assign"], "assignee")["type"] == "id"
    assert field(actions["assign"], "assignee")["references"] == "auth.user"
    assert field(actions["assign"], "owning_team")["references"] == "nhi_inventory.team"


def test_a_blocked_transition_is_listed_with_what_blocks_it(api, analyst, case_in_state):
    case = case_in_state(CaseState.ASSIGNED)
    case.action_items.update(status="cancelled")

    start = listed(api(analyst).get(transitions_url(case)))["start_action"]

    assert start["allowed"] is False
    assert start["blocked_by"] == ["Starting action needs at least one action item."]


def test_evidence_capture_is_described_as_multipart_with_a_file_field(api, analyst, open_case):
    capture = listed(api(analyst).get(transitions_url(open_case())))["capture_evidence"]

    assert capture["content_type"] == "multipart/form-data"
    assert field(capture, "file")["type"] == "file"
    assert field(capture, "kind")["type"] == "choice"


def test_an_approver_may_only_close_and_comment_a_verified_case(api, approver, case_in_state):
    actions = listed(api(approver).get(transitions_url(case_in_state(CaseState.VERIFIED))))

    assert set(actions) == {"close", "comment"}


def test_an_auditor_is_offered_nothing(api, auditor, open_case):
    assert listed(api(auditor).get(transitions_url(open_case()))) == {}


def test_an_owner_may_capture_evidence_and_comment_on_their_teams_case(api, owner, open_case):
    assert set(listed(api(owner).get(transitions_url(open_case())))) == {"capture_evidence", "comment"}


def test_an_owner_gets_404_for_another_teams_case(api, owner, open_case, platform_identity):
    case = open_case(identities=[platform_identity])

    assert api(owner).get(transitions_url(case)).status_code == 404


def test_an_outsider_gets_404_and_an_anonymous_caller_401(api, outsider, open_case):
    case = open_case()

    assert api(outsider).get(transitions_url(case)).status_code == 404
    assert api(None).get(transitions_url(case)).status_code == 401


def test_pending_requests_are_listed_for_an_approver_not_for_their_requester(
    api, analyst, approver, case_in_state
):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.HIGH)
    approval = services.approval_request(actor=analyst, case_id=case.pk, kind="closure", reason="done")

    to_decide = api(approver).get(transitions_url(case)).json()["approvals_to_decide"]

    assert [row["id"] for row in to_decide] == [approval.pk]
    assert to_decide[0]["url"].endswith(f"/api/v1/approvals/{approval.pk}/decide/")
    assert api(analyst).get(transitions_url(case)).json()["approvals_to_decide"] == []


# --- Performing: success ------------------------------------------------------------------------------------


def test_an_analyst_confirms_a_case_and_gets_it_back(api, analyst, open_case):
    case = open_case()

    response = api(analyst).post(perform_url(case, "confirm"), {"reason": "real key"})

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "confirmed"
    assert CaseTransition.objects.get(case=case, name="confirm").reason == "real key"


def test_an_analyst_assigns_a_case(api, analyst, case_in_state, payments):
    case = case_in_state(CaseState.CONFIRMED)

    response = api(analyst).post(
        perform_url(case, "assign"), {"assignee": analyst.pk, "owning_team": payments.pk, "reason": "on call"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["assignee"]["id"] == analyst.pk
    assert response.json()["state"] == "assigned"


def test_an_analyst_dismisses_a_case(api, analyst, open_case):
    case = open_case()

    response = api(analyst).post(
        perform_url(case, "dismiss"), {"dismissal_reason": "false_positive", "reason": "test fixture"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["dismissal_reason"] == "false_positive"


def test_an_approver_closes_a_verified_case(api, approver, case_in_state):
    case = case_in_state(CaseState.VERIFIED)

    response = api(approver).post(perform_url(case, "close"), {"reason": "done"})

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "closed"


def test_a_work_action_runs_through_the_same_endpoint(api, analyst, case_in_state, payments):
    case = case_in_state(CaseState.ASSIGNED)

    response = api(analyst).post(
        perform_url(case, "add_action_item"),
        {"kind": "revocation", "title": "Revoke", "owning_team": payments.pk},
    )

    assert response.status_code == 200, response.content
    assert case.action_items.filter(title="Revoke").exists()


def test_an_owner_captures_a_file_through_the_transition_endpoint(api, owner, open_case):
    case = open_case()
    content = b"rotation receipt"

    response = api(owner).post(
        perform_url(case, "capture_evidence"),
        {"kind": "file", "title": "Receipt", "file": SimpleUploadedFile("receipt.txt", content)},
        format="multipart",
    )

    assert response.status_code == 200, response.content
    assert Evidence.objects.get(case=case).sha256 == hashlib.sha256(content).hexdigest()


# --- Performing: 400 naming what is missing -----------------------------------------------------------------


def test_assigning_without_an_assignee_is_a_400_naming_it(api, analyst, case_in_state, payments):
    case = case_in_state(CaseState.CONFIRMED)
    before = record_of(case)

    response = api(analyst).post(perform_url(case, "assign"), {"owning_team": payments.pk})

    assert response.status_code == 400
    assert set(response.json()) == {"assignee"}
    assert record_of(case) == before


def test_dismissing_without_a_reason_is_a_400_naming_it(api, analyst, open_case):
    case = open_case()
    before = record_of(case)

    response = api(analyst).post(perform_url(case, "dismiss"), {"dismissal_reason": "benign"})

    assert response.status_code == 400
    assert set(response.json()) == {"reason"}
    assert record_of(case) == before


def test_dismissing_without_a_dismissal_reason_is_a_400_naming_it(api, analyst, open_case):
    response = api(analyst).post(perform_url(open_case(), "dismiss"), {"reason": "noise"})

    assert response.status_code == 400
    assert set(response.json()) == {"dismissal_reason"}


def test_reopening_without_a_reason_is_a_400_naming_it(api, analyst, case_in_state):
    case = case_in_state(CaseState.CLOSED)
    before = record_of(case)

    response = api(analyst).post(perform_url(case, "reopen"), {"reason": "  "})

    assert response.status_code == 400
    assert set(response.json()) == {"reason"}
    assert record_of(case) == before


def test_requesting_a_risk_acceptance_without_an_expiry_is_a_400_naming_it(api, analyst, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)

    response = api(analyst).post(perform_url(case, "request_risk_acceptance"), {"reason": "compensated"})

    assert response.status_code == 400
    assert set(response.json()) == {"risk_expires_on"}
    assert not case.approvals.exists()


def test_a_risk_acceptance_longer_than_a_year_is_a_400_naming_the_expiry(api, analyst, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)
    too_late = (timezone.localdate() + timedelta(days=400)).isoformat()

    response = api(analyst).post(
        perform_url(case, "request_risk_acceptance"), {"reason": "compensated", "risk_expires_on": too_late}
    )

    assert response.status_code == 400
    assert "one year" in response.json()["risk_expires_on"][0]


def test_closing_a_severe_case_without_an_approval_is_a_400_naming_the_approval(
    api, analyst, ready_to_verify
):
    case = ready_to_verify(severity=Severity.HIGH)
    services.case_verify(case_id=case.pk, actor=analyst)
    before = record_of(case)

    response = api(analyst).post(perform_url(case, "close"), {"reason": "done"})

    assert response.status_code == 400
    assert response.json()["transition"] == "close"
    assert response.json()["refusals"] == [
        "Closing a high or critical case needs a closure approval by a second person."
    ]
    assert record_of(case) == before


def test_verifying_without_evidence_is_a_400_listing_the_guard(api, analyst, case_in_state):
    case = case_in_state(CaseState.IN_PROGRESS)

    response = api(analyst).post(perform_url(case, "verify"), {})

    assert response.status_code == 400
    assert "Verifying needs at least one evidence item." in response.json()["refusals"]


def test_a_blocked_work_action_is_refused_with_what_blocks_it(api, analyst, case_in_state):
    case = case_in_state(CaseState.IN_PROGRESS, severity=Severity.MEDIUM)

    response = api(analyst).post(perform_url(case, "request_closure"), {"reason": "done"})

    assert response.status_code == 400
    assert response.json()["refusals"] == ["Only high and critical cases need a closure approval."]
    assert not case.approvals.exists()


def test_an_unknown_field_is_a_400_naming_it(api, analyst, open_case):
    response = api(analyst).post(perform_url(open_case(), "confirm"), {"reasn": "typo"})

    assert response.status_code == 400
    assert "reason" in response.json()["reasn"][0]


def test_a_nested_value_is_a_400_naming_the_field(api, analyst, open_case):
    response = api(analyst).post(perform_url(open_case(), "confirm"), {"reason": {"text": "x"}})

    assert response.status_code == 400
    assert set(response.json()) == {"reason"}


def test_a_body_that_is_not_an_object_is_a_400(api, analyst, open_case):
    response = api(analyst).post(perform_url(open_case(), "confirm"), ["reason"])

    assert response.status_code == 400


# --- Performing: 403, 404, 409 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "name"), [("auditor", "confirm"), ("approver", "confirm"), ("owner", "dismiss")]
)
def test_a_transition_outside_ones_role_is_a_403_whatever_the_body(api, persona, open_case, who, name):
    case = open_case()
    before = record_of(case)

    response = api(persona(who)).post(perform_url(case, name), {})

    assert response.status_code == 403
    assert ACTIONS_BY_NAME[name].permission in response.json()["detail"]
    assert record_of(case) == before


@pytest.mark.parametrize("who", ["auditor", "approver"])
def test_work_outside_ones_role_is_a_403(api, persona, open_case, who):
    case = open_case()

    response = api(persona(who)).post(perform_url(case, "capture_evidence"), {"kind": "note", "title": "x"})

    assert response.status_code == 403
    assert not case.evidence.exists()


def test_an_owner_gets_404_acting_on_another_teams_case(api, owner, open_case, platform_identity):
    case = open_case(identities=[platform_identity])

    response = api(owner).post(perform_url(case, "comment"), {"body": "hello"})

    assert response.status_code == 404
    assert not case.comments.exists()


def test_an_outsider_gets_404_and_an_anonymous_caller_401_when_acting(api, outsider, open_case):
    case = open_case()

    assert api(outsider).post(perform_url(case, "confirm"), {}).status_code == 404
    assert api(None).post(perform_url(case, "confirm"), {}).status_code == 401
    assert Case.objects.get(pk=case.pk).state == CaseState.IDENTIFIED


def test_an_unknown_action_is_a_404_naming_the_known_ones(api, analyst, open_case):
    response = api(analyst).post(perform_url(open_case(), "approve_everything"), {})

    assert response.status_code == 404
    assert "confirm" in response.json()["detail"]


def test_confirming_a_closed_case_is_a_409_and_changes_nothing(api, analyst, case_in_state):
    case = case_in_state(CaseState.CLOSED)
    before = record_of(case)

    response = api(analyst).post(perform_url(case, "confirm"), {"reason": "late click"})

    assert response.status_code == 409
    assert "not possible" in response.json()["detail"]
    assert record_of(case) == before


def test_a_case_moved_while_the_request_ran_is_a_409_and_changes_nothing(
    api, analyst, open_case, monkeypatch
):
    """The request passed the workflow's check; someone else moves the case before the service locks it."""
    case = open_case()
    lock = services._lock_case

    def someone_dismisses_first(*, case_id, actor):
        Case.objects.filter(pk=case_id).update(state=CaseState.DISMISSED)
        return lock(case_id=case_id, actor=actor)

    monkeypatch.setattr(services, "_lock_case", someone_dismisses_first)

    response = api(analyst).post(perform_url(case, "confirm"), {"reason": "mine"})

    assert response.status_code == 409
    assert "reload" in response.json()["detail"]
    assert not CaseTransition.objects.filter(case=case, name="confirm").exists()


def test_requesting_a_second_risk_acceptance_is_refused_while_one_is_pending(api, analyst, case_in_state):
    case = case_in_state(CaseState.CONFIRMED)
    services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="first",
        risk_expires_on=timezone.localdate() + timedelta(days=30),
    )

    response = api(analyst).post(
        perform_url(case, "request_risk_acceptance"),
        {"reason": "second", "risk_expires_on": (timezone.localdate() + timedelta(days=30)).isoformat()},
    )

    assert response.status_code == 400
    assert response.json()["refusals"] == ["A risk-acceptance request is already pending."]
    assert case.approvals.count() == 1
