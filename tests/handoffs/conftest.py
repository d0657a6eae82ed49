"""Fixtures for hand-offs: a receiver (pytest-httpserver), its endpoint and key, action items to hand off, and
a helper that signs a callback the way a receiver would."""

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from cases import services as case_services
from cases.models import ActionItem, ActionKind, Case, Comment
from handoffs.models import Delivery, DeliveryAttempt, WebhookEndpoint
from handoffs.services import handoff_dispatch, webhook_endpoint_create
from portal import roles
from tests.factories import UserFactory

HOOK_PATH = "/hooks/nhi"
CALLBACK_URL = "/api/v1/handoffs/callback/"


def receiver_signature(key: str, timestamp: str, body: bytes) -> str:
    """What a receiver computes, written here from the documentation rather than imported from the portal."""
    return "sha256=" + hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@pytest.fixture
def handoffs_account(role_groups: None) -> Any:
    return roles.handoffs_user()


@pytest.fixture
def lead(payments: Any) -> Any:
    person = UserFactory.create(
        username="payments-lead", email="lead@payments.example.test", first_name="Lea"
    )
    payments.lead = person
    payments.save()
    return person


@pytest.fixture
def hook_url(httpserver: HTTPServer) -> str:
    return httpserver.url_for(HOOK_PATH)


@pytest.fixture
def endpoint_with_key(analyst: Any, payments: Any, hook_url: str) -> tuple[WebhookEndpoint, str]:
    """Payments' revocation endpoint, pointing at the local receiver, and the key shown when it was made."""
    return webhook_endpoint_create(
        actor=analyst, name="Payments vault", url=hook_url, team=payments, action_kind=ActionKind.REVOCATION
    )


@pytest.fixture
def endpoint(endpoint_with_key: tuple[WebhookEndpoint, str]) -> WebhookEndpoint:
    return endpoint_with_key[0]


@pytest.fixture
def shown_key(endpoint_with_key: tuple[WebhookEndpoint, str]) -> str:
    return endpoint_with_key[1]


@pytest.fixture
def case(open_case: Callable[..., Case]) -> Case:
    return open_case()


@pytest.fixture
def make_item(analyst: Any, payments: Any, case: Case) -> Callable[..., ActionItem]:
    def make(kind: str = ActionKind.REVOCATION, title: str = "Revoke the leaked deploy key") -> ActionItem:
        return case_services.action_item_add(
            actor=analyst, case_id=case.pk, kind=kind, title=title, owning_team=payments
        )

    return make


@pytest.fixture
def item(make_item: Callable[..., ActionItem]) -> ActionItem:
    return make_item()


@pytest.fixture
def dispatch(django_capture_on_commit_callbacks: Any, analyst: Any) -> Callable[..., Delivery]:
    """Dispatch through the service and run what it schedules on commit (the task, in-process)."""

    def run(action_item: ActionItem, *, actor: Any = None) -> Delivery:
        with django_capture_on_commit_callbacks(execute=True):
            delivery = handoff_dispatch(actor=actor or analyst, action_item_id=action_item.pk)
        delivery.refresh_from_db()
        return delivery

    return run


@pytest.fixture
def queued(analyst: Any) -> Callable[[ActionItem], Delivery]:
    """Dispatch without running the task: the delivery waits, as if the broker had not delivered it yet."""

    def run(action_item: ActionItem) -> Delivery:
        return handoff_dispatch(actor=analyst, action_item_id=action_item.pk)

    return run


@pytest.fixture
def signed_callback(api: Callable[[Any], Any]) -> Callable[..., Any]:
    """POST a callback signed with `key` (as a receiver would); every part can be spoiled by the test."""

    def post(
        key: str,
        body: dict[str, Any],
        *,
        timestamp: str | None = None,
        signature: str | None = None,
        header_key: str | None = None,
        client: Any = None,
    ) -> Any:
        raw = json.dumps(body).encode()
        stamp = timestamp if timestamp is not None else str(int(time.time()))
        headers = {
            "X-Portal-Timestamp": stamp,
            "X-Portal-Signature": signature if signature is not None else receiver_signature(key, stamp, raw),
        }
        if header_key is not None:
            headers["X-Portal-Idempotency-Key"] = header_key
        return (client or api(None)).post(CALLBACK_URL, raw, content_type="application/json", headers=headers)

    return post


def stored() -> dict[str, int]:
    """Every table a hand-off writes to: a refused request must leave each as it was."""
    return {
        "deliveries": Delivery.objects.count(),
        "delivery_history": Delivery.history.count(),
        "attempts": DeliveryAttempt.objects.count(),
        "comments": Comment.objects.count(),
        "action_item_history": ActionItem.history.count(),
    }
