"""Every transition the case lifecycle allows, and every refusal, which must leave the case as it was."""

import pytest
from django.core.exceptions import ValidationError

from cases import services
from cases.errors import TransitionConflict, TransitionRefused
from cases.models import (
    ActionStatus,
    ApprovalKind,
    Case,
    CaseState,
    CaseTransition,
    DismissalReason,
    Severity,
    action_items_done,
    closure_approved_if_severe,
    has_action_items,
    has_evidence,
)
from tests.cases.support import record_of
from tests.factories import UserFactory

# --- Allowed ------------------------------------------------------------------------------------------------


def test_it_confirms_an_identified_case(open_case, analyst):
    case = open_case()

    services.case_confirm(case_id=case.pk, actor=analyst, reason="real key")

    assert Case.objects.get(pk=case.pk).state == CaseState.CONFIRMED


def test_it_assigns_a_confirmed_case_to_a_person_and_a_team(case_in_state, analyst, owner, payments):
    case = case_in_state(CaseState.CONFIRMED)

    services.case_assign(case_id=case.pk, actor=analyst, assignee=owner, owning_team=payments)

    case.refresh_from_db()
    assert (case.state, case.assignee, case.owning_team) == (CaseState.ASSIGNED, owner, payments)


def test_it_reassigns_an_assigned_case(case_in_state, analyst, owner, platform):
    case = case_in_state(CaseState.ASSIGNED)

    services.case_assign(
        case_id=case.pk, actor=analyst, assignee=owner, owning_team=platform, reason="handover"
    )

    case.refresh_from_db()
    assert (case.state, case.assignee, case.owning_team) == (CaseState.ASSIGNED, owner, platform)


def test_it_starts_action_on_an_assigned_case_with_an_action_item(case_in_state, analyst, payments):
    case = case_in_state(CaseState.ASSIGNED)
    services.action_item_add(
        actor=analyst, case_id=case.pk, kind="rotation", title="Rotate", owning_team=payments
    )

    services.case_start_action(case_id=case.pk, actor=analyst)

    assert Case.objects.get(pk=case.pk).state == CaseState.IN_PROGRESS


def test_it_verifies_when_every_item_is_done_and_evidence_exists(ready_to_verify, analyst):
    case = ready_to_verify()

    services.case_verify(case_id=case.pk, actor=analyst)

    case.refresh_from_db()
    assert case.state == CaseState.VERIFIED
    assert case.verified_at is not None


def test_it_verifies_when_cancelled_items_sit_beside_a_done_one(ready_to_verify, analyst, payments):
    case = ready_to_verify()
    extra = services.action_item_add(
        actor=analyst, case_id=case.pk, kind="other", title="Spare", owning_team=payments
    )
    services.action_item_set_status(actor=analyst, action_item_id=extra.pk, status=ActionStatus.CANCELLED)

    services.case_verify(case_id=case.pk, actor=analyst)

    assert Case.objects.get(pk=case.pk).state == CaseState.VERIFIED


@pytest.mark.parametrize("severity", [Severity.LOW, Severity.MEDIUM])
def test_it_closes_a_verified_low_or_medium_case_without_approval(case_in_state, analyst, severity):
    case = case_in_state(CaseState.VERIFIED, severity=severity)

    services.case_close(case_id=case.pk, actor=analyst)

    case.refresh_from_db()
    assert case.state == CaseState.CLOSED
    assert case.closed_at is not None


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.CRITICAL])
def test_it_closes_a_verified_severe_case_with_an_approved_closure(
    case_in_state, analyst, approver, severity
):
    case = case_in_state(CaseState.VERIFIED, severity=severity)
    approval = services.approval_request(
        actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
    )
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    services.case_close(case_id=case.pk, actor=analyst)

    assert Case.objects.get(pk=case.pk).state == CaseState.CLOSED


@pytest.mark.parametrize("state", [CaseState.IDENTIFIED, CaseState.CONFIRMED, CaseState.ASSIGNED])
def test_it_dismisses_a_case_that_has_not_reached_action(case_in_state, analyst, state):
    case = case_in_state(state)

    services.case_dismiss(
        case_id=case.pk, actor=analyst, dismissal_reason=DismissalReason.BENIGN, reason="test key"
    )

    case.refresh_from_db()
    assert (case.state, case.dismissal_reason) == (CaseState.DISMISSED, DismissalReason.BENIGN)


@pytest.mark.parametrize("state", [CaseState.CONFIRMED, CaseState.ASSIGNED, CaseState.IN_PROGRESS])
def test_it_accepts_the_risk_when_an_approver_approves_the_request(risk_accepted_case, state):
    case = risk_accepted_case(from_state=state)

    assert case.state == CaseState.RISK_ACCEPTED
    assert case.risk_accepted_until is not None


