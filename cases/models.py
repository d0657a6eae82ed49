from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from simple_history.models import HistoricalRecords

from frameworks.models import Control, ControlKind
from nhi_inventory.models import NonHumanIdentity, Team

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class CaseKind(models.TextChoices):
    ALERT_TRIAGE = "alert_triage", "Alert triage"
    SECRET_EXPOSURE = "secret_exposure", "Secret exposure"
    ATTACK_PATH_REVIEW = "attack_path_review", "Attack-path review"
    NHI_MISUSE = "nhi_misuse", "NHI misuse"
    AI_OUTPUT = "ai_output", "Promoted AI/chat output"


class Severity(models.IntegerChoices):
    LOW = 1, "Low"
    MEDIUM = 2, "Medium"
    HIGH = 3, "High"
    CRITICAL = 4, "Critical"


class Priority(models.IntegerChoices):
    P1 = 1, "P1 (act now)"
    P2 = 2, "P2"
    P3 = 3, "P3"
    P4 = 4, "P4"


class CaseOrigin(models.TextChoices):
    MANUAL = "manual", "Opened by hand"
    SCANNER = "scanner", "Scanner import"
    API = "api", "API client"
    ASSISTANT = "assistant", "AI assistant"


class CaseState(models.TextChoices):
    IDENTIFIED = "identified", "Identified"
    CONFIRMED = "confirmed", "Confirmed"
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "Action in progress"
    VERIFIED = "verified", "Verified"
    CLOSED = "closed", "Closed"
    DISMISSED = "dismissed", "Dismissed"
    RISK_ACCEPTED = "risk_accepted", "Risk accepted"


OPEN_STATES = (
    CaseState.IDENTIFIED,
    CaseState.CONFIRMED,
    CaseState.ASSIGNED,
    CaseState.IN_PROGRESS,
    CaseState.VERIFIED,
)
# Cases in these states take no new work (action items, evidence, steps) until reopened.
SETTLED_STATES = (CaseState.CLOSED, CaseState.DISMISSED, CaseState.RISK_ACCEPTED)


class DismissalReason(models.TextChoices):
    FALSE_POSITIVE = "false_positive", "False positive"
    BENIGN = "benign", "Benign (true positive, no risk)"


class ApprovalKind(models.TextChoices):
    CLOSURE = "closure", "Closure (four-eyes)"
    RISK_ACCEPTANCE = "risk_acceptance", "Risk acceptance"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded by a reopen"


class ActionKind(models.TextChoices):
    TICKET = "ticket", "Ticket"
    CONTAINMENT = "containment", "Containment"
    REVOCATION = "revocation", "Revocation"
    ROTATION = "rotation", "Rotation"
    OTHER = "other", "Other"


class ActionStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class EvidenceKind(models.TextChoices):
    FILE = "file", "File"
    URL = "url", "URL"
    NOTE = "note", "Note"


# --- Transition guards -------------------------------------------------------------------------------------
# Each guard carries the sentence shown to a person when it blocks a transition, so the admin, the API and
# the services all explain a refusal in the same words.


class Guard(Protocol):
    """A transition condition with the sentence that explains it when it blocks."""

    __name__: str
    refusal: str

    def __call__(self, case: Any, /) -> bool: ...


def guard(refusal: str) -> Callable[[Callable[[Case], bool]], Guard]:
    def mark(function: Callable[[Case], bool]) -> Guard:
        marked = cast(Guard, function)
        marked.refusal = refusal
        return marked

    return mark


@guard("Assigning needs an assignee and an owning team.")
def has_assignee_and_team(case: Case) -> bool:
    return case.assignee_id is not None and case.owning_team_id is not None


@guard("Starting action needs at least one action item.")
def has_action_items(case: Case) -> bool:
    return case.action_items.exclude(status=ActionStatus.CANCELLED).exists()


@guard("Verifying needs every action item done (or cancelled), with at least one done.")
def action_items_done(case: Case) -> bool:
    items = case.action_items.all()
    return (
        not items.filter(status__in=(ActionStatus.OPEN, ActionStatus.IN_PROGRESS)).exists()
        and items.filter(status=ActionStatus.DONE).exists()
    )


