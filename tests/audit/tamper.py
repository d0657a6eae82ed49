"""Build a real chain through the service, then tamper with it behind the portal's back, in raw SQL.

Every change here goes through `connection.cursor()`, never the ORM (which refuses), as an attacker with
database access would. On PostgreSQL the append-only trigger is switched off for the session first
(`tampering()`): the tests prove what verification finds once someone has got past it.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.canonical import canonical_json, text_digest
from audit.chain import entry_mac, hash_body, seal_body
from audit.models import ENTRY_COLUMNS, AuditEntry, AuditHead
from audit.services import audit_entry_append

ENTRIES = AuditEntry._meta.db_table
HEAD = AuditHead._meta.db_table
COLUMNS = ENTRY_COLUMNS
# Events and cases for the chain's entries, in turn: some entries concern no case.
EVENTS = ("case.open", "case.confirm", "evidence.capture", "mapping.add", "case.assign")
CASES = (101, 102, None)


def append_chain(count: int, *, actor: Any) -> list[AuditEntry]:
    """`count` real entries, each appended by the service in a transaction of its own."""
    entries = []
    for number in range(1, count + 1):
        with transaction.atomic():
            entries.append(
                audit_entry_append(
                    actor=actor if number % 4 else None,
                    event=EVENTS[number % len(EVENTS)],
                    target=actor if number % 2 else None,
                    case_id=CASES[number % len(CASES)],
                    before={"step": number - 1},
                    after={"step": number},
                    details={"reason": text_digest(f"step {number} of the test chain")},
                )
            )
    return entries


def sql(statement: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def tampering() -> Iterator[None]:
    """Let raw UPDATE and DELETE through on PostgreSQL (the trigger does not fire for a replica session)."""
    if connection.vendor != "postgresql":
        yield
        return
    sql("SET session_replication_role = replica")
    try:
        yield
    finally:
        sql("SET session_replication_role = DEFAULT")


def row(seq: int) -> dict[str, Any]:
    (values,) = sql(f"SELECT {', '.join(COLUMNS)} FROM {ENTRIES} WHERE seq = %s", [seq])
    return dict(zip(COLUMNS, values, strict=True))


def set_columns(seq: int, /, **values: Any) -> None:
    assignments = ", ".join(f"{name} = %s" for name in values)
    with tampering():
        sql(f"UPDATE {ENTRIES} SET {assignments} WHERE seq = %s", [*values.values(), seq])


def delete_entries(*seqs: int) -> None:
    with tampering():
        for seq in seqs:
            sql(f"DELETE FROM {ENTRIES} WHERE seq = %s", [seq])


def insert_row(values: dict[str, Any]) -> None:
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    sql(f"INSERT INTO {ENTRIES} ({names}) VALUES ({marks})", list(values.values()))


def move(seq: int, to: int) -> None:
    set_columns(seq, seq=to)


def swap_positions(first: int, second: int) -> None:
    """Swap two entries' sequence numbers through a temporary one: each row keeps its own content."""
    move(first, -1)
    move(second, first)
    move(-1, second)


def swap_contents(first: int, second: int) -> None:
    """Swap everything but the sequence numbers (the unique hashes pass through placeholders)."""
    one, other = row(first), row(second)
    content = [name for name in COLUMNS if name != "seq"]
    set_columns(first, prev_hash="swap-prev", entry_hash="swap-hash")
    set_columns(second, **{name: one[name] for name in content})
    set_columns(first, **{name: other[name] for name in content})


def shift_up(from_seq: int, by: int = 1) -> None:
    """Renumber entries from `from_seq` on by `by`, through a far range (seq is the primary key)."""
    far = 1_000_000
    with tampering():
        sql(f"UPDATE {ENTRIES} SET seq = seq + %s WHERE seq >= %s", [far, from_seq])
        sql(f"UPDATE {ENTRIES} SET seq = seq - %s WHERE seq >= %s", [far - by, from_seq + far])


def forged(*, seq: int, prev_hash: str, key_id: str, case_id: int | None = 101) -> dict[str, Any]:
    """A row as a forger without the key writes it: well-formed, hashed, but MACed with a guessed key."""
    now = timezone.now()
    entry_json = canonical_json(
        {
            "at": now,
            "actor": None,
            "object": None,
            "before": {"state": "in_progress"},
            "after": {"state": "closed"},
            "details": None,
        }
    )
    body = seal_body(seq=seq, prev_hash=prev_hash, case_id=case_id, event="case.close", entry_json=entry_json)
    digest = hash_body(body)
    return {
        "seq": seq,
        "recorded_at": now,
        "event": "case.close",
        "case_id": case_id,
        "object_type": "",
        "object_id": "",
        "actor_id": None,
        "body": body,
        "prev_hash": prev_hash,
        "entry_hash": digest,
        "key_id": key_id,
        "mac": entry_mac(b"a guess at the portal's key", digest),
    }


def drop_unique_hash_constraints() -> None:
    """Remove the uniqueness of prev_hash and entry_hash, so that an exact copy of a row fits in.

    PostgreSQL drops the constraints; SQLite cannot, so the table is rebuilt without them (both roll back
    with the test).
    """
    if connection.vendor == "postgresql":
        names = sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'", [ENTRIES]
        )
        for (name,) in names:
            sql(f'ALTER TABLE {ENTRIES} DROP CONSTRAINT "{name}"')
        return
    sql(f"CREATE TABLE audit_copy AS SELECT * FROM {ENTRIES}")
    sql(f"DROP TABLE {ENTRIES}")
    sql(f"ALTER TABLE audit_copy RENAME TO {ENTRIES}")


def head() -> tuple[int, str, str, str]:
    (values,) = sql(f"SELECT seq, last_hash, key_id, mac FROM {HEAD}")
    return values


def set_head(**values: Any) -> None:
    assignments = ", ".join(f"{name} = %s" for name in values)
    sql(f"UPDATE {HEAD} SET {assignments}", list(values.values()))


def truncate_everything() -> None:
    """Entries and head gone, as TRUNCATE (which the trigger does not block) or DELETE would leave them."""
    with tampering():
        sql(f"DELETE FROM {ENTRIES}")
        sql(f"DELETE FROM {HEAD}")
