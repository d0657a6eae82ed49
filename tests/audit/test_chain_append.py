"""Appending to the chain: the service's rules, the ORM refusing every write but an insert, canonical JSON."""

import hashlib
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from django.db import connection, transaction

from audit import services as audit_services
from audit.canonical import NotCanonical, canonical_json, text_digest
from audit.chain import GENESIS_HASH, entry_payload, hash_body
from audit.models import AuditEntry, AuditHead, AuditTrailImmutable
from audit.services import AuditTrailMisuse, audit_chain_walk, audit_entry_append
from tests.audit import tamper
from tests.threads import in_own_connection


def snapshot() -> list[tuple[Any, ...]]:
    return tamper.sql(f"SELECT {', '.join(tamper.COLUMNS)} FROM {tamper.ENTRIES} ORDER BY seq")


@pytest.fixture
def chain(analyst: Any) -> list[AuditEntry]:
    return tamper.append_chain(3, actor=analyst)


# --- What an append writes ----------------------------------------------------------------------------------


def test_an_entry_links_to_its_predecessor_and_moves_the_head(chain, analyst):
    with transaction.atomic():
        entry = audit_entry_append(actor=analyst, event="case.confirm", target=analyst, case_id=7)

    assert (entry.seq, entry.prev_hash) == (4, chain[-1].entry_hash)
    assert entry.entry_hash == hash_body(entry.body)
    assert tamper.head()[:2] == (4, entry.entry_hash)
    assert audit_chain_walk().ok


def test_the_first_entry_follows_the_genesis_hash(analyst):
    with transaction.atomic():
        entry = audit_entry_append(actor=analyst, event="case.open")

    assert (entry.seq, entry.prev_hash) == (1, GENESIS_HASH)


def test_an_entry_seals_its_actor_object_and_values(analyst):
    with transaction.atomic():
        entry = audit_entry_append(
            actor=analyst,
            event="case.update",
            target=analyst,
            case_id=12,
            before={"severity": 2},
            after={"severity": 3},
            details={"reason": text_digest("raised after review")},
        )

    sealed = entry_payload(entry.body)
    assert sealed["actor"] == {"id": analyst.pk, "username": "analyst"}
    assert sealed["object"] == {"type": "auth.user", "id": str(analyst.pk)}
    assert (sealed["before"], sealed["after"]) == ({"severity": 2}, {"severity": 3})
    assert "raised after review" not in entry.body
    assert (entry.case_id, entry.actor_id, entry.object_type, entry.object_id) == (
        12,
        analyst.pk,
        "auth.user",
        str(analyst.pk),
    )


@pytest.mark.django_db(transaction=True)
def test_appending_outside_a_transaction_is_a_misuse(analyst):
    # A transactional test: no transaction wraps the call, as none wraps a careless caller's.
    with pytest.raises(AuditTrailMisuse, match=r"'case\.confirm' appended outside a transaction"):
        audit_entry_append(actor=analyst, event="case.confirm")

    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    "event",
    ["Case.Confirm", "confirm", "case.", "case..confirm", "case.confirm!", "case confirm", "a." + "b" * 64],
)
def test_a_malformed_event_name_is_a_misuse(db, analyst, event):
    with pytest.raises(AuditTrailMisuse, match="is not an audit event name"), transaction.atomic():
        audit_entry_append(actor=analyst, event=event)

    assert not AuditEntry.objects.exists()


def test_a_rolled_back_transaction_leaves_no_entry_and_the_head_unchanged(chain, analyst):
    head_before = tamper.head()

    def a_change_that_fails_after_its_entry() -> None:
        with transaction.atomic():
            audit_entry_append(actor=analyst, event="case.confirm", case_id=5)
            raise RuntimeError("the change failed after its entry was appended")

    with pytest.raises(RuntimeError):
        a_change_that_fails_after_its_entry()

    assert AuditEntry.objects.count() == 3
    assert tamper.head() == head_before
    with transaction.atomic():
        next_entry = audit_entry_append(actor=analyst, event="case.confirm", case_id=5)
    assert (next_entry.seq, next_entry.prev_hash) == (4, chain[-1].entry_hash)
    assert audit_chain_walk().ok