@pytest.mark.parametrize(
    "state", [CaseState.VERIFIED, CaseState.CLOSED, CaseState.DISMISSED, CaseState.RISK_ACCEPTED]
)
def test_it_reopens_a_verified_or_settled_case(case_in_state, risk_accepted_case, analyst, state):
    case = risk_accepted_case() if state == CaseState.RISK_ACCEPTED else case_in_state(state)

    services.case_reopen(case_id=case.pk, actor=analyst, reason="key seen again")

    case.refresh_from_db()
    assert case.state == CaseState.IDENTIFIED
    assert (case.dismissal_reason, case.risk_accepted_until, case.verified_at, case.closed_at) == (
        "",
        None,
        None,
        None,
    )


# --- Refused: wrong state -----------------------------------------------------------------------------------

WRONG_STATE = [
    ("confirm", CaseState.CONFIRMED),
    ("confirm", CaseState.CLOSED),
    ("assign", CaseState.IDENTIFIED),
    ("assign", CaseState.IN_PROGRESS),
    ("start_action", CaseState.CONFIRMED),
    ("start_action", CaseState.IN_PROGRESS),
    ("verify", CaseState.ASSIGNED),
    ("verify", CaseState.VERIFIED),
    ("close", CaseState.IN_PROGRESS),
    ("close", CaseState.CLOSED),
    ("dismiss", CaseState.IN_PROGRESS),
    ("dismiss", CaseState.VERIFIED),
    ("dismiss", CaseState.DISMISSED),
    ("reopen", CaseState.IDENTIFIED),
    ("reopen", CaseState.IN_PROGRESS),
]


def _call(name, case, actor, team):
    calls = {
        "confirm": lambda: services.case_confirm(case_id=case.pk, actor=actor),
        "assign": lambda: services.case_assign(
            case_id=case.pk, actor=actor, assignee=actor, owning_team=team
        ),
        "start_action": lambda: services.case_start_action(case_id=case.pk, actor=actor),
        "verify": lambda: services.case_verify(case_id=case.pk, actor=actor),
        "close": lambda: services.case_close(case_id=case.pk, actor=actor),
        "dismiss": lambda: services.case_dismiss(
            case_id=case.pk, actor=actor, dismissal_reason=DismissalReason.FALSE_POSITIVE, reason="noise"
        ),
        "reopen": lambda: services.case_reopen(case_id=case.pk, actor=actor, reason="again"),
    }
    return calls[name]()


@pytest.mark.parametrize(("name", "state"), WRONG_STATE)
def test_it_rejects_a_transition_from_a_wrong_state(case_in_state, analyst, payments, name, state):
    case = case_in_state(state)
    before = record_of(case)

    with pytest.raises(TransitionConflict):
        _call(name, case, analyst, payments)

    assert record_of(case) == before


# --- Refused: guards ----------------------------------------------------------------------------------------


def test_it_rejects_assign_without_an_assignee_naming_the_field(case_in_state, analyst, payments):
    case = case_in_state(CaseState.CONFIRMED)
    before = record_of(case)

    with pytest.raises(ValidationError) as refused:
        services.case_assign(case_id=case.pk, actor=analyst, assignee=None, owning_team=payments)

    assert set(refused.value.message_dict) == {"assignee"}
    assert record_of(case) == before


def test_it_rejects_assign_without_a_team_naming_the_field(case_in_state, analyst):
    case = case_in_state(CaseState.CONFIRMED)
    before = record_of(case)

    with pytest.raises(ValidationError) as refused:
        services.case_assign(case_id=case.pk, actor=analyst, assignee=analyst, owning_team=None)

    assert set(refused.value.message_dict) == {"owning_team"}
    assert record_of(case) == before


def test_it_rejects_assign_to_an_inactive_user(case_in_state, analyst, payments):
    case = case_in_state(CaseState.CONFIRMED)
    leaver = UserFactory.create(username="leaver", is_active=False)
    before = record_of(case)

    with pytest.raises(ValidationError) as refused:
        services.case_assign(case_id=case.pk, actor=analyst, assignee=leaver, owning_team=payments)

    assert set(refused.value.message_dict) == {"assignee"}
    assert record_of(case) == before


def test_it_rejects_start_action_without_action_items(case_in_state, analyst):
    case = case_in_state(CaseState.ASSIGNED)
    before = record_of(case)

    with pytest.raises(TransitionRefused) as refused:
        services.case_start_action(case_id=case.pk, actor=analyst)

    assert refused.value.refusals == [has_action_items.refusal]
    assert record_of(case) == before


