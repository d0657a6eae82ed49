"""Tampering with the chain in raw SQL, and the verifier naming each change: kind, entry and wording.

Each test builds ten real entries through `audit_entry_append`, changes the database behind the portal's
back (tests/audit/tamper.py) and walks the chain. Run on SQLite and on PostgreSQL (where the append-only
trigger is switched off for the tampering session, and a test of its own shows it refusing).
"""

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from audit.chain import Problem, hash_body
from audit.models import AuditEntry
from audit.services import audit_chain_walk, audit_entry_append, audit_trail_verify
from tests.audit import tamper

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL trigger")

OLD_KEY = "an old audit chain key, retired since, 40 chars"
NEW_KEY = "the current audit chain key, 40 characters long"


@pytest.fixture
def chain(analyst: Any) -> list[AuditEntry]:
    entries = tamper.append_chain(10, actor=analyst)
    assert audit_chain_walk().ok, "the untouched chain must verify, or no test here proves anything"
    return entries


def problem() -> Problem:
    found = audit_chain_walk().problem
    assert found is not None, "the verifier found nothing wrong"
    return found


def assert_problem(kind: str, seq: int, message: str) -> None:
    found = problem()
    assert (found.kind, found.seq, found.message) == (kind, seq, message)


# --- Intact -------------------------------------------------------------------------------------------------


def test_an_untouched_chain_verifies_to_its_last_entry(chain):
    result = audit_chain_walk()

    assert result.ok
    assert (result.entries_checked, result.last_seq, result.last_hash) == (10, 10, chain[-1].entry_hash)


def test_an_empty_chain_verifies(db):
    result = audit_chain_walk()

    assert result.ok
    assert (result.entries_checked, result.last_seq) == (0, 0)


def test_an_object_id_that_json_escapes_still_verifies(analyst):
    # The walk's fast path compares text; an id holding a quote differs from its JSON form and must be
    # told from a changed entry by the exact check. (An unsaved group stands in for a model with text ids.)
    target = Group(name="stand-in")
    target.pk = 'id "with" quotes\\'

    with transaction.atomic():
        audit_entry_append(actor=analyst, event="test.odd_id", target=target)
        audit_entry_append(actor=analyst, event="test.after_it")

    result = audit_chain_walk()
    assert result.ok
    assert result.last_seq == 2


# --- Changed ------------------------------------------------------------------------------------------------


def test_a_changed_body_field_is_named(chain):
    body = tamper.row(5)["body"]
    tamper.set_columns(5, body=body.replace('"after":{"step":5}', '"after":{"step":50}'))

    assert_problem("changed", 5, "Entry #5 was changed: its content no longer matches its hash and MAC.")


def test_a_changed_body_with_its_hash_recomputed_still_fails_the_mac(chain):
    body = tamper.row(5)["body"].replace('"after":{"step":5}', '"after":{"step":50}')
    tamper.set_columns(5, body=body, entry_hash=hash_body(body))

    assert_problem("changed", 5, "Entry #5 was changed: its content no longer matches its hash and MAC.")


@pytest.mark.parametrize("column", ["entry_hash", "mac"])
def test_a_changed_hash_or_mac_column_is_named(chain, column):
    tamper.set_columns(5, **{column: "f" * 64})

    assert_problem("changed", 5, "Entry #5 was changed: its content no longer matches its hash and MAC.")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("case_id", 999),
        ("event", "case.close"),
        ("prev_hash", "e" * 64),
        ("actor_id", 424242),
        ("object_type", "cases.case"),
        ("object_id", "999"),
    ],
)
def test_a_changed_lookup_column_is_named(chain, column, value):
    tamper.set_columns(5, **{column: value})

    assert_problem(
        "changed", 5, f"Entry #5 was changed: its {column} column no longer matches what the portal sealed."
    )


def test_a_lookup_column_set_on_an_entry_without_one_is_named(chain):
    # Entry 4 concerns a case and no object; giving it an object is a change too.
    assert tamper.row(4)["object_type"] == ""
    tamper.set_columns(4, object_type="cases.case", object_id="7")

    assert_problem(
        "changed",
        4,
        "Entry #4 was changed: its object_type, object_id columns no longer match what the portal sealed.",
    )