def test_a_value_without_a_canonical_form_refuses_the_append(chain, analyst):
    head_before = tamper.head()

    with pytest.raises(NotCanonical, match=r"\$\.after\.score: float"), transaction.atomic():
        audit_entry_append(actor=analyst, event="case.update", after={"score": 0.5})

    assert AuditEntry.objects.count() == 3
    assert tamper.head() == head_before


# --- Canonical JSON -----------------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'


def test_canonical_json_writes_times_in_utc_with_microseconds_and_exact_types_as_text():
    value = {
        "at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "day": date(2026, 3, 1),
        "amount": Decimal("10.50"),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
    }

    assert canonical_json(value) == (
        '{"amount":"10.50","at":"2026-03-01T12:00:00.000000Z","day":"2026-03-01",'
        '"id":"12345678-1234-5678-1234-567812345678"}'
    )


def test_canonical_json_refuses_floats():
    with pytest.raises(NotCanonical, match=r"\$\.ratio: float has no canonical JSON form"):
        canonical_json({"ratio": 1.5})


def test_canonical_json_refuses_naive_datetimes():
    with pytest.raises(NotCanonical, match=r"\$\.at: a naive datetime"):
        canonical_json({"at": datetime(2026, 3, 1, 12, 0)})


def test_canonical_json_refuses_keys_that_are_not_strings():
    with pytest.raises(NotCanonical, match=r"\$\.by_id: keys must be strings, not int"):
        canonical_json({"by_id": {1: "one"}})


def test_a_text_digest_holds_the_length_and_hash_never_the_text():
    digest = text_digest("rotated the key AKIA0000")

    assert digest == {"sha256": hashlib.sha256(b"rotated the key AKIA0000").hexdigest(), "length": 24}
    assert "AKIA" not in canonical_json(digest)


# --- The ORM refuses every change of an entry ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "attempt"),
    [
        ("queryset update", lambda: AuditEntry.objects.filter(seq=2).update(event="case.close")),
        ("update of all", lambda: AuditEntry.objects.update(event="case.close")),
        ("queryset delete", lambda: AuditEntry.objects.filter(seq=2).delete()),
        ("delete of all", lambda: AuditEntry.objects.all().delete()),
        (
            "bulk_update",
            lambda: AuditEntry.objects.bulk_update([AuditEntry(seq=2, event="case.close")], fields=["event"]),
        ),
        (
            "update_or_create",
            lambda: AuditEntry.objects.update_or_create(seq=2, defaults={"event": "case.close"}),
        ),
        (
            "upsert",
            lambda: AuditEntry.objects.bulk_create(
                [AuditEntry(seq=2, event="case.close")],
                update_conflicts=True,
                unique_fields=["seq"],
                update_fields=["event"],
            ),
        ),
        ("base manager update", lambda: AuditEntry._base_manager.filter(seq=2).update(event="case.close")),
        ("private _update", lambda: AuditEntry.objects.filter(seq=2)._update({"event": "case.close"})),
    ],
)
def test_the_orm_refuses_to_change_entries_in_bulk(chain, what, attempt):
    before = snapshot()

    with pytest.raises(AuditTrailImmutable, match="Audit entries are append-only"), transaction.atomic():
        attempt()

    assert snapshot() == before


def test_saving_an_existing_entry_is_refused(chain):
    entry = AuditEntry.objects.get(seq=2)
    entry.event = "case.close"
    before = snapshot()

    with (
        pytest.raises(AuditTrailImmutable, match="saving an existing entry is refused"),
        transaction.atomic(),
    ):
        entry.save()

    assert snapshot() == before


def test_saving_a_reloaded_entry_is_refused_too(chain):
    entry = AuditEntry.objects.get(seq=2)
    entry.refresh_from_db()
    before = snapshot()

    with pytest.raises(AuditTrailImmutable), transaction.atomic():
        entry.save(update_fields=["event"])

    assert snapshot() == before


def test_deleting_an_entry_is_refused(chain):
    entry = AuditEntry.objects.get(seq=2)
    before = snapshot()

    with pytest.raises(AuditTrailImmutable, match="delete\\(\\) is refused"), transaction.atomic():
        entry.delete()

    assert snapshot() == before
    assert AuditHead.objects.get().seq == 3


