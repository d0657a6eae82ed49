"""Sending a delivery: one attempt at a time, each logged, retried with exponential backoff, given up after
HANDOFF_MAX_ATTEMPTS; and the email to the owning team's lead when a delivery is given up.

The background task (`handoffs.tasks.deliver_handoff`) calls `delivery_attempt` with the delivery id and the
number of the attempt it was sent for. Safe against duplicates and lost workers:

- an attempt already made (the number is behind the log), a delivery already delivered or given up: nothing
  is sent again;
- while a POST is in flight its delivery is *claimed* (`sending_since`, for at most `claim_seconds()`): a copy
  of the task that arrives meanwhile waits for the claim to end instead of sending too;
- the claim and the record of an attempt are two short transactions, so no row is locked while the receiver
  answers (a receiver that calls back before it answers is not blocked); a worker that dies mid-POST leaves
  its claim to expire and its redelivered task (acks_late) to try again, under the same idempotency key.
"""

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from cases.errors import CaseWorkflowError
from cases.models import SETTLED_STATES, ActionStatus
from cases.services import action_item_set_status, comment_add
from handoffs import signing
from handoffs.models import Delivery, DeliveryAttempt, DeliveryStatus
from handoffs.notifications import delivery_failed_send
from handoffs.transport import PostResult, post_json, url_refusal
from portal.roles import handoffs_user

logger = logging.getLogger(__name__)

# Half of Redis' default one-hour visibility timeout: a longer countdown would be redelivered early.
MAX_BACKOFF_SECONDS = 1800
# Answers worth trying again later: the receiver is busy, rate-limiting or timed out; any other 3xx or 4xx
# will not change by itself (a wrong URL, a refused signature), so the delivery fails at once.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
# A pending delivery whose next attempt is this late has lost its task message.
STALLED_AFTER = timedelta(minutes=15)


class Step:
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    BUSY = "busy"


@dataclass(frozen=True)
class AttemptOutcome:
    step: str
    # For RETRY and BUSY: when to run again, and the attempt number to run then.
    retry_in: int | None = None
    next_number: int | None = None


def backoff_seconds(failed_attempts: int) -> int:
    """The wait after the n-th failed attempt: base * 2**(n-1) (base, 2 base, 4 base, ...), capped."""
    return int(min(settings.HANDOFF_RETRY_BASE_SECONDS * 2 ** (failed_attempts - 1), MAX_BACKOFF_SECONDS))


def claim_seconds() -> int:
    return settings.HANDOFF_TIMEOUT_SECONDS + 60


def is_retryable(result: PostResult) -> bool:
    if result.status_code is None:
        return result.error_class != "Refused"
    return result.status_code >= 500 or result.status_code in RETRYABLE_CLIENT_ERRORS


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    number: int
    url: str
    body: bytes
    key: str = field(repr=False)  # never in a log line or a traceback's locals summary
    idempotency_key: str = ""
    refusal: str = ""