def test_a_changed_key_id_column_is_named_when_the_mac_is_the_portals(chain):
    tamper.set_columns(5, key_id="some-other-key")

    assert_problem(
        "changed", 5, "Entry #5 was changed: its key_id column no longer matches what the portal sealed."
    )


def test_the_last_entry_moved_to_a_later_position_is_a_changed_position(chain):
    tamper.move(10, 12)

    assert_problem(
        "changed", 10, "Entry #10 was changed: its seq column no longer matches what the portal sealed."
    )


# --- Missing ------------------------------------------------------------------------------------------------


def test_an_entry_deleted_in_the_middle_is_named(chain):
    tamper.delete_entries(5)

    assert_problem("missing", 5, "Entry #5 is missing: entry #6 follows #4.")


def test_entries_deleted_in_the_middle_are_named_as_a_range(chain):
    tamper.delete_entries(5, 6, 7)

    assert_problem("missing", 5, "Entries #5 to #7 are missing: entry #8 follows #4.")


def test_the_first_entry_deleted_is_named(chain):
    tamper.delete_entries(1)

    assert_problem("missing", 1, "Entry #1 is missing: entry #2 starts the chain.")


def test_a_deletion_hidden_by_renumbering_the_rest_is_named(chain):
    tamper.delete_entries(5)
    with tamper.tampering():
        # In two steps: a single `seq = seq - 1` may collide with a row not yet moved (row order is free).
        tamper.sql(f"UPDATE {tamper.ENTRIES} SET seq = -seq WHERE seq > 5")
        tamper.sql(f"UPDATE {tamper.ENTRIES} SET seq = -seq - 1 WHERE seq < 0")

    assert_problem("missing", 5, "Entry #5 is missing: entry #6 follows #4.")


def test_the_last_entry_deleted_is_named_against_the_head(chain):
    tamper.delete_entries(10)

    assert_problem(
        "missing", 10, "Entry #10 is missing from the end of the chain: it ends at #9, its head says #10."
    )


def test_the_last_entries_deleted_are_named_against_the_head(chain):
    tamper.delete_entries(8, 9, 10)

    assert_problem(
        "missing",
        8,
        "Entries #8 to #10 are missing from the end of the chain: it ends at #7, its head says #10.",
    )


def test_the_last_entry_deleted_with_the_head_rolled_back_is_named_against_the_last_check(analyst):
    # The head as it was before the last entry: an attacker who kept a copy of it can put it back.
    tamper.append_chain(9, actor=analyst)
    earlier_head = tamper.head()
    tamper.append_chain(1, actor=analyst)
    assert audit_trail_verify(trigger="command").ok

    tamper.delete_entries(10)
    seq, last_hash, key_id, mac = earlier_head
    tamper.set_head(seq=seq, last_hash=last_hash, key_id=key_id, mac=mac)

    assert audit_chain_walk().ok, "the walk alone cannot see this: it needs the last check's record"
    verification = audit_trail_verify(trigger="command")
    assert (verification.ok, verification.problem_kind, verification.problem_seq) == (False, "missing", 10)
    assert verification.message.startswith("Entry #10 is missing: the verification of ")
    assert verification.message.endswith(" UTC found the chain intact up to #10.")


def test_everything_truncated_after_an_intact_check_is_named_missing(chain):
    assert audit_trail_verify(trigger="command").ok

    tamper.truncate_everything()

    assert audit_chain_walk().ok, "an empty chain with no head is intact by itself"
    verification = audit_trail_verify(trigger="command")
    assert (verification.ok, verification.problem_kind, verification.problem_seq) == (False, "missing", 1)
    assert verification.message.startswith("Entries #1 to #10 are missing: the verification of ")
    assert verification.message.endswith(" UTC found the chain intact up to #10.")
    assert (verification.last_seq, verification.entries_checked) == (0, 0)


def test_a_truncation_stays_reported_by_later_checks(chain):
    assert audit_trail_verify(trigger="command").ok
    tamper.truncate_everything()
    assert not audit_trail_verify(trigger="command").ok

    again = audit_trail_verify(trigger="command")

    assert (again.ok, again.problem_kind, again.problem_seq) == (False, "missing", 1)


