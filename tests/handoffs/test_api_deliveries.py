"""`/api/v1/handoffs/deliveries/`: who sees deliveries, what a delivery shows, and a constant query count."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases import services as case_services
from cases.models import ActionKind
from handoffs.models import Delivery
from handoffs.services import handoff_dispatch, webhook_endpoint_create

LIST_URL = "/api/v1/handoffs/deliveries/"


@pytest.fixture
def deliveries(analyst: Any, payments: Any, open_case: Any) -> Any:
    """`n` pending deliveries, each of its own action item (on cases of their own)."""
    webhook_endpoint_create(
        actor=analyst, name="Payments hooks", url="https://hooks.example.com/", team=payments
    )

    def make(n: int) -> list[Delivery]:
        made = []
        for number in range(n):
            case = open_case()
            item = case_services.action_item_add(
                actor=analyst,
                case_id=case.pk,
                kind=ActionKind.TICKET,
                title=f"Ticket {number}",
                owning_team=payments,
            )
            made.append(handoff_dispatch(actor=analyst, action_item_id=item.pk))
        return made

    return make


@pytest.mark.parametrize("who", ["analyst", "approver", "auditor"])
def test_staff_roles_see_every_delivery(api: Any, persona: Any, who: str, deliveries: Any):
    made = deliveries(2)

    response = api(persona(who)).get(LIST_URL)

    assert response.status_code == 200
    assert sorted(row["id"] for row in response.json()["results"]) == sorted(d.pk for d in made)


@pytest.mark.parametrize(("who", "status"), [("owner", 403), ("outsider", 403), (None, 401)])
def test_owners_outsiders_and_anonymous_see_no_delivery(
    api: Any, persona: Any, who: str | None, status: int, deliveries: Any
):
    deliveries(1)

    response = api(persona(who) if who else None).get(LIST_URL)

    assert response.status_code == status


def test_a_delivery_shows_its_payload_attempts_item_and_endpoint(api: Any, analyst: Any, deliveries: Any):
    (delivery,) = deliveries(1)

    shown = api(analyst).get(f"{LIST_URL}{delivery.pk}/").json()

    assert shown["idempotency_key"] == str(delivery.idempotency_key)
    assert shown["status"] == "pending"
    assert shown["action_item"]["kind"] == "ticket"
    assert shown["action_item"]["case_reference"] == delivery.action_item.case.reference
    assert shown["endpoint"]["name"] == "Payments hooks"
    assert shown["dispatched_by"] == "analyst"
    assert shown["payload"] == delivery.payload
    assert shown["attempt_log"] == []


def test_the_list_filters_by_status_and_action_item(api: Any, analyst: Any, deliveries: Any):
    first, _second = deliveries(2)
    Delivery.objects.filter(pk=first.pk).update(status="failed")

    failed = api(analyst).get(LIST_URL, {"status": "failed"}).json()["results"]
    of_item = api(analyst).get(LIST_URL, {"action_item": first.action_item_id}).json()["results"]

    assert [row["id"] for row in failed] == [first.pk]
    assert [row["id"] for row in of_item] == [first.pk]


def test_an_unknown_filter_value_is_a_field_error(api: Any, analyst: Any):
    response = api(analyst).get(LIST_URL, {"status": "lost"})

    assert response.status_code == 400
    assert "status" in response.json()


def test_the_list_costs_the_same_number_of_queries_for_2_and_12_deliveries(
    api: Any, analyst: Any, deliveries: Any
):
    client = api(analyst)
    made = deliveries(2)
    client.get(LIST_URL)  # warm: sessions, permissions

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(LIST_URL).status_code == 200
        return len(context.captured_queries)

    few = queries()
    made += deliveries(10)
    assert len(made) == 12
    many = queries()

    assert few == many


def test_the_list_runs_a_fixed_number_of_queries(
    api: Any, analyst: Any, deliveries: Any, django_assert_num_queries: Any
):
    deliveries(3)
    client = api(analyst)
    client.get(LIST_URL)

    # session, user, the user's and their groups' permissions, the deliveries (one join), their attempt logs
    with django_assert_num_queries(6):
        client.get(LIST_URL)