def payload_bytes(payload: object) -> bytes:
    """The body as sent: canonical JSON, the same bytes on every attempt (only the timestamp changes)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def delivery_attempt(*, delivery_id: int, number: int) -> AttemptOutcome:
    """Make attempt `number` of a delivery, if it is still due; record it; say what comes next."""
    claim = _claim(delivery_id=delivery_id, number=number)
    if isinstance(claim, AttemptOutcome):
        return claim
    if claim.refusal:
        result = PostResult(
            status_code=None, duration_ms=0, error_class="Refused", error_message=claim.refusal
        )
    else:
        timestamp = signing.timestamp_now()
        result = post_json(
            url=claim.url,
            body=claim.body,
            headers={
                signing.HEADER_TIMESTAMP: timestamp,
                signing.HEADER_IDEMPOTENCY_KEY: claim.idempotency_key,
                signing.HEADER_SIGNATURE: signing.signature(
                    key=claim.key, timestamp=timestamp, body=claim.body
                ),
                "X-Portal-Attempt": str(claim.number),
            },
            timeout=settings.HANDOFF_TIMEOUT_SECONDS,
        )
    outcome = _record(claim, result)
    logger.info(
        "Hand-off delivery %s attempt %s: %s (%s) -> %s",
        delivery_id,
        claim.number,
        result.status_code if result.status_code is not None else result.error_class,
        f"{result.duration_ms} ms",
        outcome.step,
    )
    if outcome.step == Step.FAILED:
        delivery_failure_notify(delivery_id=delivery_id)
    return outcome


@transaction.atomic
def _claim(*, delivery_id: int, number: int) -> _Claim | AttemptOutcome:
    delivery = (
        Delivery.objects.select_for_update(of=("self",))
        .select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return AttemptOutcome(Step.SKIPPED)
    if delivery.attempts >= number:
        # This attempt was made (a duplicate or redelivered message); whatever comes next is scheduled.
        return AttemptOutcome(Step.SKIPPED)
    now = timezone.now()
    if delivery.sending_since is not None:
        held_for = (now - delivery.sending_since).total_seconds()
        if held_for < claim_seconds():
            return AttemptOutcome(Step.BUSY, retry_in=int(claim_seconds() - held_for) + 1, next_number=number)
    if delivery.outcome:
        # The receiver already called back about it: it has the hand-off.
        _mark_delivered(delivery, now=now, reason="the receiver called back before its answer was recorded")
        return AttemptOutcome(Step.SKIPPED)
    # Not a history row: the claim is bookkeeping; the attempt log says what happened.
    Delivery.objects.filter(pk=delivery.pk).update(sending_since=now)
    endpoint = delivery.endpoint
    refusal = ""
    if not endpoint.is_active:
        refusal = f"The endpoint {endpoint.name} was deactivated; nothing was sent."
    elif problem := url_refusal(endpoint.url):
        refusal = problem
    return _Claim(
        delivery_id=delivery.pk,
        number=delivery.attempts + 1,
        url=endpoint.url,
        body=payload_bytes(delivery.payload),
        key=signing.endpoint_key(endpoint_id=endpoint.pk, key_version=endpoint.key_version),
        idempotency_key=str(delivery.idempotency_key),
        refusal=refusal,
    )


def _mark_delivered(delivery: Delivery, *, now: datetime, reason: str) -> None:
    delivery.status = DeliveryStatus.DELIVERED
    delivery.delivered_at = now
    delivery.next_attempt_at = None
    delivery.sending_since = None
    delivery._history_user = handoffs_user()  # type: ignore[attr-defined]
    delivery._change_reason = reason  # type: ignore[attr-defined]
    delivery.save()


@transaction.atomic
def _record(claim: _Claim, result: PostResult) -> AttemptOutcome:
    delivery = Delivery.objects.select_for_update().get(pk=claim.delivery_id)
    now = timezone.now()
    delivered = result.succeeded or bool(delivery.outcome)
    last_allowed = claim.number >= settings.HANDOFF_MAX_ATTEMPTS
    retry_in = (
        None if delivered or last_allowed or not is_retryable(result) else backoff_seconds(claim.number)
    )
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=claim.number,
        started_at=now - timedelta(milliseconds=result.duration_ms),
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        succeeded=result.succeeded,
        error_class=result.error_class,
        error_message=result.error_message,
        retry_in_seconds=retry_in,
    )
    delivery.attempts = claim.number
    delivery.sending_since = None
    if delivery.status != DeliveryStatus.PENDING:
        delivery.save(update_fields=["attempts", "sending_since"])
        return AttemptOutcome(Step.SKIPPED)
    if delivered:
        _mark_delivered(delivery, now=now, reason=f"delivered on attempt {claim.number}")
        return AttemptOutcome(Step.DELIVERED)
    delivery._history_user = handoffs_user()  # type: ignore[attr-defined]
    if retry_in is not None:
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
        delivery._change_reason = f"attempt {claim.number} failed; next in {retry_in} s"  # type: ignore[attr-defined]
        delivery.save()
        return AttemptOutcome(Step.RETRY, retry_in=retry_in, next_number=claim.number + 1)
    delivery.status = DeliveryStatus.FAILED
    delivery.failed_at = now
    delivery.next_attempt_at = None
    why = "the last allowed attempt" if last_allowed else "a failure that will not change by retrying"
    delivery._change_reason = f"gave up after attempt {claim.number}: {why}"  # type: ignore[attr-defined]
    delivery.save()
    return AttemptOutcome(Step.FAILED)


# --- The sweep: lost messages, untold failures -------------------------------------------------------------


@transaction.atomic
def deliveries_stalled() -> list[tuple[int, int]]:
    """Pending deliveries whose next attempt is long overdue (its message was lost: the broker was down at
    dispatch, or dropped it), as (delivery id, attempt number to send); their due time moves to now, so the
    next sweep does not send them again."""
    now = timezone.now()
    rows = list(
        Delivery.objects.select_for_update(of=("self",))
        .filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=now - STALLED_AFTER)
        .values_list("pk", "attempts")
    )
    Delivery.objects.filter(pk__in=[pk for pk, _ in rows]).update(next_attempt_at=now)
    return [(pk, attempts + 1) for pk, attempts in rows]


def failures_unnotified() -> list[int]:
    return list(
        Delivery.objects.filter(status=DeliveryStatus.FAILED, failure_notified_at__isnull=True).values_list(
            "pk", flat=True
        )
    )


# --- Giving up: the case and the team lead are told ---------------------------------------------------------


@transaction.atomic
def delivery_failure_notify(*, delivery_id: int) -> bool:
    """Tell the case (comment; the action item goes back to open) and the team lead that a delivery failed.

    Once per delivery (`failure_notified_at`, set in the same transaction as the email is sent): a task run
    twice sends one email; a failed send leaves it for the sweep (`handoffs.tasks.handoff_sweep`).
    """
    delivery = (
        Delivery.objects.select_for_update(of=("self",))
        .select_related("endpoint", "action_item__case", "action_item__owning_team__lead")
        .filter(pk=delivery_id)
        .first()
    )
    if (
        delivery is None
        or delivery.status != DeliveryStatus.FAILED
        or delivery.failure_notified_at is not None
    ):
        return False
    item = delivery.action_item
    portal = handoffs_user()
    last = delivery.attempt_log.order_by("-number").first()
    why = _attempt_summary(last)
    try:
        # A savepoint: if the case was closed meanwhile, the comment and status are skipped, the email is not.
        with transaction.atomic():
            reopened = item.status == ActionStatus.IN_PROGRESS and item.case.state not in SETTLED_STATES
            if reopened:
                action_item_set_status(actor=portal, action_item_id=item.pk, status=ActionStatus.OPEN)
            comment_add(
                actor=portal,
                case_id=item.case_id,
                body=(
                    f'Hand-off of {item.get_kind_display().lower()} "{item.title}" to '
                    f"{delivery.endpoint.name} failed after {delivery.attempts} attempt(s) ({why})."
                    + (" The action item is open again." if reopened else "")
                    + " Fix the endpoint or the receiver, then hand it off again."
                ),
            )
    except (CaseWorkflowError, ValidationError, PermissionDenied) as error:
        logger.warning("Hand-off delivery %s failed; the case was not updated: %s", delivery_id, error)
    sent = delivery_failed_send(delivery, why=why)
    Delivery.objects.filter(pk=delivery.pk).update(failure_notified_at=timezone.now())
    return sent


def _attempt_summary(attempt: DeliveryAttempt | None) -> str:
    if attempt is None:
        return "no attempt recorded"
    if attempt.status_code is not None:
        return f"last answer: HTTP {attempt.status_code}"
    return f"last error: {attempt.error_class}: {attempt.error_message}"