def test_a_chain_rebuilt_with_the_key_after_a_check_is_named_changed(chain, analyst):
    assert audit_trail_verify(trigger="command").ok
    tamper.truncate_everything()
    tamper.append_chain(12, actor=analyst)
    assert audit_chain_walk().ok, (
        "the rebuilt chain is sealed with the key: only the last check's record tells"
    )

    verification = audit_trail_verify(trigger="command")
    later = audit_trail_verify(trigger="command")

    assert (verification.ok, verification.problem_kind, verification.problem_seq) == (False, "changed", 10)
    assert verification.message.startswith("Entry #10 is not the entry the verification of ")
    assert verification.message.endswith(
        " found there: the chain up to it was rebuilt since, with the portal's key."
    )
    # Nothing of the rebuilt chain is recorded as intact, so the alarm does not clear itself.
    assert (verification.last_seq, later.ok, later.problem_kind) == (0, False, "changed")


# --- Reordered ----------------------------------------------------------------------------------------------


def test_two_entries_swapped_by_their_sequence_numbers_are_named(chain):
    tamper.swap_positions(4, 7)

    assert_problem(
        "reordered",
        4,
        "The chain is out of order: entry #4 is stored at position 7, and position 4 holds entry #7.",
    )


def test_two_neighbours_swapped_are_named(chain):
    tamper.swap_positions(4, 5)

    assert_problem(
        "reordered",
        4,
        "The chain is out of order: entry #4 is stored at position 5, and position 4 holds entry #5.",
    )


def test_two_entries_swapped_by_their_contents_are_named(chain):
    tamper.swap_contents(4, 7)

    assert_problem(
        "reordered",
        4,
        "The chain is out of order: entry #4 is stored at position 7, and position 4 holds entry #7.",
    )


# --- Inserted -----------------------------------------------------------------------------------------------


def test_a_forged_entry_at_the_end_is_named(chain, settings):
    tamper.insert_row(
        tamper.forged(seq=11, prev_hash=chain[-1].entry_hash, key_id=settings.AUDIT_CHAIN_KEY_ID)
    )

    assert_problem(
        "inserted",
        11,
        "Entry at position 11 was inserted after the end of the chain (#10); it is not sealed by the portal.",
    )


def test_a_forged_entry_in_the_middle_with_the_rest_renumbered_is_named(chain, settings):
    forged = tamper.forged(seq=5, prev_hash=chain[3].entry_hash, key_id=settings.AUDIT_CHAIN_KEY_ID)
    tamper.shift_up(5)
    # Relinked as a forger would: the entry that was #5 (now at 6) names the forged row as its predecessor.
    tamper.set_columns(6, prev_hash=forged["entry_hash"])
    tamper.insert_row(forged)

    assert_problem(
        "inserted",
        5,
        "Entry at position 5 was inserted: it is not sealed by the portal, and the entry after it follows #4 "
        "directly.",
    )


def test_a_forged_entry_before_the_first_is_named(chain, settings):
    tamper.insert_row(tamper.forged(seq=0, prev_hash="1" * 64, key_id=settings.AUDIT_CHAIN_KEY_ID))

    assert_problem(
        "inserted",
        0,
        "Entry at position 0 was inserted: it is not sealed by the portal, and the entry after it is the "
        "chain's first.",
    )


def test_a_copy_of_an_authentic_entry_at_the_end_is_named(chain):
    # The hashes are unique columns: a copy that fits in has its own, so it no longer matches its body.
    copy = {**tamper.row(3), "seq": 11, "prev_hash": chain[-1].entry_hash, "entry_hash": "c" * 64}
    tamper.insert_row(copy)

    assert_problem(
        "inserted",
        11,
        "Entry at position 11 was inserted after the end of the chain (#10); it is not sealed by the portal.",
    )


def test_an_exact_copy_of_an_authentic_entry_at_the_end_is_named(chain):
    tamper.drop_unique_hash_constraints()
    tamper.insert_row({**tamper.row(3), "seq": 11})

    assert_problem(
        "inserted",
        11,
        "Entry at position 11 is a copy of entry #3, which the chain already holds earlier: it was inserted.",
    )


