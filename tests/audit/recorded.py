"""What a block of code appended to the audit chain, read back from the sealed bodies."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import models

from audit.canonical import text_digest
from audit.models import AuditEntry, AuditHead


@dataclass(frozen=True)
class Recorded:
    """One entry as sealed: its lookup columns and the event inside its body."""

    seq: int
    event: str
    case_id: int | None
    object_type: str
    object_id: str
    actor_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None
    body: str

    def targets(self, row: models.Model) -> bool:
        return (self.object_type, self.object_id) == (row._meta.label_lower, str(row.pk))


def _recorded(entry: AuditEntry) -> Recorded:
    sealed = json.loads(entry.body)
    inner = sealed["entry"]
    # The columns are copies for lookups: the sealed body must say the same.
    assert (sealed["seq"], sealed["case"], sealed["event"]) == (entry.seq, entry.case_id, entry.event)
    actor = inner["actor"]
    assert (actor["id"] if actor else None) == entry.actor_id
    return Recorded(
        seq=entry.seq,
        event=entry.event,
        case_id=entry.case_id,
        object_type=entry.object_type,
        object_id=entry.object_id,
        actor_id=entry.actor_id,
        before=inner["before"],
        after=inner["after"],
        details=inner["details"],
        body=entry.body,
    )


def head_seq() -> int:
    head = AuditHead.objects.filter(pk=1).first()
    return head.seq if head is not None else 0


@contextmanager
def appended() -> Iterator[list[Recorded]]:
    """The entries appended inside the block, in order (filled in when the block ends)."""
    start = head_seq()
    found: list[Recorded] = []
    yield found
    found.extend(_recorded(entry) for entry in AuditEntry.objects.filter(seq__gt=start).order_by("seq"))


def only(entries: list[Recorded], event: str) -> Recorded:
    """The one entry of that event among those appended; fails if there is none or more than one."""
    matching = [entry for entry in entries if entry.event == event]
    assert len(matching) == 1, f"{event}: {[entry.event for entry in entries]}"
    return matching[0]


def events(entries: list[Recorded]) -> list[str]:
    return [entry.event for entry in entries]


@contextmanager
def chain_unchanged() -> Iterator[None]:
    """The block must leave the chain as it found it: same head, same number of entries."""
    head, count = head_seq(), AuditEntry.objects.count()
    yield
    assert (head_seq(), AuditEntry.objects.count()) == (head, count)


def digest(text: str) -> dict[str, Any]:
    """How the chain holds a free text (JSON round-trip of audit.canonical.text_digest)."""
    return json.loads(json.dumps(text_digest(text)))
