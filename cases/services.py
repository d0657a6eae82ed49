"""Every write to a case and every transition: permission checks, row locks, history and the transition log.

Each function runs in one transaction. Transitions lock the case row (`select_for_update`, a no-op on
SQLite) and save through django-fsm's ConcurrentTransitionMixin, which adds `WHERE state = <loaded>` to the
UPDATE: whichever of two concurrent transitions comes second finds the state moved and changes nothing.
"""

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition

from audit.canonical import text_digest
from audit.services import audit_entry_append
from audit.values import audit_changes, audit_fields
from cases.errors import CaseWorkflowError, TransitionConflict, TransitionRefused
from cases.mapping import case_mappings_apply
from cases.models import (
    OPEN_STATES,
    SETTLED_STATES,
    ActionItem,
    ActionKind,
    ActionStatus,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    AttackPathStep,
    Case,
    CaseIdentity,
    CaseKind,
    CaseOrigin,
    CaseState,
    CaseTransition,
    Comment,
    DismissalReason,
    Evidence,
    EvidenceKind,
    Severity,
    transition_refusals,
)
from cases.priority import priority_for
from cases.selectors import case_is_visible, sees_all_cases
from cases.sla import case_escalation_notify, escalation_recipients_sentence, sla_due_at
from frameworks.models import Control
from nhi_inventory.models import NonHumanIdentity, Team
from nhi_inventory.selectors import nhi_list, team_ids_of
from portal.permissions import Actor, require_permission, signed_in

CASE_EDITABLE_FIELDS = frozenset({"title", "summary", "kind", "severity", "due_at"})
# What an edit can change, directly or by consequence (due date, priority, escalation watch): in the chain.
CASE_AUDITED_FIELDS = (
    "title",
    "summary",
    "kind",
    "severity",
    "due_at",
    "due_at_set_by_hand",
    "priority",
    "escalated_at",
    "escalation_notified_at",
)
ACTION_ITEM_AUDITED_FIELDS = (
    "kind",
    "title",
    "owning_team",
    "status",
    "external_reference",
    "requires_approval",
    "created_by",
)
ACTION_ITEM_STATUS_FIELDS = ("status", "completed_at", "external_reference")
MAX_RISK_ACCEPTANCE = timedelta(days=366)
EVIDENCE_CHUNK = 1024 * 1024


# --- Shared steps -------------------------------------------------------------------------------------------


def _lock_case(*, case_id: int, actor: Actor) -> Case:
    case = Case.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise ValidationError({"case": f"No case with id {case_id}."})
    if not case_is_visible(case=case, user=actor):
        raise PermissionDenied(f"{actor} may not act on {case.reference}: it belongs to another team.")
    return case


def _require_workable(case: Case, *, to: str) -> None:
    if case.state in SETTLED_STATES:
        raise CaseWorkflowError(
            f"{case.reference} is {case.get_state_display().lower()}; reopen it before you {to}."
        )


def _require_reason(reason: str, *, why: str) -> str:
    if not reason or not reason.strip():
        raise ValidationError({"reason": f"A reason is required {why}."})
    return reason.strip()


def _save_case(case: Case, *, actor: Actor, change_reason: str) -> None:
    case._history_user = actor  # type: ignore[attr-defined]
    case._change_reason = change_reason  # type: ignore[attr-defined]
    case.save()