def test_an_entry_under_a_key_id_the_portal_never_held_is_named(chain):
    tamper.insert_row(tamper.forged(seq=11, prev_hash=chain[-1].entry_hash, key_id="stolen-key"))

    assert_problem(
        "unknown-key",
        11,
        "Entry at position 11 is sealed with key id 'stolen-key', which this portal does not hold: it was "
        "inserted, or a retired key is missing from AUDIT_CHAIN_RETIRED_KEYS.",
    )


# --- The head -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [{"seq": 9}, {"last_hash": "d" * 64}, {"mac": "0" * 64}])
def test_a_changed_head_is_named(chain, change):
    tamper.set_head(**change)

    assert_problem("head", 10, "The chain's head record was changed: its MAC does not match.")


def test_a_deleted_head_is_named(chain):
    tamper.sql(f"DELETE FROM {tamper.HEAD}")

    assert_problem("head", 10, "The chain's head record is missing.")


def test_an_older_authentic_head_behind_a_longer_chain_is_named(analyst):
    tamper.append_chain(9, actor=analyst)
    earlier_head = tamper.head()
    tamper.append_chain(1, actor=analyst)
    seq, last_hash, key_id, mac = earlier_head

    tamper.set_head(seq=seq, last_hash=last_hash, key_id=key_id, mac=mac)

    assert_problem("head", 10, "The chain ends at #10, but its head says #9.")


# --- Keys ---------------------------------------------------------------------------------------------------


@pytest.fixture
def rotated_chain(analyst: Any) -> None:
    """Five entries under the old key, then five under the new one."""
    with override_settings(
        AUDIT_CHAIN_KEY=OLD_KEY, AUDIT_CHAIN_KEY_ID="audit-2025", AUDIT_CHAIN_RETIRED_KEYS={}
    ):
        tamper.append_chain(5, actor=analyst)
    with override_settings(
        AUDIT_CHAIN_KEY=NEW_KEY,
        AUDIT_CHAIN_KEY_ID="audit-2026",
        AUDIT_CHAIN_RETIRED_KEYS={"audit-2025": OLD_KEY},
    ):
        tamper.append_chain(5, actor=analyst)
    assert list(AuditEntry.objects.values_list("key_id", flat=True).distinct().order_by("key_id")) == [
        "audit-2025",
        "audit-2026",
    ]


def test_entries_sealed_under_a_retired_key_verify_while_it_is_listed(rotated_chain):
    with override_settings(
        AUDIT_CHAIN_KEY=NEW_KEY,
        AUDIT_CHAIN_KEY_ID="audit-2026",
        AUDIT_CHAIN_RETIRED_KEYS={"audit-2025": OLD_KEY},
    ):
        result = audit_chain_walk()

    assert result.ok
    assert result.last_seq == 10


def test_entries_sealed_under_a_retired_key_are_unknown_once_it_is_dropped(rotated_chain):
    with override_settings(
        AUDIT_CHAIN_KEY=NEW_KEY, AUDIT_CHAIN_KEY_ID="audit-2026", AUDIT_CHAIN_RETIRED_KEYS={}
    ):
        assert_problem(
            "unknown-key",
            1,
            "Entry at position 1 is sealed with key id 'audit-2025', which this portal does not hold: it was "
            "inserted, or a retired key is missing from AUDIT_CHAIN_RETIRED_KEYS.",
        )


def test_a_retired_key_listed_with_the_wrong_secret_does_not_verify(rotated_chain):
    with override_settings(
        AUDIT_CHAIN_KEY=NEW_KEY,
        AUDIT_CHAIN_KEY_ID="audit-2026",
        AUDIT_CHAIN_RETIRED_KEYS={"audit-2025": "not the key that sealed these entries"},
    ):
        assert_problem("changed", 1, "Entry #1 was changed: its content no longer matches its hash and MAC.")


# --- The PostgreSQL trigger ---------------------------------------------------------------------------------


@pytest.mark.postgres
@postgres_only
@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {tamper.ENTRIES} SET event = 'case.close' WHERE seq = 5",
        f"DELETE FROM {tamper.ENTRIES} WHERE seq = 5",
    ],
)
def test_postgresql_refuses_raw_updates_and_deletes_of_entries(chain, statement):
    before = tamper.row(5)

    refused = r"audit entries are append-only: (UPDATE|DELETE) of entry 5 refused"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        tamper.sql(statement)

    assert tamper.row(5) == before
    assert audit_chain_walk().ok
