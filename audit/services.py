"""Writes to the audit trail: appending an entry (inside the caller's transaction) and recording a check.

Every service that changes something an investigation depends on (transitions, decisions, approvals,
evidence, mappings, owner answers, intake, hand-offs) calls `audit_entry_append` in its own transaction, so
the entry exists exactly when the change does.
"""

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.core.mail import mail_admins
from django.db import connection, models, transaction
from django.utils import timezone

from audit.canonical import canonical_json
from audit.chain import (
    ROW_COLUMNS,
    ChainLookups,
    HeadState,
    Problem,
    Row,
    WalkResult,
    entry_mac,
    hash_body,
    head_mac,
    seal_body,
    walk,
)
from audit.keys import chain_keys, current_chain_key
from audit.models import GENESIS_HASH, AuditEntry, AuditHead, AuditVerification, VerificationTrigger
from portal.permissions import Actor

logger = logging.getLogger(__name__)
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
WALK_BATCH = 2000


class AuditTrailMisuse(RuntimeError):
    """A programming error: an entry appended outside a transaction, or with a malformed event name."""


def _locked_head() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # First entry ever (or after a test flush): the row is created once; a concurrent creator loses
        # the insert, and both then queue on the same row lock.
        AuditHead.objects.get_or_create(pk=1)
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


def _actor_of(actor: Actor | None) -> dict[str, Any] | None:
    if actor is None or isinstance(actor, AnonymousUser):
        return None
    return {"id": actor.pk, "username": actor.get_username()}


