"""The receiver's signed callback: done or failed with the external reference; anything unsigned, stale,
unknown or replayed is refused and changes nothing."""

import json
import time
from typing import Any

import pytest
from django.core import mail
from pytest_httpserver import HTTPServer

from cases import services as case_services
from cases.models import ActionItem, ActionStatus, Comment
from handoffs.models import Delivery, DeliveryStatus, HandoffOutcome
from handoffs.services import webhook_endpoint_create, webhook_endpoint_rotate_key
from tests.handoffs.conftest import CALLBACK_URL, HOOK_PATH, receiver_signature, stored

TICKET = "https://jira.example.com/browse/PAY-1234"
BAD_SIGNATURE = (
    "The signature does not verify: no hand-off has this idempotency key, or the callback was not signed "
    "with its endpoint's current key. Nothing was changed."
)


@pytest.fixture
def delivered(httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any) -> Delivery:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")
    return dispatch(item)


def done(delivery: Delivery, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": str(delivery.idempotency_key),
        "status": "done",
        "external_reference": TICKET,
        **changes,
    }


def test_a_valid_callback_marks_the_action_item_done_with_the_reference(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    response = signed_callback(shown_key, done(delivered))

    assert response.status_code == 200, response.json()
    assert response.json()["outcome"] == "done"
    assert response.json()["action_item_status"] == "done"
    delivered.refresh_from_db()
    item = delivered.action_item
    assert (item.status, item.external_reference) == (ActionStatus.DONE, TICKET)
    assert (delivered.outcome, delivered.external_reference) == (HandoffOutcome.DONE, TICKET)


def test_a_valid_callback_is_noted_on_the_case_and_in_history_as_the_hand_offs_account(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    signed_callback(shown_key, done(delivered, note="Revoked in Vault at 14:02."))

    comment = Comment.objects.filter(case=delivered.action_item.case).latest("id")
    assert comment.author.username == "portal-handoffs"
    assert TICKET in comment.body
    assert "Revoked in Vault at 14:02." in comment.body
    latest = delivered.history.latest()
    assert latest.history_user.username == "portal-handoffs"
    assert latest.history_change_reason == f"receiver reported done: {TICKET}"
    item_history = delivered.action_item.history.latest()
    assert (item_history.status, item_history.history_user.username) == ("done", "portal-handoffs")


def test_the_idempotency_key_may_come_in_the_header(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    body = {"status": "done", "external_reference": "PAY-1234"}

    response = signed_callback(shown_key, body, header_key=str(delivered.idempotency_key))

    assert response.status_code == 200


def test_a_failed_callback_reopens_the_item_and_tells_the_lead(
    delivered: Delivery,
    shown_key: str,
    signed_callback: Any,
    lead: Any,
    django_capture_on_commit_callbacks: Any,
):
    body = {"idempotency_key": str(delivered.idempotency_key), "status": "failed", "note": "Key not found."}

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_callback(shown_key, body)

    assert response.status_code == 200
    delivered.refresh_from_db()
    assert delivered.outcome == HandoffOutcome.FAILED
    assert delivered.action_item.status == ActionStatus.OPEN
    (email,) = mail.outbox
    assert email.to == [lead.email]
    assert "Key not found." in email.body


def test_after_a_reported_failure_the_item_may_be_handed_off_again(
    delivered: Delivery, shown_key: str, signed_callback: Any, dispatch: Any
):
    signed_callback(shown_key, {"idempotency_key": str(delivered.idempotency_key), "status": "failed"})

    again = dispatch(delivered.action_item)

    assert again.pk != delivered.pk
    assert again.status == DeliveryStatus.DELIVERED


def test_a_callback_that_arrives_before_the_delivery_is_recorded_counts_as_delivered(
    endpoint: Any, item: ActionItem, queued: Any, shown_key: str, signed_callback: Any
):
    delivery = queued(item)

    response = signed_callback(shown_key, done(delivery))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


# --- Refusals: nothing changes ------------------------------------------------------------------------------


def test_a_bad_signature_is_refused(delivered: Delivery, shown_key: str, signed_callback: Any):
    before = stored()

    response = signed_callback(shown_key, done(delivered), signature="sha256=" + "0" * 64)

    assert response.status_code == 401
    assert response.json() == {"detail": BAD_SIGNATURE}
    assert stored() == before
    delivered.refresh_from_db()
    assert delivered.action_item.status == ActionStatus.IN_PROGRESS


def test_a_body_changed_after_signing_is_refused(
    delivered: Delivery, shown_key: str, signed_callback: Any, api: Any
):
    stamp = str(int(time.time()))
    signed_body = json.dumps(done(delivered)).encode()
    signature = receiver_signature(shown_key, stamp, signed_body)
    tampered = json.dumps(done(delivered, external_reference="https://evil.example.com/")).encode()
    before = stored()

    response = api(None).post(
        CALLBACK_URL,
        tampered,
        content_type="application/json",
        headers={"X-Portal-Timestamp": stamp, "X-Portal-Signature": signature},
    )

    assert response.status_code == 401
    assert stored() == before


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_a_timestamp_more_than_five_minutes_away_is_refused(
    delivered: Delivery, shown_key: str, signed_callback: Any, offset: int
):
    before = stored()

    response = signed_callback(shown_key, done(delivered), timestamp=str(int(time.time()) + offset))

    assert response.status_code == 401
    assert "not within 5 minutes" in response.json()["detail"]
    assert stored() == before


@pytest.mark.parametrize("stamp", ["yesterday", "-5", "1.5e9", ""])
def test_a_malformed_timestamp_is_refused(
    delivered: Delivery, shown_key: str, signed_callback: Any, stamp: str
):
    response = signed_callback(shown_key, done(delivered), timestamp=stamp)

    assert response.status_code == 401


def test_an_unknown_idempotency_key_gets_the_same_answer_as_a_bad_signature(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    before = stored()

    response = signed_callback(
        shown_key, done(delivered, idempotency_key="00000000-0000-4000-8000-000000000000")
    )

    assert response.status_code == 401
    assert response.json() == {"detail": BAD_SIGNATURE}
    assert stored() == before


def test_a_replayed_callback_is_refused_and_changes_nothing(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    first = signed_callback(shown_key, done(delivered))
    before = stored()

    replay = signed_callback(shown_key, done(delivered, status="failed"))

    assert first.status_code == 200
    assert replay.status_code == 403
    assert "already recorded" in replay.json()["detail"]
    assert stored() == before
    delivered.refresh_from_db()
    assert delivered.outcome == HandoffOutcome.DONE


def test_the_previous_key_stops_working_when_the_key_is_rotated(
    delivered: Delivery, shown_key: str, signed_callback: Any, analyst: Any
):
    _, new_key = webhook_endpoint_rotate_key(actor=analyst, endpoint_id=delivered.endpoint_id)

    old = signed_callback(shown_key, done(delivered))
    new = signed_callback(new_key, done(delivered))

    assert (old.status_code, new.status_code) == (401, 200)


def test_a_callback_signed_with_another_endpoints_key_is_refused(
    delivered: Delivery, signed_callback: Any, analyst: Any, platform: Any, hook_url: str
):
    _, other_key = webhook_endpoint_create(actor=analyst, name="Platform Jira", url=hook_url, team=platform)

    response = signed_callback(other_key, done(delivered))

    assert response.status_code == 401


def test_headers_and_body_naming_different_hand_offs_are_refused(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    response = signed_callback(shown_key, done(delivered), header_key="00000000-0000-4000-8000-000000000000")

    assert response.status_code == 401
    assert "different hand-offs" in response.json()["detail"]


@pytest.mark.parametrize("missing", ["X-Portal-Timestamp", "X-Portal-Signature"])
def test_an_unsigned_callback_is_refused(delivered: Delivery, api: Any, missing: str):
    headers = {"X-Portal-Timestamp": str(int(time.time())), "X-Portal-Signature": "sha256=00"}
    del headers[missing]

    response = api(None).post(CALLBACK_URL, done(delivered), format="json", headers=headers)

    assert response.status_code == 401
    assert "must carry" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Signature")


def test_a_signed_in_session_is_not_a_signature(delivered: Delivery, api: Any, analyst: Any):
    response = api(analyst).post(CALLBACK_URL, done(delivered), format="json")

    assert response.status_code == 401
    delivered.refresh_from_db()
    assert delivered.outcome == ""


def test_done_without_a_reference_is_refused_naming_the_field(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    before = stored()

    response = signed_callback(shown_key, done(delivered, external_reference=""))

    assert response.status_code == 400
    assert "external_reference" in response.json()
    assert stored() == before


def test_an_unknown_status_is_refused_naming_the_field(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    response = signed_callback(shown_key, done(delivered, status="maybe"))

    assert response.status_code == 400
    assert "status" in response.json()


def test_a_reference_with_credentials_in_its_url_is_kept_without_them(
    delivered: Delivery, shown_key: str, signed_callback: Any
):
    signed_callback(
        shown_key, done(delivered, external_reference="https://bot:hunter2@jira.example.com/PAY-1")
    )

    delivered.refresh_from_db()
    assert delivered.external_reference == "https://jira.example.com/PAY-1"


def test_on_a_case_dismissed_meanwhile_the_outcome_is_recorded_and_the_item_left_as_it_is(
    delivered: Delivery, shown_key: str, signed_callback: Any, analyst: Any
):
    case_services.case_dismiss(
        case_id=delivered.action_item.case_id, actor=analyst, dismissal_reason="benign", reason="no risk"
    )

    response = signed_callback(shown_key, done(delivered))

    assert response.status_code == 200
    delivered.refresh_from_db()
    assert delivered.outcome == HandoffOutcome.DONE
    assert delivered.action_item.status == ActionStatus.IN_PROGRESS
    comment = Comment.objects.filter(case=delivered.action_item.case).latest("id")
    assert "left in progress" in comment.body
