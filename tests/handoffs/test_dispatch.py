"""Handing an action item off: who may, what is refused, what is sent and how it is signed."""

import json
import logging
import time
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from pytest_httpserver import HTTPServer

from cases import services as case_services
from cases.errors import CaseWorkflowError
from cases.models import ActionItem, ActionKind, ActionStatus, Comment
from handoffs.models import Delivery, DeliveryStatus
from nhi_inventory.services import credential_register
from tests.findings.leaks import tables_containing
from tests.handoffs.conftest import HOOK_PATH, receiver_signature, stored

DISPATCH_URL = "/api/v1/handoffs/dispatch/"
RAW_SECRET = "AKIAZZTESTSECRETVALUE1234567890abcdefXYZ"


def test_it_posts_the_hand_off_with_timestamp_idempotency_key_and_signature_headers(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_json({"ok": True})

    delivery = dispatch(item)

    (request, _), *others = httpserver.log
    assert others == []
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Portal-Idempotency-Key"] == str(delivery.idempotency_key)
    assert abs(int(request.headers["X-Portal-Timestamp"]) - time.time()) < 60
    assert request.headers["X-Portal-Signature"].startswith("sha256=")
    assert delivery.status == DeliveryStatus.DELIVERED


def test_a_receiver_verifies_the_signature_with_the_key_it_was_shown(
    httpserver: HTTPServer, shown_key: str, item: ActionItem, dispatch: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("", status=204)

    dispatch(item)

    request, _ = httpserver.log[0]
    expected = receiver_signature(shown_key, request.headers["X-Portal-Timestamp"], request.get_data())
    assert request.headers["X-Portal-Signature"] == expected


def test_the_payload_names_the_case_the_action_item_the_team_and_the_identities(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any, payments_identity: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")

    delivery = dispatch(item)

    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent == delivery.payload
    assert sent["idempotency_key"] == str(delivery.idempotency_key)
    assert sent["case"]["reference"] == item.case.reference
    assert sent["action_item"] == {
        "id": item.pk,
        "kind": "revocation",
        "description": "Revoke the leaked deploy key",
    }
    assert sent["team"]["name"] == "Payments"
    assert [identity["name"] for identity in sent["identities"]] == [payments_identity.name]
    assert sent["callback"]["url"].endswith("/api/v1/handoffs/callback/")


def test_no_secret_reaches_the_payload_the_request_the_database_or_the_logs(
    httpserver: HTTPServer,
    endpoint: Any,
    item: ActionItem,
    dispatch: Any,
    analyst: Any,
    payments_identity: Any,
    caplog: pytest.LogCaptureFixture,
):
    credential = credential_register(
        actor=analyst, nhi_id=payments_identity.pk, credential_type="access_key", secret=RAW_SECRET
    )
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")
    caplog.set_level(logging.DEBUG)

    delivery = dispatch(item)

    body = httpserver.log[0][0].get_data(as_text=True)
    assert [c["preview"] for c in delivery.payload["credentials"]] == [credential.preview]
    assert RAW_SECRET not in body
    assert RAW_SECRET[:12] not in body
    assert RAW_SECRET not in caplog.text
    assert tables_containing([RAW_SECRET]) == []


def test_a_key_typed_into_a_title_is_masked_in_the_payload(
    httpserver: HTTPServer, endpoint: Any, make_item: Any, dispatch: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")
    item = make_item(title=f"Revoke {RAW_SECRET} now")

    delivery = dispatch(item)

    assert RAW_SECRET not in json.dumps(delivery.payload)
    assert delivery.payload["action_item"]["description"].startswith("Revoke [masked")


def test_dispatching_moves_the_item_in_progress_and_notes_it_on_the_case(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")

    delivery = dispatch(item)

    item.refresh_from_db()
    assert item.status == ActionStatus.IN_PROGRESS
    note = Comment.objects.get(case=item.case)
    assert str(delivery.idempotency_key) in note.body
    assert "Payments vault" in note.body
    assert delivery.history.earliest().history_user.username == "analyst"


# --- Refusals -----------------------------------------------------------------------------------------------


def test_an_unapproved_proposal_is_refused_and_nothing_goes_out(
    httpserver: HTTPServer, endpoint: Any, analyst: Any, payments: Any, case: Any, dispatch: Any
):
    proposal = case_services.action_item_propose(
        actor=analyst, case_id=case.pk, kind=ActionKind.REVOCATION, title="Revoke it", owning_team=payments
    )
    before = stored()

    with pytest.raises(ValidationError, match="proposal nobody has approved"):
        dispatch(proposal)

    assert stored() == before
    assert httpserver.log == []


def test_an_approved_proposal_goes_out(
    httpserver: HTTPServer,
    endpoint: Any,
    analyst: Any,
    approver: Any,
    payments: Any,
    case: Any,
    dispatch: Any,
):
    proposal = case_services.action_item_propose(
        actor=analyst, case_id=case.pk, kind=ActionKind.REVOCATION, title="Revoke it", owning_team=payments
    )
    case_services.action_item_approve(actor=approver, action_item_id=proposal.pk)
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")

    assert dispatch(proposal).status == DeliveryStatus.DELIVERED


def test_a_kind_that_is_not_handed_off_is_refused(endpoint: Any, make_item: Any, dispatch: Any):
    with pytest.raises(ValidationError, match="this one is a rotation"):
        dispatch(make_item(kind=ActionKind.ROTATION))


def test_without_an_endpoint_for_the_team_and_kind_it_is_refused_naming_them(
    endpoint: Any, make_item: Any, dispatch: Any
):
    with pytest.raises(
        ValidationError, match="No active webhook endpoint takes ticket hand-offs of Payments"
    ):
        dispatch(make_item(kind=ActionKind.TICKET))


def test_an_item_already_handed_off_is_not_sent_twice(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")
    dispatch(item)

    with pytest.raises(CaseWorkflowError, match="already handed off to Payments vault"):
        dispatch(item)

    assert len(httpserver.log) == 1
    assert Delivery.objects.count() == 1


def test_a_done_item_is_not_handed_off(endpoint: Any, item: ActionItem, analyst: Any, dispatch: Any):
    case_services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE)

    with pytest.raises(CaseWorkflowError, match="is done"):
        dispatch(item)


def test_the_work_of_a_dismissed_case_is_not_handed_off(
    endpoint: Any, item: ActionItem, analyst: Any, dispatch: Any
):
    case_services.case_dismiss(
        case_id=item.case_id, actor=analyst, dismissal_reason="false_positive", reason="test"
    )

    with pytest.raises(CaseWorkflowError, match="reopen it"):
        dispatch(item)

    assert Delivery.objects.count() == 0


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_analysts_dispatch(endpoint: Any, item: ActionItem, dispatch: Any, persona: Any, who: str):
    before = stored()

    with pytest.raises(PermissionDenied, match=r"handoffs\.dispatch_handoff"):
        dispatch(item, actor=persona(who))

    assert stored() == before


# --- Over the API -------------------------------------------------------------------------------------------


def test_an_analyst_dispatches_over_the_api_and_follows_the_delivery(
    httpserver: HTTPServer,
    endpoint: Any,
    item: ActionItem,
    api: Any,
    analyst: Any,
    django_capture_on_commit_callbacks: Any,
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")

    with django_capture_on_commit_callbacks(execute=True):
        response = api(analyst).post(DISPATCH_URL, {"action_item": item.pk}, format="json")

    assert response.status_code == 202, response.json()
    delivery = Delivery.objects.get()
    assert response["Location"].endswith(f"/api/v1/handoffs/deliveries/{delivery.pk}/")
    assert response.json()["status"] == "pending"
    followed = api(analyst).get(response["Location"]).json()
    assert followed["status"] == "delivered"
    assert [attempt["status_code"] for attempt in followed["attempt_log"]] == [200]


@pytest.mark.parametrize(
    ("who", "status"), [("approver", 403), ("auditor", 403), ("owner", 403), ("outsider", 403), (None, 401)]
)
def test_other_personas_cannot_dispatch_over_the_api(
    endpoint: Any, item: ActionItem, api: Any, persona: Any, who: str | None, status: int
):
    before = stored()

    response = api(persona(who) if who else None).post(DISPATCH_URL, {"action_item": item.pk}, format="json")

    assert response.status_code == status
    assert stored() == before


def test_an_unapproved_proposal_is_refused_over_the_api_with_the_reason(
    endpoint: Any, analyst: Any, payments: Any, case: Any, api: Any
):
    proposal = case_services.action_item_propose(
        actor=analyst, case_id=case.pk, kind=ActionKind.REVOCATION, title="Revoke it", owning_team=payments
    )

    response = api(analyst).post(DISPATCH_URL, {"action_item": proposal.pk}, format="json")

    assert response.status_code == 400
    assert "approve" in response.json()["action_item"][0]
    assert Delivery.objects.count() == 0


def test_dispatching_twice_over_the_api_is_a_conflict(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, api: Any, analyst: Any, dispatch: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")
    dispatch(item)

    response = api(analyst).post(DISPATCH_URL, {"action_item": item.pk}, format="json")

    assert response.status_code == 409
    assert "already handed off" in response.json()["detail"]


def test_a_malformed_dispatch_names_the_field(api: Any, analyst: Any):
    response = api(analyst).post(DISPATCH_URL, {"action_item": "seven"}, format="json")

    assert response.status_code == 400
    assert "action_item" in response.json()


def test_an_unknown_action_item_is_named(endpoint: Any, api: Any, analyst: Any):
    response = api(analyst).post(DISPATCH_URL, {"action_item": 987654}, format="json")

    assert response.status_code == 400
    assert response.json() == {"action_item": ["No action item with id 987654."]}


def test_a_done_item_is_a_conflict_over_the_api(endpoint: Any, item: ActionItem, analyst: Any, api: Any):
    case_services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE)

    response = api(analyst).post(DISPATCH_URL, {"action_item": item.pk}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "This action item is done; there is nothing to hand off."}
