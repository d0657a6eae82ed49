"""Hand-offs in the admin: endpoints and their key shown once, deliveries with their attempt log, and the
dispatch action on action items, as each persona sees them."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_httpserver import HTTPServer

from cases.models import ActionItem, ActionKind
from handoffs import signing
from handoffs.models import Delivery, WebhookEndpoint
from tests.findings.leaks import tables_containing
from tests.handoffs.conftest import HOOK_PATH

ENDPOINTS = reverse("admin:handoffs_webhookendpoint_changelist")
ADD_ENDPOINT = reverse("admin:handoffs_webhookendpoint_add")
ACTION_ITEMS = reverse("admin:cases_actionitem_changelist")


def endpoint_form(payments: Any, **changes: Any) -> dict[str, Any]:
    return {
        "name": "Payments vault",
        "team": payments.pk,
        "action_kind": "revocation",
        "url": "https://vault.example.com/hooks/nhi",
        "is_active": "on",
        **changes,
    }


def test_creating_an_endpoint_shows_its_signing_key_once_and_keeps_it_nowhere(
    client: Any, analyst: Any, payments: Any
):
    client.force_login(analyst)

    response = client.post(ADD_ENDPOINT, endpoint_form(payments))

    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    key = signing.endpoint_key(endpoint_id=endpoint.pk, key_version=1)
    assert key in response.content.decode()
    assert "it will not be shown again" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert tables_containing([key]) == []
    assert (
        key
        not in client.get(
            reverse("admin:handoffs_webhookendpoint_change", args=(endpoint.pk,))
        ).content.decode()
    )


def test_a_refused_endpoint_is_explained_on_its_field_and_nothing_is_saved(
    client: Any, analyst: Any, payments: Any
):
    client.force_login(analyst)

    response = client.post(ADD_ENDPOINT, endpoint_form(payments, url="https://bot:pw@vault.example.com/"))

    assert response.status_code == 200
    assert "must not carry a user name or password" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_rotating_keys_shows_the_new_keys(client: Any, analyst: Any, endpoint: Any, shown_key: str):
    client.force_login(analyst)

    response = client.post(ENDPOINTS, {"action": "rotate_keys", "_selected_action": [endpoint.pk]})

    new_key = signing.endpoint_key(endpoint_id=endpoint.pk, key_version=2)
    page = response.content.decode()
    assert new_key in page
    assert shown_key not in page
    assert "no-store" in response["Cache-Control"]


def test_changing_an_endpoint_goes_through_the_service(
    client: Any, analyst: Any, endpoint: Any, payments: Any
):
    client.force_login(analyst)
    url = reverse("admin:handoffs_webhookendpoint_change", args=(endpoint.pk,))

    response = client.post(url, endpoint_form(payments, url="https://vault2.example.com/hooks"))

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "https://vault2.example.com/hooks"
    assert endpoint.history.latest().history_change_reason == "changed: url"


def test_the_auditor_reads_endpoints_but_cannot_add_change_or_rotate(
    client: Any, auditor: Any, endpoint: Any
):
    client.force_login(auditor)

    page = client.get(ENDPOINTS).content.decode()

    assert "Payments vault" in page
    assert ADD_ENDPOINT not in page
    assert "rotate_keys" not in page
    assert client.post(ADD_ENDPOINT, {}).status_code == 403


def test_endpoints_are_deactivated_never_deleted(client: Any, analyst: Any, endpoint: Any):
    client.force_login(analyst)

    response = client.get(reverse("admin:handoffs_webhookendpoint_delete", args=(endpoint.pk,)))

    assert response.status_code == 403


@pytest.mark.parametrize("who", ["analyst", "auditor"])
def test_a_delivery_page_shows_every_attempt_and_the_payload(
    client: Any,
    persona: Any,
    who: str,
    httpserver: HTTPServer,
    endpoint: Any,
    item: ActionItem,
    dispatch: Any,
):
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("", status=500)
    httpserver.expect_ordered_request(HOOK_PATH, method="POST").respond_with_data("", status=200)
    delivery = dispatch(item)
    client.force_login(persona(who))

    page = client.get(reverse("admin:handoffs_delivery_change", args=(delivery.pk,))).content.decode()

    assert "Attempts (status and error only" in page
    assert "HTTPError" in page
    assert str(delivery.idempotency_key) in page
    assert item.case.reference in page


def test_the_owner_does_not_see_deliveries(
    client: Any, owner: Any, httpserver: HTTPServer, endpoint: Any, item: ActionItem, dispatch: Any
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")
    delivery = dispatch(item)
    client.force_login(owner)

    assert client.get(reverse("admin:handoffs_delivery_changelist")).status_code == 403
    assert client.get(reverse("admin:handoffs_delivery_change", args=(delivery.pk,))).status_code in (
        302,
        403,
    )


def test_the_delivery_list_costs_the_same_number_of_queries_for_few_and_many(
    client: Any, analyst: Any, endpoint: Any, make_item: Any, queued: Any
):
    client.force_login(analyst)
    url = reverse("admin:handoffs_delivery_changelist")
    queued(make_item(title="first"))
    client.get(url)

    def count() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(url).status_code == 200
        return len(context.captured_queries)

    few = count()
    for number in range(6):
        queued(make_item(title=f"item {number}"))
    assert Delivery.objects.count() == 7
    assert count() == few


# --- The dispatch action on action items --------------------------------------------------------------------


def test_an_analyst_hands_action_items_off_from_the_action_item_list(
    client: Any,
    analyst: Any,
    httpserver: HTTPServer,
    endpoint: Any,
    item: ActionItem,
    django_capture_on_commit_callbacks: Any,
):
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("")
    client.force_login(analyst)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            ACTION_ITEMS, {"action": "dispatch_handoffs", "_selected_action": [item.pk]}, follow=True
        )

    assert "handed off to Payments vault" in response.content.decode()
    assert Delivery.objects.get().action_item == item
    assert len(httpserver.log) == 1


def test_a_refused_hand_off_is_explained_in_the_admin(
    client: Any, analyst: Any, endpoint: Any, make_item: Any
):
    rotation = make_item(kind=ActionKind.ROTATION, title="Rotate it")
    client.force_login(analyst)

    response = client.post(
        ACTION_ITEMS, {"action": "dispatch_handoffs", "_selected_action": [rotation.pk]}, follow=True
    )

    assert "this one is a rotation" in response.content.decode()
    assert Delivery.objects.count() == 0


@pytest.mark.parametrize("who", ["approver", "auditor", "owner"])
def test_other_personas_are_not_offered_the_dispatch_action(
    client: Any, persona: Any, who: str, item: ActionItem
):
    client.force_login(persona(who))

    page = client.get(ACTION_ITEMS).content.decode()

    assert "dispatch_handoffs" not in page


def test_the_approve_action_is_still_offered_to_approvers(client: Any, approver: Any, item: ActionItem):
    client.force_login(approver)

    assert "approve_proposals" in client.get(ACTION_ITEMS).content.decode()
