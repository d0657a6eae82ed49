"""Sending: every attempt logged, retries with exponential backoff, giving up, and duplicates of the task."""

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from celery.signals import task_retry
from django.core import mail
from django.test import override_settings
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cases.models import ActionItem, ActionStatus, Comment
from handoffs import sending
from handoffs.models import Delivery, DeliveryAttempt, DeliveryStatus
from handoffs.services import handoff_dispatch, webhook_endpoint_update
from handoffs.tasks import deliver_handoff, handoff_sweep
from tests.findings.leaks import tables_containing
from tests.handoffs.conftest import HOOK_PATH


@pytest.fixture
def countdowns() -> Any:
    """The countdown of every retry the task asks for (in-process, Celery runs the retry at once)."""
    seen: list[int] = []

    def record(sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any) -> None:
        seen.append(reason.when)

    task_retry.connect(record, weak=False)
    yield seen
    task_retry.disconnect(record)


def answer(httpserver: HTTPServer, *statuses: int) -> None:
    """The receiver answers these statuses, in order, one per request."""
    for status in statuses:
        httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("", status=status)


def attempts(delivery: Delivery) -> list[tuple[int, int | None, bool, int | None]]:
    return [
        (a.number, a.status_code, a.succeeded, a.retry_in_seconds)
        for a in DeliveryAttempt.objects.filter(delivery=delivery).order_by("number")
    ]


def test_it_retries_a_500_with_exponential_backoff_then_succeeds(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any, countdowns: list[int]
):
    answer(httpserver, 500, 503, 200)

    delivery = dispatch(item)

    assert delivery.status == DeliveryStatus.DELIVERED
    assert attempts(delivery) == [(1, 500, False, 30), (2, 503, False, 60), (3, 200, True, None)]
    assert countdowns == [30, 60]
    assert delivery.attempts == 3
    assert len(httpserver.log) == 3
    # The same idempotency key on every attempt, so the receiver acts once.
    assert {request.headers["X-Portal-Idempotency-Key"] for request, _ in httpserver.log} == {
        str(delivery.idempotency_key)
    }


