"""Reads of the audit trail."""

from django.db.models import QuerySet

from audit.models import GENESIS_HASH, AuditEntry, AuditVerification
from audit.services import audit_chain_walk
from portal.permissions import Actor, require_permission


def audit_last_verification() -> AuditVerification | None:
    return AuditVerification.objects.select_related("requested_by").first()


def audit_entry_list(*, user: Actor) -> QuerySet[AuditEntry]:
    """Every entry, in chain order: the trail is whole or not at all (no per-team scoping)."""
    require_permission(user, "audit.view_auditentry", to="read the audit trail")
    return AuditEntry.objects.order_by("seq")


def audit_verification_list(*, user: Actor) -> QuerySet[AuditVerification]:
    """Every recorded verification, latest first."""
    require_permission(user, "audit.view_auditverification", to="read the audit trail's verifications")
    return AuditVerification.objects.select_related("requested_by").order_by("-started_at", "-pk")


def audit_entries_for_case(*, user: Actor, case_id: int) -> QuerySet[AuditEntry]:
    require_permission(user, "audit.view_auditentry", to="read the audit trail")
    return AuditEntry.objects.filter(case_id=case_id).order_by("seq")


def audit_proven_through() -> int:
    """The last entry the chain proves: the last check's result, extended by walking what came after it.

    A check that found a problem proves nothing past it. Entries written since the last intact check are
    walked here from its checkpoint (its last hash), so new work counts without a full walk.
    """
    last = AuditVerification.objects.first()
    if last is not None and not last.ok:
        return last.last_seq
    start_seq, start_hash = (last.last_seq, last.last_hash) if last is not None else (0, GENESIS_HASH)
    result = audit_chain_walk(start_seq=start_seq, start_hash=start_hash)
    return result.last_seq
