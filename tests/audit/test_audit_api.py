"""`/api/v1/audit/`: the chain's entries and verifications, read-only, and a verification run on request."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.chain import GENESIS_HASH, hash_body
from audit.models import AuditEntry, AuditVerification
from audit.services import audit_trail_verify
from tests.audit import tamper

ENTRIES = "/api/v1/audit/entries/"
VERIFICATIONS = "/api/v1/audit/verifications/"


@pytest.fixture
def chain(analyst: Any) -> list[AuditEntry]:
    return tamper.append_chain(6, actor=analyst)


def seqs(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["seq"] for item in response.json()["results"]]


# --- Who may read -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["analyst", "approver", "auditor"])
def test_staff_roles_read_the_whole_chain_in_order(api, persona, who, chain):
    assert seqs(api(persona(who)).get(ENTRIES)) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 403), ("outsider", 403), (None, 401)],
    ids=["owner", "outsider", "anonymous"],
)
@pytest.mark.parametrize("url", [ENTRIES, f"{ENTRIES}1/", VERIFICATIONS])
def test_owners_outsiders_and_anonymous_read_nothing(api, persona, who, status, url, chain):
    audit_trail_verify(trigger="command")

    response = api(persona(who) if who else None).get(url)

    assert response.status_code == status
    assert "seq" not in response.content.decode()


def test_the_refusal_names_the_missing_permission(api, owner, chain):
    response = api(owner).get(ENTRIES)

    assert response.json() == {
        "detail": "You may not read the audit trail: the permission 'audit.view_auditentry' is missing."
    }


# --- What an entry shows ------------------------------------------------------------------------------------


def test_an_entry_shows_its_columns_links_and_sealed_body(api, auditor, analyst, chain):
    entry = chain[2]  # #3: by the analyst, about the analyst's account, in case 101

    shown = api(auditor).get(f"{ENTRIES}3/").json()

    assert shown == {
        "seq": 3,
        "recorded_at": entry.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": entry.event,
        "case": 101,
        "object_type": "auth.user",
        "object_id": str(analyst.pk),
        "actor": {"id": analyst.pk, "username": "analyst"},
        "prev_hash": chain[1].entry_hash,
        "entry_hash": entry.entry_hash,
        "key_id": entry.key_id,
        "mac": entry.mac,
        "body": entry.body,
    }
    assert hash_body(shown["body"]) == shown["entry_hash"]


def test_the_first_entry_links_to_the_genesis_hash_and_an_entry_without_actor_shows_none(api, auditor, chain):
    first, fourth = api(auditor).get(ENTRIES, {"seq_to": 4}).json()["results"][0::3]

    assert first["prev_hash"] == GENESIS_HASH
    assert (fourth["seq"], fourth["actor"], fourth["case"]) == (4, None, 102)


def test_the_actor_shown_is_the_sealed_one_even_if_its_column_was_changed(api, auditor, analyst, chain):
    tamper.set_columns(3, actor_id=auditor.pk)

    shown = api(auditor).get(f"{ENTRIES}3/").json()

    assert shown["actor"] == {"id": analyst.pk, "username": "analyst"}


def test_an_unknown_position_is_a_404(api, auditor, chain):
    assert api(auditor).get(f"{ENTRIES}7/").status_code == 404
    assert api(auditor).get(f"{ENTRIES}99999999999999999999999/").status_code == 404


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
def test_entries_cannot_be_written(api, analyst, chain, method):
    url = ENTRIES if method == "post" else f"{ENTRIES}2/"

    response = getattr(api(analyst), method)(url, {"event": "case.close"})

    assert response.status_code == 405
    assert AuditEntry.objects.get(seq=2).event == chain[1].event


# --- Filters, ordering, pages -------------------------------------------------------------------------------


def test_the_list_filters_by_case(api, auditor, chain):
    assert seqs(api(auditor).get(ENTRIES, {"case": 101})) == [3, 6]


def test_the_list_filters_by_event(api, auditor, chain):
    assert seqs(api(auditor).get(ENTRIES, {"event": "case.confirm"})) == [1, 6]


def test_the_list_filters_by_a_range_of_positions(api, auditor, chain):
    assert seqs(api(auditor).get(ENTRIES, {"seq_from": 2, "seq_to": 4})) == [2, 3, 4]


@pytest.mark.parametrize(("name", "value"), [("seq_from", "two"), ("case", "0"), ("seq_to", str(2**64))])
def test_a_malformed_filter_is_a_400_naming_it(api, auditor, chain, name, value):
    response = api(auditor).get(ENTRIES, {name: value})

    assert response.status_code == 400
    assert list(response.json()) == [name]


def test_the_list_can_be_read_newest_first(api, auditor, chain):
    assert seqs(api(auditor).get(ENTRIES, {"ordering": "-seq"})) == [6, 5, 4, 3, 2, 1]


def test_the_list_is_cursor_paginated(api, auditor, chain):
    client = api(auditor)

    first = client.get(ENTRIES, {"page_size": 4}).json()
    second = client.get(first["next"]).json()

    assert [item["seq"] for item in first["results"]] == [1, 2, 3, 4]
    assert [item["seq"] for item in second["results"]] == [5, 6]
    assert second["next"] is None


# --- Verifications ------------------------------------------------------------------------------------------


def test_verifications_are_listed_latest_first(api, auditor, chain):
    first = audit_trail_verify(trigger="command")
    second = audit_trail_verify(trigger="schedule")

    results = api(auditor).get(VERIFICATIONS).json()["results"]

    assert [row["id"] for row in results] == [second.pk, first.pk]
    assert results[0]["trigger"] == "schedule"
    assert results[0]["requested_by"] is None


@pytest.mark.parametrize("who", ["analyst", "approver", "auditor"])
def test_posting_runs_a_verification_recorded_as_the_callers(api, persona, who, chain):
    person = persona(who)

    response = api(person).post(VERIFICATIONS)

    assert response.status_code == 201
    shown = response.json()
    recorded = AuditVerification.objects.get()
    assert (recorded.trigger, recorded.requested_by, recorded.ok) == ("api", person, True)
    assert shown["id"] == recorded.pk
    assert {key: shown[key] for key in ("trigger", "requested_by", "ok", "entries_checked", "last_seq")} == {
        "trigger": "api",
        "requested_by": who,
        "ok": True,
        "entries_checked": 6,
        "last_seq": 6,
    }
    assert (shown["problem_kind"], shown["problem_seq"], shown["message"]) == ("", None, "")
    assert shown["last_hash"] == chain[-1].entry_hash


def test_posting_on_a_broken_chain_records_and_shows_the_problem(api, auditor, chain):
    tamper.swap_positions(2, 5)

    response = api(auditor).post(VERIFICATIONS)

    assert response.status_code == 201
    shown = response.json()
    assert (shown["ok"], shown["problem_kind"], shown["problem_seq"], shown["last_seq"]) == (
        False,
        "reordered",
        2,
        1,
    )
    assert shown["message"] == (
        "The chain is out of order: entry #2 is stored at position 5, and position 2 holds entry #5."
    )


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 403), ("outsider", 403), (None, 401)],
    ids=["owner", "outsider", "anonymous"],
)
def test_owners_outsiders_and_anonymous_cannot_run_a_verification(api, persona, who, status, chain):
    response = api(persona(who) if who else None).post(VERIFICATIONS)

    assert response.status_code == status
    assert not AuditVerification.objects.exists()


def test_a_verification_is_shown_by_id(api, auditor, chain):
    recorded = audit_trail_verify(trigger="admin", actor=auditor)

    shown = api(auditor).get(f"{VERIFICATIONS}{recorded.pk}/").json()

    assert (shown["id"], shown["trigger"], shown["requested_by"]) == (recorded.pk, "admin", "auditor")


def test_verifications_can_be_filtered_by_outcome(api, auditor, chain):
    audit_trail_verify(trigger="command")
    tamper.delete_entries(6)
    broken = audit_trail_verify(trigger="command")

    results = api(auditor).get(VERIFICATIONS, {"ok": "false"}).json()["results"]

    assert [row["id"] for row in results] == [broken.pk]


# --- Query counts -------------------------------------------------------------------------------------------


def queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def test_the_entry_list_costs_the_same_number_of_queries_for_3_and_30_entries(api, auditor):
    client = api(auditor)
    tamper.append_chain(3, actor=auditor)
    client.get(ENTRIES)  # warm: sessions, permissions
    few = queries(client, ENTRIES)

    tamper.append_chain(27, actor=auditor)
    many = queries(client, ENTRIES)

    assert few == many


def test_the_entry_list_runs_a_fixed_number_of_queries(api, auditor, chain, django_assert_num_queries):
    client = api(auditor)
    client.get(ENTRIES)

    # session, user, the user's and their groups' permissions, the entries
    with django_assert_num_queries(5):
        client.get(ENTRIES)


def test_the_verification_list_costs_the_same_number_of_queries_for_2_and_12_checks(
    api, auditor, analyst, chain
):
    client = api(auditor)
    for _ in range(2):
        audit_trail_verify(trigger="admin", actor=analyst)
    client.get(VERIFICATIONS)
    few = queries(client, VERIFICATIONS)

    for _ in range(10):
        audit_trail_verify(trigger="admin", actor=auditor)
    many = queries(client, VERIFICATIONS)

    assert few == many
