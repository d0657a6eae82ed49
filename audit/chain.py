"""The chain's arithmetic: how an entry is sealed, and the walk that checks a run of entries.

Kept free of the ORM so that the walk can be fed from a database cursor, and so that the rules are written
once: the standalone bundle verifier (audit/bundle_verifier/verify_bundle.py) repeats the hashing half of
them in plain Python, and tests hold the two to the same entries.
"""

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from audit.models import GENESIS_HASH

ProblemKind = Literal["changed", "missing", "inserted", "reordered", "unknown-key", "head"]


class Row(NamedTuple):
    seq: int
    prev_hash: str
    case_id: int | None
    event: str
    body: str
    entry_hash: str
    key_id: str
    mac: str
    actor_id: int | None
    object_type: str
    object_id: str


ROW_COLUMNS = (
    "seq",
    "prev_hash",
    "case_id",
    "event",
    "body",
    "entry_hash",
    "key_id",
    "mac",
    "actor_id",
    "object_type",
    "object_id",
)


def body_prefix(*, seq: int, prev_hash: str, case_id: int | None, event: str) -> str:
    case = "null" if case_id is None else str(case_id)
    return f'{{"seq":{seq},"prev":"{prev_hash}","case":{case},"event":"{event}","entry":'


def seal_body(*, seq: int, prev_hash: str, case_id: int | None, event: str, entry_json: str) -> str:
    return body_prefix(seq=seq, prev_hash=prev_hash, case_id=case_id, event=event) + entry_json + "}"


