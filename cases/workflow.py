"""What a person can do on a case page right now: transitions, approval requests and decisions, and work.

Each action names the form it needs and the service it calls. `available_actions` is the single answer to
"which buttons does this user see on this case", so the admin (and later the API) show the same choices the
services would accept.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms

from cases import forms as case_forms
from cases import mapping, services
from cases.models import (
    OPEN_STATES,
    SETTLED_STATES,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseKind,
    CaseState,
    Severity,
    has_assignee_and_team,
    transition_guards,
)
from cases.selectors import case_is_visible
from portal.permissions import Actor

Perform = Callable[[Case, Actor, dict[str, Any]], object]


@dataclass(frozen=True)
class CaseAction:
    name: str
    label: str
    form_class: type[forms.Form]
    perform: Perform
    permission: str
    transition: str | None = None
    # Guards whose condition the action's own form supplies, so they cannot block the button.
    satisfied_by_form: tuple[Callable[[Case], bool], ...] = ()
    states: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    danger: bool = False
    multipart: bool = False
    is_transition: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_transition", self.transition is not None)


@dataclass(frozen=True)
class Availability:
    action: CaseAction
    blocked_by: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.blocked_by


def _transition(name: str, label: str, form: type[forms.Form], call: Perform, **extra: Any) -> CaseAction:
    # The permission is the one declared on the FSM transition, so the button and the service never disagree.
    permission = next(iter(getattr(Case, name)._django_fsm.transitions.values())).permission
    return CaseAction(
        name=name, label=label, form_class=form, perform=call, permission=permission, transition=name, **extra
    )


ACTIONS: tuple[CaseAction, ...] = (
    _transition(
        "confirm",
        "Confirm",
        case_forms.ReasonForm,
        lambda case, actor, data: services.case_confirm(case_id=case.pk, actor=actor, reason=data["reason"]),
    ),
    _transition(
        "assign",
        "Assign",
        case_forms.AssignForm,
        lambda case, actor, data: services.case_assign(
            case_id=case.pk,
            actor=actor,
            assignee=data["assignee"],
            owning_team=data["owning_team"],
            reason=data["reason"],
        ),
        satisfied_by_form=(has_assignee_and_team,),
    ),
    _transition(
        "start_action",
        "Start action",
        case_forms.ReasonForm,
        lambda case, actor, data: services.case_start_action(
            case_id=case.pk, actor=actor, reason=data["reason"]
        ),
    ),
    _transition(
        "verify",
        "Verify",
        case_forms.ReasonForm,
        lambda case, actor, data: services.case_verify(case_id=case.pk, actor=actor, reason=data["reason"]),
    ),
    _transition(
        "close",
        "Close",
        case_forms.ReasonForm,
        lambda case, actor, data: services.case_close(case_id=case.pk, actor=actor, reason=data["reason"]),
    ),
    _transition(
        "dismiss",
        "Dismiss",
        case_forms.DismissForm,
        lambda case, actor, data: services.case_dismiss(
            case_id=case.pk, actor=actor, dismissal_reason=data["dismissal_reason"], reason=data["reason"]
        ),
        danger=True,
    ),
    _transition(
        "reopen",
        "Reopen",
        case_forms.RequiredReasonForm,
        lambda case, actor, data: services.case_reopen(case_id=case.pk, actor=actor, reason=data["reason"]),
    ),
    CaseAction(
        name="request_closure",
        label="Request closure approval",
        form_class=case_forms.RequiredReasonForm,
        perform=lambda case, actor, data: services.approval_request(
            actor=actor, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason=data["reason"]
        ),
        permission="cases.request_approval",
        states=(CaseState.IN_PROGRESS, CaseState.VERIFIED),
    ),
    CaseAction(
        name="request_risk_acceptance",
        label="Request risk acceptance",
        form_class=case_forms.RiskAcceptanceRequestForm,
        perform=lambda case, actor, data: services.approval_request(
            actor=actor,
            case_id=case.pk,
            kind=ApprovalKind.RISK_ACCEPTANCE,
            reason=data["reason"],
            risk_expires_on=data["risk_expires_on"],
        ),
        permission="cases.request_approval",
        states=(CaseState.CONFIRMED, CaseState.ASSIGNED, CaseState.IN_PROGRESS),
    ),
    CaseAction(
        name="add_action_item",
        label="Add action item",
        form_class=case_forms.ActionItemForm,
        perform=lambda case, actor, data: services.action_item_add(actor=actor, case_id=case.pk, **data),
        permission="cases.add_actionitem",
        states=OPEN_STATES,
    ),
    CaseAction(
        name="capture_evidence",
        label="Capture evidence",
        form_class=case_forms.EvidenceForm,
        perform=lambda case, actor, data: services.evidence_capture(actor=actor, case_id=case.pk, **data),
        permission="cases.add_evidence",
        states=OPEN_STATES,
        multipart=True,
    ),
    CaseAction(
        name="add_step",
        label="Add attack-path step",
        form_class=case_forms.AttackPathStepForm,
        perform=lambda case, actor, data: services.attack_path_step_add(actor=actor, case_id=case.pk, **data),
        permission="cases.add_attackpathstep",
        states=OPEN_STATES,
        kinds=(CaseKind.ATTACK_PATH_REVIEW,),
    ),
    CaseAction(
        name="link_identity",
        label="Link identity",
        form_class=case_forms.LinkIdentityForm,
        perform=lambda case, actor, data: services.case_link_identity(
            actor=actor, case_id=case.pk, nhi_id=data["nhi"].pk
        ),
        permission="cases.change_case",
        states=OPEN_STATES,
    ),
    CaseAction(
        name="map_control",
        label="Map to control",
        form_class=case_forms.MapControlForm,
        perform=lambda case, actor, data: mapping.case_mapping_add(
            actor=actor, case_id=case.pk, control_id=data["control"].pk, rationale=data["rationale"]
        ),
        permission="cases.map_case",
    ),
    CaseAction(
        name="unmap_control",
        label="Remove control mapping",
        form_class=case_forms.UnmapControlForm,
        perform=lambda case, actor, data: mapping.case_mapping_remove(
            actor=actor, case_id=case.pk, control_id=data["control"].pk, rationale=data["rationale"]
        ),
        permission="cases.map_case",
    ),
    CaseAction(
        name="comment",
        label="Comment",
        form_class=case_forms.CommentForm,
        perform=lambda case, actor, data: services.comment_add(
            actor=actor, case_id=case.pk, body=data["body"]
        ),
        permission="cases.add_comment",
    ),
)
ACTIONS_BY_NAME = {action.name: action for action in ACTIONS}


def _blocked_by(case: Case, action: CaseAction) -> tuple[str, ...]:
    if action.name == "request_closure":
        if case.severity < Severity.HIGH:
            return ("Only high and critical cases need a closure approval.",)
        if case.approvals.filter(
            kind=ApprovalKind.CLOSURE, status__in=(ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
        ).exists():
            return ("A closure approval is already pending or given.",)
    if (
        action.name == "request_risk_acceptance"
        and case.approvals.filter(kind=ApprovalKind.RISK_ACCEPTANCE, status=ApprovalStatus.PENDING).exists()
    ):
        return ("A risk-acceptance request is already pending.",)
    if action.name == "unmap_control" and not case.control_mappings.filter(is_active=True).exists():
        return ("No control is mapped to this case.",)
    if action.transition is None:
        return ()
    return tuple(
        check.refusal
        for check in transition_guards(case, action.transition)
        if check not in action.satisfied_by_form and not check(case)
    )


def _offered(case: Case, action: CaseAction) -> bool:
    if action.kinds and case.kind not in action.kinds:
        return False
    if action.transition is not None:
        return getattr(case, action.transition)._django_fsm.get_transition(case.state) is not None
    return not action.states or case.state in action.states


def available_actions(*, case: Case, user: Actor) -> list[Availability]:
    """Actions this user has the permission for and the case's state offers, with what blocks each now."""
    if not user.is_authenticated or not user.is_active or not case_is_visible(case=case, user=user):
        return []
    return [
        Availability(action=action, blocked_by=_blocked_by(case, action))
        for action in ACTIONS
        if user.has_perm(action.permission) and _offered(case, action)
    ]


def decidable_approvals(*, case: Case, user: Actor) -> list[Any]:
    """Pending requests on this case that the user may decide (four-eyes: not their own)."""
    if case.state in SETTLED_STATES or not user.has_perm("cases.decide_approval"):
        return []
    return list(case.approvals.filter(status=ApprovalStatus.PENDING).exclude(requested_by_id=user.pk))
