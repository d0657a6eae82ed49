from celery import shared_task

from audit.models import VerificationTrigger
from audit.services import audit_trail_verify


@shared_task(acks_late=True)
def verify_audit_trail() -> int:
    """Walk the whole chain and record the result; idempotent (a second run records a second check)."""
    return audit_trail_verify(trigger=VerificationTrigger.SCHEDULE).pk