def test_it_rejects_start_action_when_every_action_item_is_cancelled(case_in_state, analyst, payments):
    case = case_in_state(CaseState.ASSIGNED)
    item = services.action_item_add(
        actor=analyst, case_id=case.pk, kind="other", title="Maybe", owning_team=payments
    )
    services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.CANCELLED)
    before = record_of(case)

    with pytest.raises(TransitionRefused):
        services.case_start_action(case_id=case.pk, actor=analyst)

    assert record_of(case) == before


@pytest.mark.parametrize("status", [ActionStatus.OPEN, ActionStatus.IN_PROGRESS])
def test_it_rejects_verify_with_an_unfinished_action_item(ready_to_verify, analyst, payments, status):
    case = ready_to_verify()
    item = services.action_item_add(
        actor=analyst, case_id=case.pk, kind="ticket", title="Audit", owning_team=payments
    )
    services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=status)
    before = record_of(case)

    with pytest.raises(TransitionRefused) as refused:
        services.case_verify(case_id=case.pk, actor=analyst)

    assert refused.value.refusals == [action_items_done.refusal]
    assert record_of(case) == before


def test_it_rejects_verify_when_no_action_item_is_done(case_in_state, analyst):
    case = case_in_state(CaseState.IN_PROGRESS)
    item = case.action_items.get()
    services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.CANCELLED)
    services.evidence_capture(actor=analyst, case_id=case.pk, kind="note", title="Log", note="nothing to do")
    before = record_of(case)

    with pytest.raises(TransitionRefused) as refused:
        services.case_verify(case_id=case.pk, actor=analyst)

    assert refused.value.refusals == [action_items_done.refusal]
    assert record_of(case) == before


def test_it_rejects_verify_without_evidence(case_in_state, analyst):
    case = case_in_state(CaseState.IN_PROGRESS)
    services.action_item_set_status(
        actor=analyst, action_item_id=case.action_items.get().pk, status=ActionStatus.DONE
    )
    before = record_of(case)

    with pytest.raises(TransitionRefused) as refused:
        services.case_verify(case_id=case.pk, actor=analyst)

    assert refused.value.refusals == [has_evidence.refusal]
    assert record_of(case) == before


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.CRITICAL])
def test_it_rejects_close_of_a_severe_case_without_approval(ready_to_verify, analyst, severity):
    case = ready_to_verify(severity=severity)
    services.case_verify(case_id=case.pk, actor=analyst)
    before = record_of(case)

    with pytest.raises(TransitionRefused) as refused:
        services.case_close(case_id=case.pk, actor=analyst)

    assert refused.value.refusals == [closure_approved_if_severe.refusal]
    assert record_of(case) == before


@pytest.mark.parametrize("reason", ["", "   "])
def test_it_rejects_dismiss_without_a_reason(open_case, analyst, reason):
    case = open_case()
    before = record_of(case)

    with pytest.raises(ValidationError) as refused:
        services.case_dismiss(
            case_id=case.pk, actor=analyst, dismissal_reason=DismissalReason.FALSE_POSITIVE, reason=reason
        )

    assert set(refused.value.message_dict) == {"reason"}
    assert record_of(case) == before


@pytest.mark.parametrize("dismissal_reason", ["", "duplicate", "FALSE_POSITIVE"])
def test_it_rejects_dismiss_with_a_bad_dismissal_reason(open_case, analyst, dismissal_reason):
    case = open_case()
    before = record_of(case)

    with pytest.raises(ValidationError) as refused:
        services.case_dismiss(
            case_id=case.pk, actor=analyst, dismissal_reason=dismissal_reason, reason="noise"
        )

    assert set(refused.value.message_dict) == {"dismissal_reason"}
    assert record_of(case) == before


@pytest.mark.parametrize("reason", ["", "  \n"])
def test_it_rejects_reopen_without_a_reason(case_in_state, analyst, reason):
    case = case_in_state(CaseState.CLOSED)
    before = record_of(case)

    with pytest.raises(ValidationError) as refused:
        services.case_reopen(case_id=case.pk, actor=analyst, reason=reason)

    assert set(refused.value.message_dict) == {"reason"}
    assert record_of(case) == before


def test_the_walk_through_every_state_logs_each_step_once(case_in_state, analyst):
    case = case_in_state(CaseState.CLOSED, severity=Severity.HIGH)

    names = list(CaseTransition.objects.filter(case=case).values_list("name", flat=True))

    assert names == ["open", "confirm", "assign", "start_action", "verify", "close"]
