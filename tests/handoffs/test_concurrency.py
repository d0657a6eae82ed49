"""Two copies of one delivery task at the same time (a redelivered message, a sweep): one POST."""

import threading
from typing import Any

import pytest
from django.db import connection
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cases.models import ActionItem
from handoffs import sending
from handoffs.models import DeliveryAttempt
from handoffs.tasks import deliver_handoff
from tests.handoffs.conftest import HOOK_PATH
from tests.threads import in_own_connection

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")


@pytest.fixture
def held_receiver(httpserver: HTTPServer) -> tuple[threading.Event, threading.Event]:
    """A receiver that holds each request until released; `arrived` is set when one is being held."""
    arrived, release = threading.Event(), threading.Event()

    def hold(request: Request) -> Response:
        arrived.set()
        release.wait(timeout=10)
        return Response("", status=200)

    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_handler(hold)
    return arrived, release


@pytest.fixture
def queued_only(monkeypatch: Any, queued: Any) -> Any:
    """Dispatch without sending: these tests commit for real, and the commit would send in-process."""
    monkeypatch.setattr(deliver_handoff, "delay", lambda *args, **kwargs: None)
    return queued


@pytest.mark.django_db(transaction=True)
def test_a_copy_that_arrives_while_the_post_is_in_flight_waits_and_sends_nothing(
    httpserver: HTTPServer, held_receiver: Any, endpoint: Any, item: ActionItem, queued_only: Any
):
    arrived, release = held_receiver
    delivery = queued_only(item)
    first_thread, first = in_own_connection(
        lambda: sending.delivery_attempt(delivery_id=delivery.pk, number=1)
    )
    assert arrived.wait(timeout=10)

    copy = sending.delivery_attempt(delivery_id=delivery.pk, number=1)
    release.set()
    first_thread.join(15)

    assert "error" not in first, first
    assert first["result"].step == sending.Step.DELIVERED
    assert copy.step == sending.Step.BUSY
    assert len(httpserver.log) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_copies_started_together_post_once(
    httpserver: HTTPServer, held_receiver: Any, endpoint: Any, item: ActionItem, queued_only: Any
):
    arrived, release = held_receiver
    delivery = queued_only(item)
    start = threading.Barrier(2, timeout=10)

    def attempt() -> sending.AttemptOutcome:
        start.wait()
        return sending.delivery_attempt(delivery_id=delivery.pk, number=1)

    (thread_a, a), (thread_b, b) = in_own_connection(attempt), in_own_connection(attempt)
    assert arrived.wait(timeout=10)
    # Whichever claimed second has answered by now (it never waits for the POST); then let the POST finish.
    for thread in (thread_a, thread_b):
        thread.join(0.5)
    release.set()
    thread_a.join(15)
    thread_b.join(15)

    assert "error" not in a, a
    assert "error" not in b, b
    assert sorted(outcome["result"].step for outcome in (a, b)) == [sending.Step.BUSY, sending.Step.DELIVERED]
    assert len(httpserver.log) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1
