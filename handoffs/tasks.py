"""Background work for hand-offs. Tasks take ids and attempt numbers only (never a payload, key or signature)
and are safe to run twice: see `handoffs.sending`."""

from __future__ import annotations

from celery import Task, shared_task

from handoffs.sending import (
    Step,
    deliveries_stalled,
    delivery_attempt,
    delivery_failure_notify,
    failures_unnotified,
)


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_handoff(self: Task, delivery_id: int, number: int = 1) -> str:
    """Attempt `number` of a delivery; on a retryable failure, schedule the next one with backoff.

    Dispatched on commit by `handoffs.services.handoff_dispatch`; the give-up (after HANDOFF_MAX_ATTEMPTS, or
    an answer that retrying will not change) marks the delivery failed and emails the team lead.
    """
    outcome = delivery_attempt(delivery_id=delivery_id, number=number)
    if outcome.step == Step.BUSY and self.request.is_eager:
        # In-process there is no second worker to wait for: only a crashed run leaves a claim; the sweep
        # picks the delivery up once the claim has expired.
        return outcome.step
    if outcome.step in (Step.RETRY, Step.BUSY):
        raise self.retry(args=(delivery_id, outcome.next_number), countdown=outcome.retry_in)
    return outcome.step


@shared_task(acks_late=True)
def handoff_sweep() -> dict[str, int]:
    """Resend pending deliveries whose message was lost; tell the team leads of failures not yet told.

    Meant to run every few minutes (celery beat); harmless to run at any time or twice.
    """
    stalled = deliveries_stalled()
    for delivery_id, number in stalled:
        deliver_handoff.delay(delivery_id, number)
    notified = sum(
        1 for delivery_id in failures_unnotified() if delivery_failure_notify(delivery_id=delivery_id)
    )
    return {"resent": len(stalled), "failures_notified": notified}