def _set_case_facts(case: Case, **facts: bool) -> None:
    """Keep the report's per-case facts (see Case.has_evidence) in step; no history row of their own."""
    changed = {name: value for name, value in facts.items() if getattr(case, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(case, name, value)
        Case.objects.filter(pk=case.pk).update(**changed)


def _log_transition(case: Case, *, name: str, source: str, actor: User, reason: str) -> CaseTransition:
    logged = CaseTransition.objects.create(
        case=case,
        name=name,
        source_state=source,
        target_state=case.state,
        actor=actor,
        reason=reason,
        at=timezone.now(),
    )
    entry = audit_entry_append(
        actor=actor,
        event=f"case.{name}",
        target=case,
        case_id=case.pk,
        before={"state": source},
        after={"state": case.state},
        details={"transition": logged.pk, "reason": text_digest(reason)},
    )
    logged.audit_seq = entry.seq
    CaseTransition.objects.filter(pk=logged.pk).update(audit_seq=entry.seq)
    # The facts the report's traceability reads (cases.alignment): a reason at every step after opening,
    # and the chain entry of the latest step, up to which the chain must prove the case. One UPDATE, and
    # no history row of its own (as _set_case_facts).
    case.chain_seq = entry.seq
    if name != "open" and not reason:
        case.traceable = False
    Case.objects.filter(pk=case.pk).update(chain_seq=entry.seq, traceable=case.traceable)
    return logged


def _perform_transition(
    *,
    case_id: int,
    actor: Actor,
    name: str,
    reason: str,
    prepare: Callable[[Case], None] | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> Case:
    """Check, apply and record one transition on a locked row. Must run inside a transaction."""
    case = _lock_case(case_id=case_id, actor=actor)
    method = getattr(case, name)
    meta = method._django_fsm
    found = meta.get_transition(case.state)
    if found is None:
        raise TransitionConflict(
            f"{case.reference} is {case.get_state_display().lower()}: '{name}' is not possible from there "
            "(someone may have moved it in the meantime; reload the case)."
        )
    actor = signed_in(actor, to=f"{name.replace('_', ' ')} cases")
    if not found.has_perm(case, actor):
        raise PermissionDenied(
            f"{actor} may not {name.replace('_', ' ')} {case.reference}: the permission "
            f"{found.permission!r} is missing."
        )
    if prepare is not None:
        prepare(case)
    refusals = transition_refusals(case, name)
    if refusals:
        raise TransitionRefused(name, refusals)
    source = case.state
    method(**(arguments or {}))
    try:
        _save_case(case, actor=actor, change_reason=f"{name}: {reason}" if reason else name)
    except ConcurrentTransition:
        raise TransitionConflict(
            f"{case.reference} was changed by someone else while you were working on it; reload the case."
        ) from None
    _log_transition(case, name=name, source=source, actor=actor, reason=reason)
    return case


def _sla_clock_start(case: Case) -> datetime:
    """The SLA counts from the case's last opening: its reopen, or its creation."""
    reopened = case.transitions.filter(name="reopen").order_by("-at").values_list("at", flat=True).first()
    return reopened or case.created_at


def _watch_new_due_date(case: Case) -> None:
    """A case escalated for a due date that moved into the future is watched afresh for the new one."""
    if case.escalated_at is not None and case.due_at is not None and case.due_at > timezone.now():
        case.escalated_at = None
        case.escalation_notified_at = None


def _restart_sla_clock(case: Case) -> None:
    """A reopened case starts a new SLA period (unless its date was set by hand) and a new escalation."""
    if not case.due_at_set_by_hand:
        case.due_at = sla_due_at(severity=case.severity, start=timezone.now())
    case.escalated_at = None
    case.escalation_notified_at = None


def _linked_identity_ids(case: Case) -> list[int]:
    return sorted(CaseIdentity.objects.filter(case=case).values_list("nhi_id", flat=True))


def _recompute_priority(case: Case) -> bool:
    new = priority_for(severity=case.severity, identities=case.identities.all())
    if case.priority == new:
        return False
    case.priority = new
    return True


# --- Opening and editing -----------------------------------------------------------------------------------


@transaction.atomic
def case_open(
    *,
    actor: Actor,
    title: str,
    kind: str,
    severity: int = Severity.MEDIUM,
    summary: str = "",
    origin: str = CaseOrigin.MANUAL,
    identities: Iterable[NonHumanIdentity] = (),
    owning_team: Team | None = None,
    due_at: Any = None,
) -> Case:
    actor = require_permission(actor, "cases.add_case", to="open cases")
    case = Case(
        title=title.strip(),
        summary=summary,
        kind=kind,
        severity=severity,
        origin=origin,
        owning_team=owning_team,
        due_at=due_at if due_at is not None else sla_due_at(severity=severity, start=timezone.now()),
        due_at_set_by_hand=due_at is not None,
        opened_by=actor,
    )
    linked = list(identities)
    case.priority = priority_for(severity=severity, identities=linked)
    case.full_clean()
    _save_case(case, actor=actor, change_reason="opened")
    for identity in linked:
        link = CaseIdentity(case=case, nhi=identity)
        link._history_user = actor  # type: ignore[attr-defined]
        link.save()
    _log_transition(case, name="open", source="", actor=actor, reason=summary[:500])
    case_mappings_apply(case=case, actor=actor)
    return case


@transaction.atomic
def case_update(*, actor: Actor, case_id: int, changes: Mapping[str, Any], reason: str = "") -> Case:
    actor = require_permission(actor, "cases.change_case", to="edit cases")
    case = _lock_case(case_id=case_id, actor=actor)
    unknown = sorted(set(changes) - CASE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be edited; use a transition."))
    changed = [name for name, value in changes.items() if getattr(case, name) != value]
    if not changed:
        return case
    before = audit_fields(case, CASE_AUDITED_FIELDS)
    due_before = case.due_at
    for name in changed:
        setattr(case, name, changes[name])
    if "due_at" in changed:
        case.due_at_set_by_hand = case.due_at is not None
    if not case.due_at_set_by_hand and ("severity" in changed or "due_at" in changed):
        case.due_at = sla_due_at(severity=case.severity, start=_sla_clock_start(case))
    if case.due_at != due_before:
        _watch_new_due_date(case)
    _recompute_priority(case)
    case.full_clean()
    _save_case(case, actor=actor, change_reason=reason or f"edited {', '.join(changed)}")
    was, now = audit_changes(before, audit_fields(case, CASE_AUDITED_FIELDS))
    audit_entry_append(
        actor=actor,
        event="case.update",
        target=case,
        case_id=case.pk,
        before=was,
        after=now,
        details={"reason": text_digest(reason)},
    )
    if "kind" in changed:
        case_mappings_apply(case=case, actor=actor)
    return case


@transaction.atomic
def case_link_identity(*, actor: Actor, case_id: int, nhi_id: int) -> Case:
    actor = require_permission(actor, "cases.change_case", to="link identities to cases")
    case = _lock_case(case_id=case_id, actor=actor)
    _require_workable(case, to="link identities")
    identity = nhi_list(user=actor).filter(pk=nhi_id).first()
    if identity is None:
        raise ValidationError({"nhi": f"No identity with id {nhi_id} that you can see."})
    if not CaseIdentity.objects.filter(case=case, nhi=identity).exists():
        linked_before = _linked_identity_ids(case)
        priority_before = case.priority
        link = CaseIdentity(case=case, nhi=identity)
        link._history_user = actor  # type: ignore[attr-defined]
        link.save()
        if _recompute_priority(case):
            _save_case(case, actor=actor, change_reason=f"priority recomputed: linked {identity.name}")
        audit_entry_append(
            actor=actor,
            event="case.link_identity",
            target=case,
            case_id=case.pk,
            before={"identities": linked_before, "priority": priority_before},
            after={"identities": sorted([*linked_before, identity.pk]), "priority": case.priority},
            details={"nhi": identity.pk, "link": link.pk},
        )
        case_mappings_apply(case=case, actor=actor)
    return case


@transaction.atomic
def case_unlink_identity(*, actor: Actor, case_id: int, nhi_id: int) -> Case:
    actor = require_permission(actor, "cases.change_case", to="unlink identities from cases")
    case = _lock_case(case_id=case_id, actor=actor)
    _require_workable(case, to="unlink identities")
    linked_before = _linked_identity_ids(case)
    priority_before = case.priority
    for link in CaseIdentity.objects.filter(case=case, nhi_id=nhi_id):
        link._history_user = actor  # type: ignore[attr-defined]
        link.delete()
    if _recompute_priority(case):
        _save_case(case, actor=actor, change_reason=f"priority recomputed: unlinked identity #{nhi_id}")
    if nhi_id in linked_before:
        audit_entry_append(
            actor=actor,
            event="case.unlink_identity",
            target=case,
            case_id=case.pk,
            before={"identities": linked_before, "priority": priority_before},
            after={"identities": [pk for pk in linked_before if pk != nhi_id], "priority": case.priority},
            details={"nhi": nhi_id},
        )
    case_mappings_apply(case=case, actor=actor)
    return case


@transaction.atomic
def case_refresh_priorities(*, actor: Actor, identity_ids: Iterable[int]) -> int:
    """Recompute the priority of every open case that concerns these identities; returns how many changed."""
    changed = 0
    identities = sorted(set(identity_ids))
    # PostgreSQL refuses FOR UPDATE with DISTINCT: lock by primary key, the join stays in a subquery.
    concerned = Case.objects.filter(identity_links__nhi_id__in=identities).values("pk")
    cases = (
        Case.objects.select_for_update()
        .filter(pk__in=concerned)
        .exclude(state__in=SETTLED_STATES)
        .order_by("pk")
    )
    for case in cases:
        priority_before = case.priority
        if _recompute_priority(case):
            _save_case(case, actor=actor, change_reason="priority recomputed: identity risk changed")
            audit_entry_append(
                actor=actor,
                event="case.refresh_priority",
                target=case,
                case_id=case.pk,
                before={"priority": priority_before},
                after={"priority": case.priority},
                details={"identities": identities},
            )
            changed += 1
    return changed


# --- Transitions -------------------------------------------------------------------------------------------


@transaction.atomic
def case_confirm(*, case_id: int, actor: Actor, reason: str = "") -> Case:
    return _perform_transition(case_id=case_id, actor=actor, name="confirm", reason=reason)


@transaction.atomic
def case_assign(
    *, case_id: int, actor: Actor, assignee: User | None, owning_team: Team | None, reason: str = ""
) -> Case:
    errors = {}
    if assignee is None:
        errors["assignee"] = "Choose the person who will own the work."
    elif not assignee.is_active:
        errors["assignee"] = f"{assignee} is not an active user."
    if owning_team is None:
        errors["owning_team"] = "Choose the team that owns the work."
    if errors:
        raise ValidationError(errors)

    def prepare(case: Case) -> None:
        case.assignee = assignee
        case.owning_team = owning_team

    return _perform_transition(case_id=case_id, actor=actor, name="assign", reason=reason, prepare=prepare)


@transaction.atomic
def case_start_action(*, case_id: int, actor: Actor, reason: str = "") -> Case:
    return _perform_transition(case_id=case_id, actor=actor, name="start_action", reason=reason)


@transaction.atomic
def case_verify(*, case_id: int, actor: Actor, reason: str = "") -> Case:
    return _perform_transition(
        case_id=case_id, actor=actor, name="verify", reason=reason, arguments={"at": timezone.now()}
    )


@transaction.atomic
def case_close(*, case_id: int, actor: Actor, reason: str = "") -> Case:
    return _perform_transition(
        case_id=case_id, actor=actor, name="close", reason=reason, arguments={"at": timezone.now()}
    )


@transaction.atomic
def case_dismiss(*, case_id: int, actor: Actor, dismissal_reason: str, reason: str) -> Case:
    if dismissal_reason not in DismissalReason.values:
        raise ValidationError({"dismissal_reason": f"Choose one of: {', '.join(DismissalReason.values)}."})
    reason = _require_reason(reason, why="to dismiss a case")
    return _perform_transition(
        case_id=case_id,
        actor=actor,
        name="dismiss",
        reason=reason,
        arguments={"dismissal_reason": dismissal_reason},
    )


@transaction.atomic
def case_reopen(*, case_id: int, actor: Actor, reason: str) -> Case:
    reason = _require_reason(reason, why="to reopen a case")
    case = _perform_transition(
        case_id=case_id, actor=actor, name="reopen", reason=reason, prepare=_restart_sla_clock
    )
    # Approvals were given for the case as it was; after a reopen they must be sought again.
    for approval in case.approvals.filter(status__in=(ApprovalStatus.PENDING, ApprovalStatus.APPROVED)):
        status_before = approval.status
        approval.status = ApprovalStatus.SUPERSEDED
        approval._history_user = actor  # type: ignore[attr-defined]
        approval._change_reason = "case reopened"  # type: ignore[attr-defined]
        approval.save()
        audit_entry_append(
            actor=actor,
            event="approval.supersede",
            target=approval,
            case_id=case.pk,
            before={"status": status_before},
            after={"status": approval.status},
            details={"kind": approval.kind, "because": "case.reopen"},
        )
    _set_case_facts(case, closure_second_person_approved=False)
    return case


# --- Approvals (four-eyes) ---------------------------------------------------------------------------------


@transaction.atomic
def approval_request(
    *, actor: Actor, case_id: int, kind: str, reason: str, risk_expires_on: date | None = None
) -> Approval:
    actor = require_permission(actor, "cases.request_approval", to="request approvals")
    case = _lock_case(case_id=case_id, actor=actor)
    reason = _require_reason(reason, why="to request an approval")
    allowed: tuple[str, ...]
    if kind == ApprovalKind.RISK_ACCEPTANCE:
        allowed = (CaseState.CONFIRMED, CaseState.ASSIGNED, CaseState.IN_PROGRESS)
        today = timezone.localdate()
        if risk_expires_on is None:
            raise ValidationError({"risk_expires_on": "A risk acceptance needs an expiry date."})
        if risk_expires_on <= today:
            raise ValidationError({"risk_expires_on": "The expiry date must be in the future."})
        if risk_expires_on > today + MAX_RISK_ACCEPTANCE:
            raise ValidationError({"risk_expires_on": "A risk acceptance may last at most one year."})
    elif kind == ApprovalKind.CLOSURE:
        allowed = (CaseState.IN_PROGRESS, CaseState.VERIFIED)
        risk_expires_on = None
    else:
        raise ValidationError({"kind": f"Choose one of: {', '.join(ApprovalKind.values)}."})
    if case.state not in allowed:
        raise CaseWorkflowError(
            f"{case.reference} is {case.get_state_display().lower()}; a {ApprovalKind(kind).label.lower()} "
            "request is not possible now."
        )
    if case.approvals.filter(kind=kind, status=ApprovalStatus.PENDING).exists():
        raise CaseWorkflowError(
            f"{case.reference} already has a pending {ApprovalKind(kind).label.lower()} request."
        )
    approval = Approval(
        case=case,
        kind=kind,
        reason=reason,
        risk_expires_on=risk_expires_on,
        requested_by=actor,
        requested_at=timezone.now(),
    )
    approval._history_user = actor  # type: ignore[attr-defined]
    approval.save()
    audit_entry_append(
        actor=actor,
        event="approval.request",
        target=approval,
        case_id=case.pk,
        after=audit_fields(approval, ("kind", "status", "risk_expires_on", "requested_by", "reason")),
    )
    return approval


@transaction.atomic
def approval_decide(*, actor: Actor, approval_id: int, approve: bool, note: str = "") -> Approval:
    actor = require_permission(actor, "cases.decide_approval", to="decide approvals")
    approval = Approval.objects.select_for_update().filter(pk=approval_id).first()
    if approval is None:
        raise ValidationError({"approval": f"No approval with id {approval_id}."})
    case = _lock_case(case_id=approval.case_id, actor=actor)
    _require_workable(case, to="decide its approval requests")
    if approval.status != ApprovalStatus.PENDING:
        raise TransitionConflict(f"This request is already {approval.get_status_display().lower()}.")
    if approval.requested_by_id == actor.pk:
        raise PermissionDenied("Four-eyes: the person who requested an approval cannot decide it.")
    if not approve and not note.strip():
        raise ValidationError({"note": "A note is required to reject a request."})
    elif approval.kind == ApprovalKind.RISK_ACCEPTANCE and not (
        approval.risk_expires_on and approval.risk_expires_on > timezone.localdate()
    ):
        raise ValidationError(
            {"risk_expires_on": "This request's expiry date has passed; ask for a new request."}
        )
    status_before = approval.status
    approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    approval.decided_by = actor
    approval.decided_at = timezone.now()
    approval.decision_note = note
    approval._history_user = actor  # type: ignore[attr-defined]
    approval.save()
    audit_entry_append(
        actor=actor,
        event="approval.decide",
        target=approval,
        case_id=case.pk,
        before={"status": status_before},
        after=audit_fields(approval, ("status", "decided_by", "decided_at", "decision_note")),
        details=audit_fields(approval, ("kind", "requested_by", "risk_expires_on")),
    )
    if approve and approval.kind == ApprovalKind.CLOSURE and approval.requested_by_id != actor.pk:
        _set_case_facts(case, closure_second_person_approved=True)
    if approve and approval.kind == ApprovalKind.RISK_ACCEPTANCE:
        _perform_transition(
            case_id=case.pk,
            actor=actor,
            name="accept_risk",
            reason=f"risk accepted until {approval.risk_expires_on}: {approval.reason}",
            arguments={"until": approval.risk_expires_on},
        )
    return approval


# --- Work on a case ----------------------------------------------------------------------------------------


@transaction.atomic
def evidence_capture(
    *,
    actor: Actor,
    case_id: int,
    kind: str,
    title: str,
    file: UploadedFile | None = None,
    url: str = "",
    note: str = "",
) -> Evidence:
    actor = require_permission(actor, "cases.add_evidence", to="capture evidence")
    case = _lock_case(case_id=case_id, actor=actor)
    _require_workable(case, to="capture evidence")
    if kind == EvidenceKind.FILE:
        if file is None:
            raise ValidationError({"file": "File evidence needs a file."})
        digest, size = _digest_upload(file)
    elif kind == EvidenceKind.URL:
        if not url:
            raise ValidationError({"url": "URL evidence needs a URL."})
        digest, size = Evidence.digest(url.encode()), len(url)
    elif kind == EvidenceKind.NOTE:
        if not note.strip():
            raise ValidationError({"note": "Note evidence needs text."})
        digest, size = Evidence.digest(note.encode()), len(note)
    else:
        raise ValidationError({"kind": f"Choose one of: {', '.join(EvidenceKind.values)}."})
    evidence = Evidence(
        case=case,
        kind=kind,
        title=title.strip(),
        url=url if kind == EvidenceKind.URL else "",
        note=note if kind == EvidenceKind.NOTE else "",
        sha256=digest,
        size=size,
        captured_by=actor,
        captured_at=timezone.now(),
    )
    if file is not None and kind == EvidenceKind.FILE:
        evidence.file = file
    evidence.full_clean()
    evidence._history_user = actor  # type: ignore[attr-defined]
    evidence.save()
    _set_case_facts(case, has_evidence=True)
    audit_entry_append(
        actor=actor,
        event="evidence.capture",
        target=evidence,
        case_id=case.pk,
        # The sha256 covers the file, URL or note as captured: the chain proves the content, never holds it.
        after=audit_fields(
            evidence, ("kind", "sha256", "size", "title", "captured_by", "captured_at"), verbatim=("sha256",)
        ),
    )
    return evidence


def _digest_upload(file: UploadedFile) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    for chunk in file.chunks(EVIDENCE_CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    file.seek(0)
    return hasher.hexdigest(), size


def _action_item_create(
    case: Case, *, actor: User, event: str, change_reason: str | None = None, **fields: Any
) -> ActionItem:
    """Validate, save and record one new action item of a locked, workable case."""
    item = ActionItem(case=case, created_by=actor, **fields)
    item.full_clean()
    item._history_user = actor  # type: ignore[attr-defined]
    if change_reason is not None:
        item._change_reason = change_reason  # type: ignore[attr-defined]
    item.save()
    audit_entry_append(
        actor=actor,
        event=event,
        target=item,
        case_id=case.pk,
        after=audit_fields(item, ACTION_ITEM_AUDITED_FIELDS),
    )
    return item


@transaction.atomic
def action_item_add(
    *,
    actor: Actor,
    case_id: int,
    kind: str,
    title: str,
    owning_team: Team,
    external_reference: str = "",
) -> ActionItem:
    actor = require_permission(actor, "cases.add_actionitem", to="add action items")
    case = _lock_case(case_id=case_id, actor=actor)
    _require_workable(case, to="add action items")
    return _action_item_create(
        case,
        actor=actor,
        event="action_item.add",
        kind=kind,
        title=title.strip(),
        owning_team=owning_team,
        external_reference=external_reference,
    )


@transaction.atomic
def action_item_propose(
    *, actor: Actor, case_id: int, kind: str, title: str, owning_team: Team
) -> ActionItem:
    """Add an action item that nobody may start or complete until a second person approves it.

    This is how work an AI assistant suggests enters a case (`intake`): the proposer may suggest, never act.
    """
    actor = require_permission(actor, "cases.propose_actionitem", to="propose action items")
    case = _lock_case(case_id=case_id, actor=actor)
    _require_workable(case, to="add action items")
    return _action_item_create(
        case,
        actor=actor,
        event="action_item.propose",
        change_reason="proposed: awaits a person's approval",
        kind=kind,
        title=title.strip(),
        owning_team=owning_team,
        requires_approval=True,
    )


@transaction.atomic
def action_item_approve(*, actor: Actor, action_item_id: int) -> ActionItem:
    """A person approves a proposed action item so it may be worked on; never its proposer (four-eyes)."""
    actor = require_permission(actor, "cases.approve_actionitem", to="approve proposed action items")
    item = ActionItem.objects.select_for_update().filter(pk=action_item_id).first()
    if item is None:
        raise ValidationError({"action_item": f"No action item with id {action_item_id}."})
    case = _lock_case(case_id=item.case_id, actor=actor)
    if not item.requires_approval:
        raise ValidationError(
            {"action_item": "This action item is not a proposal: there is nothing to approve."}
        )
    if item.approved_at is not None:
        raise TransitionConflict(
            f"This action item was already approved on {item.approved_at:%Y-%m-%d %H:%M}."
        )
    if item.status == ActionStatus.CANCELLED:
        raise TransitionConflict("This proposal was cancelled; it cannot be approved.")
    if item.created_by_id == actor.pk:
        raise PermissionDenied("Four-eyes: whoever proposed an action item cannot approve it.")
    _require_workable(case, to="approve its action items")
    item.approved_by = actor
    item.approved_at = timezone.now()
    item._history_user = actor  # type: ignore[attr-defined]
    item._change_reason = "approved"  # type: ignore[attr-defined]
    item.save()
    audit_entry_append(
        actor=actor,
        event="action_item.approve",
        target=item,
        case_id=case.pk,
        before={"approved_by": None, "approved_at": None},
        after=audit_fields(item, ("approved_by", "approved_at")),
        details={"proposed_by": item.created_by_id},
    )
    return item


@transaction.atomic
def action_item_set_status(
    *, actor: Actor, action_item_id: int, status: str, external_reference: str | None = None
) -> ActionItem:
    actor = require_permission(actor, "cases.change_actionitem", to="update action items")
    item = ActionItem.objects.select_for_update().select_related("case").filter(pk=action_item_id).first()
    if item is None:
        raise ValidationError({"action_item": f"No action item with id {action_item_id}."})
    on_own_team = team_ids_of(actor).filter(team_id=item.owning_team_id).exists()
    if not (sees_all_cases(actor) or on_own_team):
        raise PermissionDenied(f"{actor} may not update this action item: it belongs to {item.owning_team}.")
    if status not in ActionStatus.values:
        raise ValidationError({"status": f"Choose one of: {', '.join(ActionStatus.values)}."})
    _require_workable(item.case, to="update its action items")
    before = audit_fields(item, ACTION_ITEM_STATUS_FIELDS)
    if item.awaiting_approval and status in (ActionStatus.IN_PROGRESS, ActionStatus.DONE):
        raise ValidationError(
            {
                "status": "This action item is a proposal nobody has approved yet: a person with the "
                "approver role, other than whoever proposed it, must approve it before it is started or "
                "completed. It may be cancelled."
            }
        )
    item.status = status
    item.completed_at = timezone.now() if status == ActionStatus.DONE else None
    if external_reference is not None:
        item.external_reference = external_reference
    item.full_clean()
    item._history_user = actor  # type: ignore[attr-defined]
    item.save()
    after = audit_fields(item, ACTION_ITEM_STATUS_FIELDS)
    if after != before:
        audit_entry_append(
            actor=actor,
            event="action_item.set_status",
            target=item,
            case_id=item.case_id,
            before=before,
            after=after,
        )
    return item


@transaction.atomic
def comment_add(*, actor: Actor, case_id: int, body: str) -> Comment:
    actor = require_permission(actor, "cases.add_comment", to="comment on cases")
    case = _lock_case(case_id=case_id, actor=actor)
    if not body.strip():
        raise ValidationError({"body": "The comment is empty."})
    comment = Comment(case=case, author=actor, body=body.strip())
    comment._history_user = actor  # type: ignore[attr-defined]
    comment.save()
    _record_comment(comment, actor=actor)
    return comment


def _record_comment(comment: Comment, *, actor: User) -> None:
    audit_entry_append(
        actor=actor,
        event="comment.add",
        target=comment,
        case_id=comment.case_id,
        after=audit_fields(comment, ("author", "body")),
    )


@transaction.atomic
def attack_path_step_add(
    *,
    actor: Actor,
    case_id: int,
    source_node: str,
    target_node: str,
    technique: str,
    nhi: NonHumanIdentity | None = None,
    failed_control: Control | None = None,
    failed_control_note: str = "",
    remediation_team: Team | None = None,
    position: int | None = None,
) -> AttackPathStep:
    actor = require_permission(actor, "cases.add_attackpathstep", to="add attack-path steps")
    case = _lock_case(case_id=case_id, actor=actor)
    if case.kind != CaseKind.ATTACK_PATH_REVIEW:
        raise ValidationError({"case": f"{case.reference} is not an attack-path review."})
    _require_workable(case, to="add attack-path steps")
    if position is None:
        last = case.attack_path_steps.order_by("-position").values_list("position", flat=True).first()
        position = (last or 0) + 1
    step = AttackPathStep(
        case=case,
        position=position,
        source_node=source_node,
        target_node=target_node,
        technique=technique,
        nhi=nhi,
        failed_control=failed_control,
        failed_control_note=failed_control_note,
        remediation_team=remediation_team,
    )
    step.full_clean()
    step._history_user = actor  # type: ignore[attr-defined]
    step.save()
    audit_entry_append(
        actor=actor,
        event="attack_path_step.add",
        target=step,
        case_id=case.pk,
        after=audit_fields(
            step,
            (
                "position",
                "source_node",
                "target_node",
                "technique",
                "nhi",
                "failed_control",
                "failed_control_note",
                "remediation_team",
            ),
        ),
    )
    return step


@transaction.atomic
def attack_path_step_route(*, actor: Actor, step_id: int, kind: str = ActionKind.OTHER) -> ActionItem:
    """Route a step's remediation to its team as an action item on the case."""
    actor = require_permission(actor, "cases.add_actionitem", to="route attack-path steps")
    step = AttackPathStep.objects.select_for_update().filter(pk=step_id).first()
    if step is None:
        raise ValidationError({"step": f"No attack-path step with id {step_id}."})
    if step.remediation_team_id is None:
        raise ValidationError(
            {"remediation_team": f"Step {step.position} has no remediation team to route to."}
        )
    if step.remediation_action_id is not None:
        raise CaseWorkflowError(
            f"Step {step.position} is already routed (action item #{step.remediation_action_id})."
        )
    control = f" — failed control: {step.failed_control.ref_id}" if step.failed_control else ""
    item = action_item_add(
        actor=actor,
        case_id=step.case_id,
        kind=kind,
        title=(
            f"Remediate step {step.position}: {step.source_node} → {step.target_node} ({step.technique})"
            + control
        )[:200],
        owning_team=step.remediation_team,  # type: ignore[arg-type]
    )
    step.remediation_action = item
    step._history_user = actor  # type: ignore[attr-defined]
    step.save()
    audit_entry_append(
        actor=actor,
        event="attack_path_step.route",
        target=step,
        case_id=step.case_id,
        before={"remediation_action": None},
        after={"remediation_action": item.pk},
        details={"remediation_team": step.remediation_team_id},
    )
    return item


# --- Automation: SLA escalation and expiring risk acceptances ----------------------------------------------


@transaction.atomic
def case_escalate(*, actor: Actor, case_id: int) -> Case:
    """Flag an open case that is past its due date, record why, and email its team lead once committed.

    Refuses (CaseWorkflowError) a case that is not open, not overdue or already escalated, so a sweep
    delivered twice, or two sweeps at once, escalate a case once.
    """
    actor = require_permission(actor, "cases.escalate_case", to="escalate overdue cases")
    case = _lock_case(case_id=case_id, actor=actor)
    now = timezone.now()
    if case.state not in OPEN_STATES:
        raise CaseWorkflowError(
            f"{case.reference} is {case.get_state_display().lower()}: it cannot be overdue."
        )
    if case.due_at is None or case.due_at > now:
        raise CaseWorkflowError(f"{case.reference} is not past its due date.")
    if case.escalated_at is not None:
        raise TransitionConflict(
            f"{case.reference} was already escalated on {case.escalated_at:%Y-%m-%d %H:%M}."
        )
    # Conditional as well: SQLite has no row locks, and of two sweeps only one may flag the case.
    if not Case.objects.filter(pk=case.pk, escalated_at__isnull=True).update(escalated_at=now):
        raise TransitionConflict(f"{case.reference} was escalated by someone else in the meantime.")
    case.escalated_at = now
    overdue_since = timezone.localtime(case.due_at).strftime("%Y-%m-%d %H:%M %Z")
    try:
        _save_case(case, actor=actor, change_reason=f"escalated: overdue since {overdue_since}")
    except ConcurrentTransition:
        raise TransitionConflict(f"{case.reference} changed state while it was being escalated.") from None
    comment = Comment(
        case=case,
        author=actor,
        body=(
            f"Escalated: this {case.get_severity_display().lower()} case was due on {overdue_since} and is "
            f"still {case.get_state_display().lower()}. {escalation_recipients_sentence(case)}"
        ),
    )
    comment._history_user = actor  # type: ignore[attr-defined]
    comment._change_reason = "escalated"  # type: ignore[attr-defined]
    comment.save()
    audit_entry_append(
        actor=actor,
        event="case.escalate",
        target=case,
        case_id=case.pk,
        before={"escalated_at": None},
        after={"escalated_at": now},
        details={
            "due_at": case.due_at,
            "state": case.state,
            "comment": comment.pk,
            "comment_body": text_digest(comment.body),
        },
    )
    escalated_id = case.pk

    def notify() -> None:
        case_escalation_notify(case_id=escalated_id)

    # robust: the escalation stands if the mail server is down; the next sweep sends what is still owed.
    transaction.on_commit(notify, robust=True)
    return case


@transaction.atomic
def case_risk_acceptance_expire(*, actor: Actor, case_id: int) -> Case:
    """Reopen a risk-accepted case whose acceptance has expired, with a comment saying so.

    Refuses (CaseWorkflowError) a case no longer in accepted risk, or whose acceptance still runs.
    """
    actor = require_permission(actor, "cases.reopen_case", to="reopen cases whose risk acceptance expired")
    case = _lock_case(case_id=case_id, actor=actor)
    until = case.risk_accepted_until
    if case.state != CaseState.RISK_ACCEPTED or until is None:
        raise TransitionConflict(
            f"{case.reference} is {case.get_state_display().lower()}, not accepted risk."
        )
    if until >= timezone.localdate():
        raise CaseWorkflowError(f"{case.reference}'s risk acceptance runs until {until:%Y-%m-%d}.")
    reason = f"risk acceptance expired on {until:%Y-%m-%d}"
    case = case_reopen(case_id=case.pk, actor=actor, reason=reason)
    comment = Comment(
        case=case,
        author=actor,
        body=(
            f"Reopened: the risk acceptance ran until {until:%Y-%m-%d} and has expired. The case needs work "
            "again, or a new risk-acceptance request."
        ),
    )
    comment._history_user = actor  # type: ignore[attr-defined]
    comment._change_reason = reason  # type: ignore[attr-defined]
    comment.save()
    # The reopen is in the chain through its transition; the comment explaining it is recorded like any other.
    _record_comment(comment, actor=actor)
    return case