# --- PostgreSQL: concurrent writers, one chain -----------------------------------------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
WRITERS = 8
ENTRIES_EACH = 5


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_make_one_linear_chain(analyst):
    start_together = threading.Barrier(WRITERS, timeout=10)

    def writer(number: int) -> list[int]:
        start_together.wait()
        seqs = []
        for step in range(ENTRIES_EACH):
            with transaction.atomic():
                entry = audit_entry_append(
                    actor=analyst, event="test.concurrent", case_id=number, after={"step": step}
                )
                seqs.append(entry.seq)
        return seqs

    runs = [in_own_connection(partial(writer, number)) for number in range(WRITERS)]
    for thread, _ in runs:
        thread.join(30)

    assert not any(thread.is_alive() for thread, _ in runs)
    assert all("error" not in outcome for _, outcome in runs), [o.get("error") for _, o in runs]
    total = WRITERS * ENTRIES_EACH
    written = sorted(seq for _, outcome in runs for seq in outcome["result"])
    assert written == list(range(1, total + 1))
    links = list(AuditEntry.objects.order_by("seq").values_list("seq", "prev_hash", "entry_hash"))
    assert [seq for seq, _, _ in links] == list(range(1, total + 1))
    assert [prev for _, prev, _ in links] == [GENESIS_HASH] + [digest for _, _, digest in links[:-1]]
    # Each writer's entries are in its own order (it waited for its previous commit).
    by_writer = [outcome["result"] for _, outcome in runs]
    assert all(seqs == sorted(seqs) for seqs in by_writer)
    assert tamper.head()[:2] == (total, links[-1][2])
    result = audit_chain_walk()
    assert (result.ok, result.last_seq) == (True, total)


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_second_writer_waits_for_the_first_to_commit(analyst):
    with transaction.atomic():
        opening = audit_entry_append(actor=analyst, event="test.opening")  # the head row exists from here
    first_appended = threading.Event()
    release_first = threading.Event()

    def first() -> AuditEntry:
        with transaction.atomic():
            entry = audit_entry_append(actor=analyst, event="test.first")
            first_appended.set()
            assert release_first.wait(10)
        return entry

    def second() -> AuditEntry:
        assert first_appended.wait(10)
        with transaction.atomic():
            return audit_entry_append(actor=analyst, event="test.second")

    thread_a, a = in_own_connection(first)
    thread_b, b = in_own_connection(second)
    try:
        waiting = _wait_for_a_lock_wait()
        assert thread_b.is_alive(), "the second writer finished while the first still held the head"
        assert "error" not in b, b
    finally:
        release_first.set()
        thread_a.join(15)
        thread_b.join(15)

    assert waiting, "the second writer never waited on the head's row lock"
    assert "error" not in a, a
    assert "error" not in b, b
    assert (a["result"].seq, b["result"].seq) == (2, 3)
    assert (a["result"].prev_hash, b["result"].prev_hash) == (opening.entry_hash, a["result"].entry_hash)
    assert audit_chain_walk().ok


def _wait_for_a_lock_wait(timeout: float = 10.0) -> bool:
    """True once another session of this database waits for a row lock (the head's), within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE %s",
                ["%audit_audithead%FOR UPDATE%"],
            )
            (count,) = cursor.fetchone()
        if count:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_entries_appended_during_a_walk_are_not_taken_for_missing_ones(analyst, monkeypatch):
    for step in range(6):
        with transaction.atomic():
            audit_entry_append(actor=analyst, event="test.before_walk", after={"step": step})
    monkeypatch.setattr(audit_services, "WALK_BATCH", 2)  # several pages, so appends land mid-walk
    pages_read = 0
    real_walk = audit_services.walk

    def append_elsewhere() -> None:
        for step in range(3):
            with transaction.atomic():
                audit_entry_append(actor=analyst, event="test.during_walk", after={"step": step})

    def rows_with_appends_between(rows: Any) -> Any:
        nonlocal pages_read
        for number, row in enumerate(rows):
            if number == 2:  # after the first page: another connection appends and commits
                thread, outcome = in_own_connection(append_elsewhere)
                thread.join(15)
                assert "error" not in outcome, outcome
                pages_read += 1
            yield row

    def walk_with_appends(rows: Any, **kwargs: Any) -> Any:
        return real_walk(rows_with_appends_between(rows), **kwargs)

    monkeypatch.setattr(audit_services, "walk", walk_with_appends)

    result = audit_chain_walk()

    assert pages_read == 1
    assert (result.ok, result.last_seq, result.problem) == (True, 6, None)
    assert AuditEntry.objects.count() == 9  # the appends did happen; the walk saw its snapshot