def test_every_attempt_repeats_the_same_body(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    answer(httpserver, 500, 200)

    dispatch(item)

    first, second = (request.get_data() for request, _ in httpserver.log)
    assert first == second


@override_settings(HANDOFF_MAX_ATTEMPTS=3, HANDOFF_RETRY_BASE_SECONDS=10)
def test_it_gives_up_after_the_last_attempt_marks_the_delivery_failed_and_emails_the_lead(
    httpserver: HTTPServer,
    endpoint: Any,
    item: ActionItem,
    dispatch: Any,
    lead: Any,
    countdowns: list[int],
):
    answer(httpserver, 500, 500, 500)

    delivery = dispatch(item)

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [(1, 500, False, 10), (2, 500, False, 20), (3, 500, False, None)]
    assert countdowns == [10, 20]
    (email,) = mail.outbox
    assert email.to == ["lead@payments.example.test"]
    assert item.case.reference in email.subject
    assert "Payments vault" in email.body
    assert "3 (last answer: HTTP 500)" in email.body
    assert delivery.failure_notified_at is not None


@override_settings(HANDOFF_MAX_ATTEMPTS=2)
def test_giving_up_reopens_the_action_item_and_says_so_on_the_case(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any, lead: Any
):
    answer(httpserver, 502, 502)

    dispatch(item)

    item.refresh_from_db()
    assert item.status == ActionStatus.OPEN
    last = Comment.objects.filter(case=item.case).latest("id")
    assert "failed after 2 attempt(s)" in last.body
    assert last.author.username == "portal-handoffs"


@override_settings(HANDOFF_MAX_ATTEMPTS=2)
def test_a_failed_delivery_may_be_handed_off_again(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    answer(httpserver, 500, 500, 200)
    dispatch(item)

    again = dispatch(item)

    assert again.status == DeliveryStatus.DELIVERED
    assert Delivery.objects.filter(action_item=item).count() == 2


def test_a_client_error_is_not_retried(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any, lead: Any
):
    answer(httpserver, 401)

    delivery = dispatch(item)

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [(1, 401, False, None)]
    assert len(mail.outbox) == 1


def test_a_rate_limited_answer_is_retried(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    answer(httpserver, 429, 200)

    assert dispatch(item).status == DeliveryStatus.DELIVERED


def test_a_redirect_is_not_followed(httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/elsewhere")}
    )

    delivery = dispatch(item)

    assert [request.path for request, _ in httpserver.log] == [HOOK_PATH]
    assert attempts(delivery) == [(1, 302, False, None)]


@override_settings(HANDOFF_MAX_ATTEMPTS=2)
def test_an_unreachable_receiver_is_logged_by_error_class_without_a_status(
    endpoint: Any, item: ActionItem, dispatch: Any, analyst: Any
):
    webhook_endpoint_update(
        actor=analyst, endpoint_id=endpoint.pk, changes={"url": "http://127.0.0.1:9/hook"}
    )

    delivery = dispatch(item)

    logged = DeliveryAttempt.objects.filter(delivery=delivery).order_by("number")
    assert [(a.status_code, a.error_class) for a in logged] == [
        (None, "ConnectionRefusedError"),
        (None, "ConnectionRefusedError"),
    ]
    assert delivery.status == DeliveryStatus.FAILED


def test_the_response_body_is_never_kept(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    echo = "echoed-back-token-ghp_0123456789abcdefABCDEF0123456789abcd"
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data(echo, status=500)
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data(echo, status=200)

    dispatch(item)

    assert tables_containing([echo]) == []
    assert tables_containing(["ghp_0123456789"]) == []


@override_settings(HANDOFF_TIMEOUT_SECONDS=1, HANDOFF_MAX_ATTEMPTS=1)
def test_a_receiver_slower_than_the_timeout_is_an_attempt_that_timed_out(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(timeout=10)
        return Response("", status=200)

    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_handler(slow)

    delivery = dispatch(item)
    release.set()
    # Let the server finish the request it is holding, so that it does not land in the next test's log.
    deadline = time.monotonic() + 10
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.01)

    (attempt,) = DeliveryAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error_class == "TimeoutError"
    assert attempt.error_message == "No answer within 1 s."


# --- Duplicates, lost workers, the sweep --------------------------------------------------------------------


def test_the_same_task_delivered_twice_posts_once(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, queued: Any
):
    answer(httpserver, 200)
    delivery = queued(item)

    first = deliver_handoff.apply(args=(delivery.pk, 1)).get()
    second = deliver_handoff.apply(args=(delivery.pk, 1)).get()

    assert (first, second) == ("delivered", "skipped")
    assert len(httpserver.log) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_a_late_copy_of_an_earlier_attempt_sends_nothing(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, queued: Any
):
    answer(httpserver, 500)
    delivery = queued(item)
    assert sending.delivery_attempt(delivery_id=delivery.pk, number=1).step == sending.Step.RETRY

    copy = sending.delivery_attempt(delivery_id=delivery.pk, number=1)

    assert copy.step == sending.Step.SKIPPED
    assert len(httpserver.log) == 1


def test_while_an_attempt_is_in_flight_a_second_copy_waits_instead_of_sending(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, queued: Any
):
    delivery = queued(item)
    Delivery.objects.filter(pk=delivery.pk).update(sending_since=timezone.now())

    outcome = sending.delivery_attempt(delivery_id=delivery.pk, number=1)

    assert outcome.step == sending.Step.BUSY
    assert outcome.next_number == 1
    assert outcome.retry_in is not None
    assert 0 < outcome.retry_in <= sending.claim_seconds() + 1
    assert httpserver.log == []


def test_a_claim_left_by_a_dead_worker_expires_and_the_attempt_is_made(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, queued: Any
):
    answer(httpserver, 200)
    delivery = queued(item)
    abandoned = timezone.now() - timedelta(seconds=sending.claim_seconds() + 1)
    Delivery.objects.filter(pk=delivery.pk).update(sending_since=abandoned)

    outcome = sending.delivery_attempt(delivery_id=delivery.pk, number=1)

    assert outcome.step == sending.Step.DELIVERED
    assert len(httpserver.log) == 1


def test_a_deactivated_endpoint_receives_nothing_and_the_delivery_fails(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, queued: Any, analyst: Any, lead: Any
):
    delivery = queued(item)
    webhook_endpoint_update(actor=analyst, endpoint_id=endpoint.pk, changes={"is_active": False})

    deliver_handoff.apply(args=(delivery.pk, 1))

    delivery.refresh_from_db()
    assert httpserver.log == []
    assert delivery.status == DeliveryStatus.FAILED
    assert DeliveryAttempt.objects.get(delivery=delivery).error_class == "Refused"
    assert len(mail.outbox) == 1


def test_the_sweep_resends_a_delivery_whose_message_was_lost(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, queued: Any
):
    answer(httpserver, 200)
    delivery = queued(item)  # the on-commit send never ran: as if the broker had been down
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))

    result = handoff_sweep.apply().get()

    delivery.refresh_from_db()
    assert result == {"resent": 1, "failures_notified": 0}
    assert delivery.status == DeliveryStatus.DELIVERED
    assert handoff_sweep.apply().get() == {"resent": 0, "failures_notified": 0}


def test_the_sweep_leaves_deliveries_that_are_waiting_for_their_backoff(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, queued: Any
):
    queued(item)

    assert handoff_sweep.apply().get() == {"resent": 0, "failures_notified": 0}
    assert httpserver.log == []


def test_the_sweep_tells_the_lead_of_a_failure_whose_email_was_not_sent(
    endpoint: Any, item: ActionItem, queued: Any, lead: Any
):
    delivery = queued(item)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, failed_at=timezone.now())

    first = handoff_sweep.apply().get()
    second = handoff_sweep.apply().get()

    assert (first["failures_notified"], second["failures_notified"]) == (1, 0)
    assert len(mail.outbox) == 1


def test_a_team_without_a_lead_is_told_through_its_contact_address(
    httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any, payments: Any
):
    payments.contact_email = "payments-oncall@example.test"
    payments.save()
    answer(httpserver, 400)

    dispatch(item)

    assert [email.to for email in mail.outbox] == [["payments-oncall@example.test"]]


@pytest.mark.parametrize(("failed", "seconds"), [(1, 30), (2, 60), (3, 120), (6, 960), (7, 1800), (20, 1800)])
def test_the_backoff_doubles_from_the_base_and_stays_below_the_brokers_visibility_timeout(failed, seconds):
    assert sending.backoff_seconds(failed) == seconds


def test_the_task_message_holds_ids_only(
    endpoint: Any, item: ActionItem, analyst: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
):
    sent: list[Any] = []
    monkeypatch.setattr(deliver_handoff, "delay", lambda *args, **kwargs: sent.append((args, kwargs)))

    with django_capture_on_commit_callbacks(execute=True):
        delivery = handoff_dispatch(actor=analyst, action_item_id=item.pk)

    assert sent == [((delivery.pk, 1), {})]