@guard("Verifying needs at least one evidence item.")
def has_evidence(case: Case) -> bool:
    return case.evidence.exists()


@guard("Closing a high or critical case needs a closure approval by a second person.")
def closure_approved_if_severe(case: Case) -> bool:
    if case.severity < Severity.HIGH:
        return True
    return case.approvals.filter(kind=ApprovalKind.CLOSURE, status=ApprovalStatus.APPROVED).exists()


@guard("Accepting the risk needs an approved risk-acceptance request with an expiry date.")
def risk_acceptance_approved(case: Case) -> bool:
    return case.approvals.filter(
        kind=ApprovalKind.RISK_ACCEPTANCE, status=ApprovalStatus.APPROVED, risk_expires_on__isnull=False
    ).exists()


# The guard under another name: inside Case, `has_evidence` is the field.
_evidence_captured = has_evidence


class Case(ConcurrentTransitionMixin, models.Model):
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    kind = models.CharField(max_length=24, choices=CaseKind.choices)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, default=Severity.MEDIUM)
    priority = models.PositiveSmallIntegerField(
        choices=Priority.choices,
        default=Priority.P3,
        editable=False,
        help_text="Derived from severity and the linked identities' criticality, privilege and exposure.",
    )
    origin = models.CharField(max_length=16, choices=CaseOrigin.choices, default=CaseOrigin.MANUAL)
    # editable=False rather than protected=True: protected breaks ModelForms and full_clean().
    state = FSMField(default=CaseState.IDENTIFIED, choices=CaseState.choices, editable=False)
    owning_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="cases"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_cases",
    )
    identities: models.ManyToManyField[NonHumanIdentity, CaseIdentity] = models.ManyToManyField(
        NonHumanIdentity, through="CaseIdentity", related_name="cases", blank=True
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="opened_cases",
        editable=False,
    )
    due_at = models.DateTimeField(null=True, blank=True)
    dismissal_reason = models.CharField(
        max_length=16, choices=DismissalReason.choices, blank=True, editable=False
    )
    risk_accepted_until = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Facts the alignment report counts, kept by the services in the same transaction as the rows they
    # summarise (so the report reads one row per case instead of probing evidence, transitions, approvals).
    has_evidence = models.BooleanField(
        default=False,
        editable=False,
        help_text="At least one evidence item was captured (set by evidence_capture).",
    )
    traceable = models.BooleanField(
        default=True,
        editable=False,
        help_text="Every transition after opening gave a reason (cleared for good otherwise).",
    )
    closure_second_person_approved = models.BooleanField(
        default=False,
        editable=False,
        help_text="A closure approval was approved by a second person (cleared on reopen).",
    )
    # With `traceable`, what the report's traceability needs: the chain must prove everything up to here
    # (cases.alignment). Not in the case's history: it is a pointer into the chain, moved by every
    # transition, and a history row (written before the transition's entry exists) would always lag by one.
    chain_seq = models.BigIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text=(
            "The audit chain entry of the latest transition (set with it); empty for cases from before the "
            "audit chain."
        ),
    )
    # The SLA (SlaPolicy) sets due_at when the case opens, is reopened or changes severity, unless a person
    # set the date by hand; clearing it by hand gives the date back to the SLA.
    due_at_set_by_hand = models.BooleanField(
        default=False,
        editable=False,
        help_text="The due date was set by a person; the SLA for the severity no longer moves it.",
    )
    escalated_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the case was escalated for passing its due date (cleared by a reopen or a new date).",
    )
    escalation_notified_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the team lead was emailed about the escalation.",
    )
    history = HistoricalRecords(excluded_fields=("updated_at", "escalation_notified_at", "chain_seq"))

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (
            models.Index(fields=("state", "-created_at"), name="case_state_created"),
            models.Index(fields=("kind", "-created_at"), name="case_kind_created"),
            models.Index(fields=("severity", "-created_at"), name="case_severity_created"),
            models.Index(fields=("priority", "-created_at"), name="case_priority_created"),
            models.Index(fields=("owning_team", "-created_at"), name="case_team_created"),
            # The escalation sweep: open cases past due, not yet escalated.
            models.Index(
                fields=("due_at",),
                name="case_due_unescalated",
                condition=Q(escalated_at__isnull=True, due_at__isnull=False),
            ),
        )
        permissions = (
            ("view_all_cases", "Can view cases of every team"),
            ("confirm_case", "Can confirm a case"),
            ("assign_case", "Can assign a case"),
            ("act_on_case", "Can start action on a case"),
            ("verify_case", "Can verify a case"),
            ("close_case", "Can close a case"),
            ("dismiss_case", "Can dismiss a case"),
            ("request_approval", "Can request a closure or risk-acceptance approval"),
            ("decide_approval", "Can approve or reject requests (four-eyes)"),
            ("reopen_case", "Can reopen a case"),
            ("escalate_case", "Can escalate an overdue case to its team lead"),
        )

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def reference(self) -> str:
        return f"CASE-{self.pk:06d}" if self.pk else "CASE-new"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    # The transitions only change this row; the services lock it, check permissions, and record who, when
    # and why. Each takes keyword arguments so the services pass what the transition needs.

    @transition(
        field=state, source=CaseState.IDENTIFIED, target=CaseState.CONFIRMED, permission="cases.confirm_case"
    )
    def confirm(self) -> None:
        pass

    @transition(
        field=state,
        source=(CaseState.CONFIRMED, CaseState.ASSIGNED),
        target=CaseState.ASSIGNED,
        permission="cases.assign_case",
        conditions=[has_assignee_and_team],
    )
    def assign(self) -> None:
        pass

    @transition(
        field=state,
        source=CaseState.ASSIGNED,
        target=CaseState.IN_PROGRESS,
        permission="cases.act_on_case",
        conditions=[has_action_items],
    )
    def start_action(self) -> None:
        pass

    @transition(
        field=state,
        source=CaseState.IN_PROGRESS,
        target=CaseState.VERIFIED,
        permission="cases.verify_case",
        conditions=[action_items_done, _evidence_captured],
    )
    def verify(self, *, at: Any) -> None:
        self.verified_at = at

    @transition(
        field=state,
        source=CaseState.VERIFIED,
        target=CaseState.CLOSED,
        permission="cases.close_case",
        conditions=[closure_approved_if_severe],
    )
    def close(self, *, at: Any) -> None:
        self.closed_at = at

    @transition(
        field=state,
        source=(CaseState.IDENTIFIED, CaseState.CONFIRMED, CaseState.ASSIGNED),
        target=CaseState.DISMISSED,
        permission="cases.dismiss_case",
    )
    def dismiss(self, *, dismissal_reason: str) -> None:
        self.dismissal_reason = dismissal_reason

    @transition(
        field=state,
        source=(CaseState.CONFIRMED, CaseState.ASSIGNED, CaseState.IN_PROGRESS),
        target=CaseState.RISK_ACCEPTED,
        permission="cases.decide_approval",
        conditions=[risk_acceptance_approved],
    )
    def accept_risk(self, *, until: Any) -> None:
        self.risk_accepted_until = until

    @transition(
        field=state,
        source=(CaseState.VERIFIED, CaseState.CLOSED, CaseState.DISMISSED, CaseState.RISK_ACCEPTED),
        target=CaseState.IDENTIFIED,
        permission="cases.reopen_case",
    )
    def reopen(self) -> None:
        self.dismissal_reason = ""
        self.risk_accepted_until = None
        self.verified_at = None
        self.closed_at = None