def hash_body(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def entry_mac(key: bytes, entry_hash: str) -> str:
    return hmac.new(key, entry_hash.encode("ascii"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, *, seq: int, last_hash: str) -> str:
    return hmac.new(key, f"head\n{seq}\n{last_hash}".encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    seq: int
    message: str


@dataclass(frozen=True)
class WalkResult:
    entries_checked: int
    last_seq: int
    last_hash: str
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class HeadState:
    seq: int
    last_hash: str
    key_id: str
    mac: str


class ChainLookups:
    """What diagnosing a problem needs beyond the sequential walk; only called once a problem is found."""

    def __init__(
        self,
        *,
        row_after: Callable[[int], Row | None],
        row_with_prev: Callable[[str], Row | None],
        head: Callable[[], HeadState | None],
    ) -> None:
        self.row_after = row_after
        self.row_with_prev = row_with_prev
        self.head = head


def _sealing_key_id(row: Row, keys: Mapping[str, bytes]) -> str | None:
    """The id of the held key whose MAC the row carries (its own key id first), or None if none does.

    None also when the body no longer hashes to entry_hash: then nothing the portal sealed is left.
    """
    if hash_body(row.body) != row.entry_hash:
        return None
    candidates = ([row.key_id] if row.key_id in keys else []) + [k for k in keys if k != row.key_id]
    for key_id in candidates:
        if hmac.compare_digest(entry_mac(keys[key_id], row.entry_hash), row.mac):
            return key_id
    return None


def _sealed(row: Row, keys: Mapping[str, bytes]) -> bool:
    return _sealing_key_id(row, keys) == row.key_id


def _parsed(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _claims(row: Row) -> tuple[int | None, str | None]:
    """The sequence number and predecessor the sealed body states (None where it cannot be read)."""
    parsed = _parsed(row.body)
    seq, prev = parsed.get("seq"), parsed.get("prev")
    return (seq if isinstance(seq, int) else None), (prev if isinstance(prev, str) else None)


def _column_disagreements(row: Row, *, expected: int, last_hash: str) -> list[str]:
    """The lookup columns of a sealed row that disagree with its body (or with where the walk found it).

    `expected` and `last_hash` stand in for the body's own position and predecessor, which the caller has
    checked against them.
    """
    parsed = _parsed(row.body)
    entry = parsed.get("entry")
    entry = entry if isinstance(entry, dict) else {}
    actor = entry.get("actor")
    target = entry.get("object")
    sealed_object = (target.get("type"), target.get("id")) if isinstance(target, dict) else ("", "")
    sealed = {
        "seq": expected,
        "prev_hash": last_hash,
        "case_id": parsed.get("case"),
        "event": parsed.get("event"),
        "actor_id": actor.get("id") if isinstance(actor, dict) else None,
        "object_type": sealed_object[0],
        "object_id": sealed_object[1],
    }
    return [name for name, value in sealed.items() if getattr(row, name) != value]


def _in_place(row: Row, *, expected: int, last_hash: str, keys: Mapping[str, bytes]) -> bool:
    """The exact check the walk's fast path approximates: sealed, in place, and every column agreeing.

    The fast path compares text, which differs from the body's JSON only when a value needs escaping (an
    object id holding a quote, say); such an entry is intact, and this tells it from a changed one.
    """
    return (
        row.seq == expected
        and _sealed(row, keys)
        and _claims(row) == (expected, last_hash)
        and not _column_disagreements(row, expected=expected, last_hash=last_hash)
    )


def walk(
    rows: Iterable[Row],
    *,
    keys: Mapping[str, bytes],
    lookups: ChainLookups,
    start_seq: int = 0,
    start_hash: str = GENESIS_HASH,
    check_head: bool = True,
) -> WalkResult:
    """Check rows in seq order from (start_seq, start_hash); stop at the first problem and name it.

    The fast path compares each row's columns with its body as text, without parsing it: the prefix holds
    seq, prev, case and event, and the entry's keys are sorted, so "actor" comes first and "object" last.
    """
    expected = start_seq + 1
    last_hash = start_hash
    checked = 0
    sha256 = hashlib.sha256
    new_mac = hmac.new
    compare = hmac.compare_digest
    for row in rows:
        seq, prev_column, case_id, event, body, stored_hash, key_id, mac, actor_id, object_type, object_id = (
            row
        )
        key = keys.get(key_id)
        case = "null" if case_id is None else str(case_id)
        actor = '{"actor":null,' if actor_id is None else f'{{"actor":{{"id":{actor_id},'
        if (
            seq == expected
            and prev_column == last_hash
            and key is not None
            and body.startswith(
                f'{{"seq":{seq},"prev":"{last_hash}","case":{case},"event":"{event}","entry":{actor}'
            )
            and body.endswith(
                '"object":null}}'
                if not object_type and not object_id
                else f'"object":{{"id":"{object_id}","type":"{object_type}"}}}}}}'
            )
            and sha256(body.encode("utf-8")).hexdigest() == stored_hash
            and compare(new_mac(key, stored_hash.encode("ascii"), sha256).hexdigest(), mac)
        ) or _in_place(row, expected=expected, last_hash=last_hash, keys=keys):
            last_hash = stored_hash
            expected += 1
            checked += 1
            continue
        found = _diagnose(row, expected=expected, last_hash=last_hash, keys=keys, lookups=lookups)
        return WalkResult(checked, expected - 1, last_hash, found)
    at_end = _check_end(expected - 1, last_hash, keys=keys, lookups=lookups) if check_head else None
    return WalkResult(checked, expected - 1, last_hash, at_end)


def _missing(first: int, last: int) -> str:
    return f"Entry #{first} is" if first == last else f"Entries #{first} to #{last} are"


def _follows(seq: int) -> str:
    return "is the chain's first" if seq == 0 else f"follows #{seq} directly"


def _diagnose(
    row: Row, *, expected: int, last_hash: str, keys: Mapping[str, bytes], lookups: ChainLookups
) -> Problem:
    sealing_key = _sealing_key_id(row, keys)
    if sealing_key is None and row.key_id not in keys:
        return Problem(
            "unknown-key",
            row.seq,
            f"Entry at position {row.seq} is sealed with key id {row.key_id!r}, which this portal does not "
            "hold: it was inserted, or a retired key is missing from AUDIT_CHAIN_RETIRED_KEYS.",
        )
    if sealing_key is None:
        return _diagnose_unsealed(row, expected=expected, last_hash=last_hash, lookups=lookups)
    # Sealed by the portal. A key_id column naming another key than the one that sealed it was changed;
    # judge the rest of the row as it was sealed.
    key_changed = sealing_key != row.key_id
    return _diagnose_misplaced(
        row._replace(key_id=sealing_key),
        expected=expected,
        last_hash=last_hash,
        keys=keys,
        lookups=lookups,
        also_changed=["key_id"] if key_changed else [],
    )


def _diagnose_unsealed(row: Row, *, expected: int, last_hash: str, lookups: ChainLookups) -> Problem:
    """Not sealed by the portal: a changed entry, or one that was never part of the chain."""
    following = lookups.row_after(row.seq)
    following_prev = _claims(following)[1] if following is not None else None
    if following is not None and following_prev == last_hash:
        return Problem(
            "inserted",
            row.seq,
            f"Entry at position {row.seq} was inserted: it is not sealed by the portal, and the entry "
            f"after it {_follows(expected - 1)}.",
        )
    if following is None:
        head = lookups.head()
        if head is not None and head.seq == expected - 1 and head.last_hash == last_hash:
            return Problem(
                "inserted",
                row.seq,
                f"Entry at position {row.seq} was inserted after the end of the chain (#{expected - 1}); "
                "it is not sealed by the portal.",
            )
    return Problem(
        "changed",
        row.seq,
        f"Entry #{row.seq} was changed: its content no longer matches its hash and MAC.",
    )


def _diagnose_misplaced(
    row: Row,
    *,
    expected: int,
    last_hash: str,
    keys: Mapping[str, bytes],
    lookups: ChainLookups,
    also_changed: list[str],
) -> Problem:
    """Sealed by the portal, but not where it belongs, or its lookup columns disagree with its body."""
    claimed_seq, claimed_prev = _claims(row)
    if claimed_seq == expected and claimed_prev == last_hash:
        columns = also_changed + _column_disagreements(row, expected=expected, last_hash=last_hash)
        named = ", ".join(columns)
        agree = "column no longer matches" if len(columns) == 1 else "columns no longer match"
        return Problem(
            "changed",
            expected,
            f"Entry #{expected} was changed: its {named} {agree} what the portal sealed.",
        )
    if claimed_seq is not None and claimed_seq < expected:
        return Problem(
            "inserted",
            row.seq,
            f"Entry at position {row.seq} is a copy of entry #{claimed_seq}, which the chain already holds "
            "earlier: it was inserted.",
        )
    successor = lookups.row_with_prev(last_hash)
    if (
        successor is not None
        and _sealing_key_id(successor, keys)
        and _claims(successor)
        == (
            expected,
            last_hash,
        )
    ):
        return Problem(
            "reordered",
            expected,
            f"The chain is out of order: entry #{expected} is stored at position {successor.seq}, and "
            f"position {row.seq} holds entry #{claimed_seq}.",
        )
    if claimed_seq is not None and claimed_seq > expected:
        where = f"follows #{expected - 1}" if expected > 1 else "starts the chain"
        return Problem(
            "missing",
            expected,
            f"{_missing(expected, claimed_seq - 1)} missing: entry #{claimed_seq} {where}.",
        )
    return Problem(
        "changed", row.seq, f"Entry at position {row.seq} does not follow #{expected - 1} and cannot be read."
    )


def _check_end(
    last_seq: int, last_hash: str, *, keys: Mapping[str, bytes], lookups: ChainLookups
) -> Problem | None:
    head = lookups.head()
    if head is None:
        if last_seq == 0:
            return None
        return Problem("head", last_seq, "The chain's head record is missing.")
    key = keys.get(head.key_id)
    if head.seq == 0 and not head.mac:
        sealed_head = head.last_hash == GENESIS_HASH
    else:
        sealed_head = key is not None and hmac.compare_digest(
            head_mac(key, seq=head.seq, last_hash=head.last_hash), head.mac
        )
    if not sealed_head:
        return Problem("head", last_seq, "The chain's head record was changed: its MAC does not match.")
    if head.seq > last_seq:
        return Problem(
            "missing",
            last_seq + 1,
            f"{_missing(last_seq + 1, head.seq)} missing from the end of the chain: it ends at #{last_seq}, "
            f"its head says #{head.seq}.",
        )
    if head.seq != last_seq or head.last_hash != last_hash:
        return Problem("head", last_seq, f"The chain ends at #{last_seq}, but its head says #{head.seq}.")
    return None


def entry_payload(body: str) -> dict[str, Any]:
    """The event part of a sealed body, for display (never used to verify)."""
    parsed = json.loads(body)
    entry = parsed.get("entry", {}) if isinstance(parsed, dict) else {}
    return entry if isinstance(entry, dict) else {}
