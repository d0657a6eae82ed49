"""Background work for secrets findings. Tasks take ids (JSON-serialisable) and are safe to run twice."""

from __future__ import annotations

from celery import shared_task

from findings.notifications import owner_digest_send


@shared_task(acks_late=True)
def notify_owners(exposure_ids: list[int]) -> int:
    """Email the owners of these exposures their answer links; returns the number of emails sent.

    Safe to redeliver: an owner who already holds a live, unused link for an exposure gets no second one.
    Dispatch it once the import has committed: `notify_owners.delay_on_commit(exposure_ids)`.
    """
    return owner_digest_send(exposure_ids=exposure_ids)