class CaseIdentity(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="identity_links")
    nhi = models.ForeignKey(NonHumanIdentity, on_delete=models.PROTECT, related_name="case_links")
    linked_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "linked identity"
        verbose_name_plural = "linked identities"
        constraints = (models.UniqueConstraint(fields=("case", "nhi"), name="case_identity_unique"),)

    def __str__(self) -> str:
        return f"{self.nhi} in case #{self.case_id}"


class CaseTransition(models.Model):
    """One row per transition: the lifecycle log that auditors read (who, when, from, to, why)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="transitions")
    name = models.CharField(max_length=32)
    source_state = models.CharField(max_length=16, choices=CaseState.choices, blank=True)
    target_state = models.CharField(max_length=16, choices=CaseState.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    at = models.DateTimeField()
    # The audit chain entry written with this row (audit.AuditEntry.seq; no foreign key, entries are never
    # deleted). Empty for a row the services did not write, which the chain therefore does not prove.
    audit_seq = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("at", "id")
        indexes = (
            models.Index(fields=("case", "at"), name="transition_case_at"),
            # The rows the chain does not prove, which the alignment report looks up for every case: empty
            # (so free) unless rows were written behind the services' back or predate the chain.
            models.Index(
                fields=("case",), condition=models.Q(audit_seq__isnull=True), name="transition_unproven"
            ),
        )

    def __str__(self) -> str:
        return f"{self.name}: {self.source_state} → {self.target_state}"


def evidence_upload_path(instance: Evidence, filename: str) -> str:
    return f"evidence/case-{instance.case_id}/{filename}"


class Evidence(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=8, choices=EvidenceKind.choices)
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to=evidence_upload_path, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    note = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file, URL or note as captured.")
    size = models.PositiveBigIntegerField(default=0)
    captured_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    captured_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "evidence"
        ordering = ("captured_at", "id")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Evidence is what an auditor relies on: once captured it is never rewritten.
        if not self._state.adding:
            raise ValueError("Evidence is immutable once captured.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("Evidence is immutable once captured.")

    @staticmethod
    def digest(content: bytes) -> str:
        return hashlib.sha256(content).hexdigest()


class ActionItem(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="action_items")
    kind = models.CharField(max_length=16, choices=ActionKind.choices)
    title = models.CharField(max_length=200)
    owning_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="action_items")
    status = models.CharField(max_length=16, choices=ActionStatus.choices, default=ActionStatus.OPEN)
    external_reference = models.CharField(max_length=200, blank=True, help_text="Ticket id, change id, ...")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # A proposal (e.g. from an AI assistant, `action_item_propose`) is not work yet: nobody may start or
    # complete it until a person with `approve_actionitem`, other than its proposer, approves it
    # (`action_item_approve`). The constraints below hold that even against a write that skips the services.
    requires_approval = models.BooleanField(
        default=False, editable=False, help_text="Proposed: a person must approve it before it is worked on."
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ("created_at", "id")
        permissions = (
            ("propose_actionitem", "Can propose an action item that a person must approve"),
            ("approve_actionitem", "Can approve a proposed action item (four-eyes)"),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(requires_approval=False)
                | Q(approved_at__isnull=False)
                | Q(status__in=("open", "cancelled")),
                name="action_item_proposal_approved_before_work",
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True, approved_at__isnull=True)
                | Q(requires_approval=True, approved_by__isnull=False, approved_at__isnull=False),
                name="action_item_approval_complete",
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("created_by")),
                name="action_item_four_eyes",
            ),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    @property
    def awaiting_approval(self) -> bool:
        return self.requires_approval and self.approved_at is None


class Approval(models.Model):
    """A four-eyes decision: requested by one person, decided by another."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="approvals")
    kind = models.CharField(max_length=16, choices=ApprovalKind.choices)
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    reason = models.TextField()
    risk_expires_on = models.DateField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("requested_at", "id")
        constraints = (
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("requested_by")),
                name="approval_four_eyes",
            ),
            models.CheckConstraint(
                condition=~Q(kind="risk_acceptance") | Q(risk_expires_on__isnull=False),
                name="approval_risk_acceptance_has_expiry",
            ),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"


