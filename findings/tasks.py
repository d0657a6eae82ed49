"""Background work for secrets findings. Tasks take ids (JSON-serialisable) and are safe to run twice."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from findings.notifications import owner_digest_send
from findings.reminders import owner_reminders_send


@shared_task(acks_late=True)
def notify_owners(exposure_ids: list[int]) -> int:
    """Email the owners of these exposures their answer links; returns the number of emails sent.

    Safe to redeliver: an owner who already holds a live, unused link for an exposure gets no second one.
    Dispatch it once the import has committed: `notify_owners.delay_on_commit(exposure_ids)`.
    """
    return owner_digest_send(exposure_ids=exposure_ids)


@shared_task(name="findings.tasks.remind_owners", acks_late=True)
def remind_owners(as_of: str | None = None) -> dict[str, int]:
    """The reminder sweep (`findings/reminders.py`), run by the beat; returns what it did, as counts.

    Safe to redeliver or to run twice: what a sweep sent, it recorded, and the next finds it not due.
    `as_of` (ISO 8601 date or date-time; without a zone, the portal's) runs the sweep as of that moment.
    """
    return owner_reminders_send(now=_moment(as_of)).as_dict()


def _moment(as_of: str | None) -> datetime | None:
    if as_of is None:
        return None
    moment = datetime.fromisoformat(as_of)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