def audit_entry_append(
    *,
    actor: Actor | None,
    event: str,
    target: models.Model | None = None,
    case_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Seal one event at the end of the chain. Must run inside the transaction of the change it records.

    The head row stays locked until that transaction ends, so entries are numbered in commit order and two
    writers can never name the same predecessor. Free text goes in as `text_digest(...)`, never verbatim.
    """
    if not connection.in_atomic_block:
        raise AuditTrailMisuse(f"audit entry {event!r} appended outside a transaction.")
    if not EVENT_NAME.match(event) or len(event) > 64:
        raise AuditTrailMisuse(f"{event!r} is not an audit event name (dotted lowercase words).")
    head = _locked_head()
    now = timezone.now()
    entry_json = canonical_json(
        {
            "at": now,
            "actor": _actor_of(actor),
            "object": (
                {"type": target._meta.label_lower, "id": str(target.pk)} if target is not None else None
            ),
            "before": dict(before) if before is not None else None,
            "after": dict(after) if after is not None else None,
            "details": dict(details) if details is not None else None,
        }
    )
    seq = head.seq + 1
    body = seal_body(seq=seq, prev_hash=head.last_hash, case_id=case_id, event=event, entry_json=entry_json)
    key_id, key = current_chain_key()
    digest = hash_body(body)
    actor_facts = _actor_of(actor)
    entry = AuditEntry(
        seq=seq,
        recorded_at=now,
        event=event,
        case_id=case_id,
        object_type=target._meta.label_lower if target is not None else "",
        object_id=str(target.pk) if target is not None else "",
        actor_id=actor_facts["id"] if actor_facts is not None else None,
        body=body,
        prev_hash=head.last_hash,
        entry_hash=digest,
        key_id=key_id,
        mac=entry_mac(key, digest),
    )
    entry.save()
    AuditHead.objects.filter(pk=1).update(
        seq=seq, last_hash=digest, key_id=key_id, mac=head_mac(key, seq=seq, last_hash=digest)
    )
    return entry


# --- Verification -------------------------------------------------------------------------------------------


def _as_row(values: tuple[Any, ...]) -> Row:
    return Row(*values)


def _rows_from(start_seq: int) -> Iterator[Row]:
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in ROW_COLUMNS)
    # A walk from the start reads every row, so one planted at position 0 or below is seen too.
    where, params = ("WHERE seq > %s ", [start_seq]) if start_seq > 0 else ("", [])
    # Pages of WALK_BATCH rows, each read by its own query after the last seq seen: memory stays flat
    # however long the chain, and the connection is free between pages for the lookups that name a
    # problem. Not a server-side cursor: outside a transaction PostgreSQL declares it WITH HOLD and copies
    # the whole result before the first row (fetching 1,000,000 entries took 5-9 s that way, 2-3 s in
    # pages; bench/audit_chain.py). The pages share one snapshot (audit_chain_walk).
    while True:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table} {where}ORDER BY seq LIMIT {WALK_BATCH}", params)
            batch = cursor.fetchall()
        count, last_seq = len(batch), batch[-1][0] if batch else start_seq
        for values in batch:
            yield Row(*values)
        del batch  # before the next page is read, so only one is held at a time
        if count < WALK_BATCH:
            return
        where, params = "WHERE seq > %s ", [last_seq]


def _one_row(queryset: models.QuerySet[AuditEntry]) -> Row | None:
    values = queryset.values_list(*ROW_COLUMNS).first()
    return _as_row(values) if values is not None else None


def _head_state() -> HeadState | None:
    head = AuditHead.objects.filter(pk=1).first()
    if head is None:
        return None
    return HeadState(seq=head.seq, last_hash=head.last_hash, key_id=head.key_id, mac=head.mac)


def chain_lookups() -> ChainLookups:
    return ChainLookups(
        row_after=lambda seq: _one_row(AuditEntry.objects.filter(seq__gt=seq).order_by("seq")),
        row_with_prev=lambda prev: _one_row(AuditEntry.objects.filter(prev_hash=prev)),
        head=_head_state,
    )


def audit_chain_walk(*, start_seq: int = 0, start_hash: str = GENESIS_HASH) -> WalkResult:
    """Walk the stored chain from a checkpoint (the start by default) to its head. Writes nothing.

    The pages, the lookups and the head are read in one snapshot: read one after the other while others
    append, the head would be newer than the last page and the entries in between look deleted.
    """

    def run() -> WalkResult:
        return walk(
            _rows_from(start_seq),
            keys=chain_keys(),
            lookups=chain_lookups(),
            start_seq=start_seq,
            start_hash=start_hash,
        )

    if connection.in_atomic_block:
        return run()  # the caller's transaction decides what is seen
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # SQLite (WAL): a read transaction keeps the snapshot of its first read until it ends.
        return run()


# Who asked is recorded for these; a check from the command line or the schedule has no person behind it.
_PERSONAL_TRIGGERS = (VerificationTrigger.ADMIN, VerificationTrigger.API)


def _require_verifier(actor: Actor | None, trigger: str) -> User | None:
    if actor is None:
        if trigger in _PERSONAL_TRIGGERS:
            raise PermissionDenied(
                "A verification from the admin or the API needs the person who asked for it."
            )
        return None
    if isinstance(actor, AnonymousUser) or not actor.is_active:
        raise PermissionDenied("You must be signed in with an active account to verify the audit trail.")
    if not actor.has_perm("audit.view_auditentry"):
        raise PermissionDenied(
            f"{actor} may not verify the audit trail: the permission 'audit.view_auditentry' is missing."
        )
    return actor


def _against_earlier_checks(result: WalkResult) -> Problem | None:
    """What an intact walk cannot see alone: a chain shorter than, or different from, one found earlier.

    Every verification recorded the last entry it found intact and its hash. The chain only grows, so the
    furthest such record must still be there, unchanged: a chain truncated wholesale (head and all) ends
    before it, and a chain rebuilt from scratch (which needs the key) holds another entry at its place.
    """
    furthest = AuditVerification.objects.filter(last_seq__gt=0).order_by("-last_seq", "-pk").first()
    if furthest is None:
        return None
    checked_on = f"{furthest.started_at:%Y-%m-%d %H:%M} UTC"
    if furthest.last_seq > result.last_seq:
        first_missing = result.last_seq + 1
        missing = (
            f"Entry #{first_missing} is"
            if first_missing == furthest.last_seq
            else f"Entries #{first_missing} to #{furthest.last_seq} are"
        )
        return Problem(
            "missing",
            first_missing,
            f"{missing} missing: the verification of {checked_on} found the chain intact up to "
            f"#{furthest.last_seq}.",
        )
    stored = AuditEntry.objects.filter(seq=furthest.last_seq).values_list("entry_hash", flat=True).first()
    if stored != furthest.last_hash:
        return Problem(
            "changed",
            furthest.last_seq,
            f"Entry #{furthest.last_seq} is not the entry the verification of {checked_on} found there: the "
            "chain up to it was rebuilt since, with the portal's key.",
        )
    return None


def audit_trail_verify(*, trigger: str, actor: Actor | None = None) -> AuditVerification:
    """Walk the whole chain and record what was found. The walk runs outside any transaction."""
    requested_by = _require_verifier(actor, trigger)
    started = timezone.now()
    result = audit_chain_walk()
    if result.problem is None and (earlier := _against_earlier_checks(result)) is not None:
        # A rebuilt chain proves none of its entries: recording its end as intact would make it the
        # reference for the next check, and the alarm would clear itself.
        intact_seq, intact_hash = (
            (result.last_seq, result.last_hash) if earlier.kind == "missing" else (0, GENESIS_HASH)
        )
        result = WalkResult(result.entries_checked, intact_seq, intact_hash, earlier)
    problem = result.problem
    if problem is None:
        return _record(started, trigger, requested_by, result, "", None, "")
    verification = _record(started, trigger, requested_by, result, problem.kind, problem.seq, problem.message)
    _alert(verification)
    return verification


def _alert(verification: AuditVerification) -> None:
    """A broken chain must reach a person even when nobody looks at the admin: log it and email ADMINS."""
    summary = (
        f"Audit trail NOT intact ({verification.problem_kind}) at the {verification.get_trigger_display()} "
        f"verification of {verification.started_at:%Y-%m-%d %H:%M} UTC: {verification.message} "
        f"Entries #1 to #{verification.last_seq} are intact."
    )
    logger.error("%s", summary)
    mail_admins("Audit trail NOT intact", summary, fail_silently=True)


@transaction.atomic
def _record(
    started: Any,
    trigger: str,
    requested_by: User | None,
    result: WalkResult,
    kind: str,
    problem_seq: int | None,
    message: str,
) -> AuditVerification:
    return AuditVerification.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        trigger=trigger,
        requested_by=requested_by,
        ok=not kind,
        entries_checked=result.entries_checked,
        last_seq=result.last_seq,
        last_hash=result.last_hash,
        problem_kind=kind,
        problem_seq=problem_seq,
        message=message,
    )