class Comment(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"Comment by {self.author} on case #{self.case_id}"


class AttackPathStep(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attack_path_steps")
    position = models.PositiveSmallIntegerField()
    source_node = models.CharField("from", max_length=200)
    target_node = models.CharField("to", max_length=200)
    technique = models.CharField(max_length=200, help_text="How the attacker moves, e.g. MITRE ATT&CK T1552.")
    nhi = models.ForeignKey(
        NonHumanIdentity, null=True, blank=True, on_delete=models.PROTECT, related_name="attack_path_steps"
    )
    failed_control = models.ForeignKey(
        Control, null=True, blank=True, on_delete=models.PROTECT, related_name="attack_path_steps"
    )
    failed_control_note = models.CharField(max_length=300, blank=True)
    remediation_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="attack_path_steps"
    )
    remediation_action = models.OneToOneField(
        ActionItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="attack_path_step"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("case_id", "position")
        constraints = (
            models.UniqueConstraint(fields=("case", "position"), name="attack_path_step_position"),
        )

    def __str__(self) -> str:
        return f"Step {self.position}: {self.source_node} → {self.target_node}"


def transition_guards(case: Case, name: str) -> list[Guard]:
    method = getattr(case, name)
    found = method._django_fsm.get_transition(case.state)
    return list(found.conditions) if found else []


def transition_refusals(case: Case, name: str) -> list[str]:
    """The sentences of every guard that currently blocks transition `name`."""
    return [check.refusal for check in transition_guards(case, name) if not check(case)]


def user_display(user: User | None) -> str:
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()


# --- Framework alignment -----------------------------------------------------------------------------------


class MappingCondition(models.TextChoices):
    ALWAYS = "always", "Always"
    LONG_LIVED_CREDENTIAL = (
        "long_lived_credential",
        "A linked identity's credentials are long-lived (never rotated, or not in 90 days)",
    )
    PRIVILEGED_IDENTITY = "privileged_identity", "A linked identity has elevated or administrative privilege"
    INTERNET_FACING = "internet_facing", "A linked identity is internet-facing"
    THIRD_PARTY = "third_party", "A linked identity is used by or shared with a third party"
    FROM_ASSISTANT = "from_assistant", "The case came from an AI assistant"
    FROM_SCANNER = "from_scanner", "The case came from a scanner"


class MappingRule(models.Model):
    """Data, editable in the admin: cases of this kind, meeting this condition, fall under this control."""

    case_kind = models.CharField(
        max_length=24, choices=CaseKind.choices, blank=True, help_text="Empty: cases of every kind."
    )
    condition = models.CharField(
        max_length=32, choices=MappingCondition.choices, default=MappingCondition.ALWAYS
    )
    control = models.ForeignKey(Control, on_delete=models.PROTECT, related_name="mapping_rules")
    rationale = models.TextField(help_text="Why cases like these fall under this control; shown in reports.")
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("case_kind", "control_id")
        constraints = (
            models.UniqueConstraint(fields=("case_kind", "condition", "control"), name="mapping_rule_unique"),
        )

    def __str__(self) -> str:
        kind = self.get_case_kind_display() if self.case_kind else "Any case"
        return f"{kind} → {self.control.ref_id}"


class MappingSource(models.TextChoices):
    RULE = "rule", "Mapping rule"
    MANUAL = "manual", "Added by hand"


def control_groups(control: Control) -> tuple[int | None, int | None]:
    """The category and the function a case mapped to `control` counts under in the alignment report.

    A subcategory's parent and grandparent; a category itself and its parent; a function itself; a risk
    (OWASP) has neither.
    """
    if control.kind == ControlKind.SUBCATEGORY:
        parent = control.parent
        return control.parent_id, parent.parent_id if parent is not None else None
    if control.kind == ControlKind.CATEGORY:
        return control.pk, control.parent_id
    if control.kind == ControlKind.FUNCTION:
        return None, control.pk
    return None, None


class CaseControlMappingQuerySet(models.QuerySet["CaseControlMapping"]):
    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[CaseControlMapping]:
        """Fill the control's framework, category and function (save() does it for single rows)."""
        objs = list(objs)
        missing = {obj.control_id for obj in objs if obj.framework_id is None}
        if missing:
            controls = Control.objects.select_related("parent").in_bulk(missing)
            for obj in objs:
                if obj.framework_id is None:
                    obj.fill_control_groups(controls[obj.control_id])
        return super().bulk_create(objs, *args, **kwargs)


class CaseControlMapping(models.Model):
    """One case under one control. Rows are deactivated, never deleted, so every change stays in history.

    `framework`, `category` and `function` copy the control's place in its catalog (see `control_groups`)
    when the row is saved or bulk-created, so the alignment report groups without walking the control tree.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="control_mappings")
    control = models.ForeignKey(Control, on_delete=models.PROTECT, related_name="case_mappings")
    source = models.CharField(max_length=8, choices=MappingSource.choices)
    rule = models.ForeignKey(MappingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rationale = models.TextField()
    is_active = models.BooleanField(default=True)
    # A mapping removed by hand stays removed: the rules do not bring it back.
    removed_by_hand = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    framework = models.ForeignKey(
        "frameworks.Framework",
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,  # the report's indexes lead with it
    )
    category = models.ForeignKey(
        Control,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
    )
    function = models.ForeignKey(
        Control,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
    )
    history = HistoricalRecords()

    objects = CaseControlMappingQuerySet.as_manager()

    class Meta:
        ordering = ("case_id", "control_id")
        constraints = (
            models.UniqueConstraint(fields=("case", "control"), name="case_control_mapping_unique"),
        )
        indexes = (
            models.Index(fields=("control", "is_active", "case"), name="mapping_control_active_case"),
            # The alignment report, index-only: per control in (control, case) order; per case.
            models.Index(
                fields=("framework", "is_active", "control", "case"), name="mapping_framework_control"
            ),
            models.Index(
                fields=("framework", "is_active", "case", "category", "function"),
                name="mapping_framework_case",
            ),
        )
        permissions = (("map_case", "Can add or remove a case's control mappings by hand"),)

    def __str__(self) -> str:
        return f"Case #{self.case_id} → {self.control.ref_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.framework_id is None or self._state.adding:
            self.fill_control_groups(self.control)
        super().save(*args, **kwargs)

    def fill_control_groups(self, control: Control) -> None:
        self.framework_id = control.framework_id
        self.category_id, self.function_id = control_groups(control)


class ReportFormat(models.TextChoices):
    HTML = "html", "Printable page (HTML)"
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    PDF = "pdf", "PDF"
    OSCAL = "oscal", "OSCAL Assessment Results (JSON)"


class ReportSnapshot(models.Model):
    """A report exactly as it was shown: its parameters, who asked, when, and its bytes with their sha256.

    Written once by `cases.reports.services.report_snapshot_create`; never changed or deleted.
    """

    framework_key = models.CharField(max_length=60)
    format = models.CharField(max_length=8, choices=ReportFormat.choices)
    since = models.DateField(null=True, blank=True)
    until = models.DateField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the stored content, hex.")
    content = models.BinaryField()
    content_type = models.CharField(max_length=100)
    filename = models.CharField(max_length=200)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (models.Index(fields=("framework_key", "created_at"), name="snapshot_framework_created"),)

    def __str__(self) -> str:
        return f"{self.filename} ({self.sha256[:12]})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("A report snapshot is read-only once stored.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("A report snapshot is read-only: it cannot be deleted.")


class SlaPolicy(models.Model):
    """How long a case of one severity may stay open before it is escalated; edited in the admin.

    Rows are created per severity by a data migration and never deleted: `sla_policy_update` changes the
    duration or turns the SLA off for that severity. A change applies to cases opened, reopened or re-graded
    from then on; due dates already set are not rewritten.
    """

    severity = models.PositiveSmallIntegerField(choices=Severity.choices, unique=True)
    hours_to_resolve = models.PositiveIntegerField(
        help_text="Hours from opening (or reopening) until the case is due."
    )
    is_active = models.BooleanField(
        default=True, help_text="Off: cases of this severity get no due date from the SLA."
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        ordering = ("-severity",)
        constraints = (
            models.CheckConstraint(condition=Q(hours_to_resolve__gte=1), name="sla_policy_hours_positive"),
        )

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.hours_to_resolve} h"
