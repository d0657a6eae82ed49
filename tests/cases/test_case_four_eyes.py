"""Four-eyes: severe closures and risk acceptances need a second person, and a reopen asks for them again."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cases import services
from cases.errors import CaseWorkflowError, TransitionConflict, TransitionRefused
from cases.models import Approval, ApprovalKind, ApprovalStatus, Case, CaseState, CaseTransition, Severity
from tests.cases.support import record_of


def _request_closure(case, actor):
    return services.approval_request(actor=actor, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="fixed")


def _request_risk(case, actor, *, days=30):
    return services.approval_request(
        actor=actor,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="vendor fix due",
        risk_expires_on=timezone.localdate() + timedelta(days=days),
    )


# --- Closure ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decision", ["pending", "rejected"])
def test_it_refuses_to_close_a_high_case_unless_the_closure_is_approved(
    case_in_state, analyst, approver, decision
):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = _request_closure(case, analyst)
    if decision == "rejected":
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=False, note="evidence thin")

    with pytest.raises(TransitionRefused):
        services.case_close(case_id=case.pk, actor=analyst)

    assert Case.objects.get(pk=case.pk).state == CaseState.VERIFIED


def test_an_approved_closure_lets_a_critical_case_close(case_in_state, analyst, approver):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.CRITICAL)
    approval = _request_closure(case, analyst)

    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True, note="checked")
    services.case_close(case_id=case.pk, actor=analyst)

    approval.refresh_from_db()
    assert (approval.status, approval.decided_by, approval.decision_note) == (
        ApprovalStatus.APPROVED,
        approver,
        "checked",
    )
    assert Case.objects.get(pk=case.pk).state == CaseState.CLOSED


def test_a_closure_approved_while_in_progress_still_counts_once_verified(ready_to_verify, analyst, approver):
    case = ready_to_verify(severity=Severity.HIGH)
    approval = _request_closure(case, analyst)
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)
    services.case_verify(case_id=case.pk, actor=analyst)

    services.case_close(case_id=case.pk, actor=analyst)

    assert Case.objects.get(pk=case.pk).state == CaseState.CLOSED


@pytest.mark.parametrize(
    "state", [CaseState.IDENTIFIED, CaseState.CONFIRMED, CaseState.ASSIGNED, CaseState.CLOSED]
)
def test_it_refuses_a_closure_request_outside_in_progress_and_verified(case_in_state, analyst, state):
    case = case_in_state(state, severity=Severity.HIGH)
    approvals = Approval.objects.filter(case=case).count()

    with pytest.raises(CaseWorkflowError):
        _request_closure(case, analyst)

    assert Approval.objects.filter(case=case).count() == approvals


def test_it_refuses_a_second_pending_request_of_the_same_kind(case_in_state, analyst):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    _request_closure(case, analyst)

    with pytest.raises(CaseWorkflowError):
        _request_closure(case, analyst)

    assert Approval.objects.filter(case=case).count() == 1


# --- Who decides --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("approve", [True, False])
def test_the_requester_cannot_decide_their_own_request(case_in_state, analyst_and_approver, approve):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = _request_closure(case, analyst_and_approver)

    with pytest.raises(PermissionDenied):
        services.approval_decide(
            actor=analyst_and_approver, approval_id=approval.pk, approve=approve, note="mine"
        )

    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == (ApprovalStatus.PENDING, None)


def test_a_dual_role_person_can_decide_someone_elses_request(case_in_state, analyst, analyst_and_approver):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = _request_closure(case, analyst)

    services.approval_decide(actor=analyst_and_approver, approval_id=approval.pk, approve=True)

    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == (ApprovalStatus.APPROVED, analyst_and_approver)


def test_a_decided_request_cannot_be_decided_again(case_in_state, analyst, approver):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = _request_closure(case, analyst)
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=False, note="no")

    with pytest.raises(TransitionConflict):
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    assert Approval.objects.get(pk=approval.pk).status == ApprovalStatus.REJECTED


@pytest.mark.parametrize("note", ["", "   "])
def test_rejecting_requires_a_note(case_in_state, analyst, approver, note):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = _request_closure(case, analyst)

    with pytest.raises(ValidationError):
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=False, note=note)

    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == (ApprovalStatus.PENDING, None)


# --- Risk acceptance ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [None, -1, 0, 367])
def test_it_refuses_a_risk_acceptance_without_an_expiry_within_a_year(case_in_state, analyst, days):
    case = case_in_state(CaseState.CONFIRMED)
    expires = None if days is None else timezone.localdate() + timedelta(days=days)

    with pytest.raises(ValidationError) as refused:
        services.approval_request(
            actor=analyst,
            case_id=case.pk,
            kind=ApprovalKind.RISK_ACCEPTANCE,
            reason="later",
            risk_expires_on=expires,
        )

    assert set(refused.value.message_dict) == {"risk_expires_on"}
    assert not Approval.objects.filter(case=case).exists()


@pytest.mark.parametrize("days", [1, 366])
def test_it_accepts_a_risk_acceptance_expiring_between_tomorrow_and_a_year(case_in_state, analyst, days):
    case = case_in_state(CaseState.CONFIRMED)

    approval = _request_risk(case, analyst, days=days)

    assert approval.risk_expires_on == timezone.localdate() + timedelta(days=days)


@pytest.mark.parametrize("state", [CaseState.IDENTIFIED, CaseState.VERIFIED, CaseState.DISMISSED])
def test_it_refuses_a_risk_acceptance_request_outside_confirmed_to_in_progress(case_in_state, analyst, state):
    case = case_in_state(state)

    with pytest.raises(CaseWorkflowError):
        _request_risk(case, analyst)

    assert not Approval.objects.filter(case=case).exists()


def test_approving_a_risk_acceptance_moves_the_case_to_risk_accepted(case_in_state, analyst, approver):
    case = case_in_state(CaseState.ASSIGNED)
    approval = _request_risk(case, analyst, days=45)

    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    case.refresh_from_db()
    assert case.state == CaseState.RISK_ACCEPTED
    assert case.risk_accepted_until == timezone.localdate() + timedelta(days=45)
    step = CaseTransition.objects.get(case=case, name="accept_risk")
    assert (step.source_state, step.actor) == (CaseState.ASSIGNED, approver)


def test_rejecting_a_risk_acceptance_leaves_the_case_where_it_was(case_in_state, analyst, approver):
    case = case_in_state(CaseState.ASSIGNED)
    approval = _request_risk(case, analyst)
    before = record_of(case)

    services.approval_decide(actor=approver, approval_id=approval.pk, approve=False, note="fix it instead")

    assert record_of(case) == before
    assert Approval.objects.get(pk=approval.pk).status == ApprovalStatus.REJECTED


def test_approving_a_risk_acceptance_after_the_case_moved_on_changes_nothing(
    ready_to_verify, analyst, approver
):
    case = ready_to_verify()
    approval = _request_risk(case, analyst)
    services.case_verify(case_id=case.pk, actor=analyst)
    before = record_of(case)

    with pytest.raises(TransitionConflict):
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    assert record_of(case) == before
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by) == (ApprovalStatus.PENDING, None)


def test_a_risk_acceptance_whose_expiry_passed_while_pending_cannot_be_approved(
    case_in_state, analyst, approver
):
    case = case_in_state(CaseState.CONFIRMED)
    approval = _request_risk(case, analyst, days=1)
    # The request waited in the queue past its expiry date.
    Approval.objects.filter(pk=approval.pk).update(risk_expires_on=timezone.localdate() - timedelta(days=1))
    before = record_of(case)

    with pytest.raises(ValidationError) as refused:
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    assert set(refused.value.message_dict) == {"risk_expires_on"}
    assert record_of(case) == before
    assert Approval.objects.get(pk=approval.pk).status == ApprovalStatus.PENDING


# --- Reopen supersedes --------------------------------------------------------------------------------------


def test_reopening_supersedes_the_approvals_given_before(case_in_state, analyst):
    case = case_in_state(CaseState.CLOSED, severity=Severity.HIGH)

    services.case_reopen(case_id=case.pk, actor=analyst, reason="key reused elsewhere")

    assert list(Approval.objects.filter(case=case).values_list("status", flat=True)) == [
        ApprovalStatus.SUPERSEDED
    ]


def test_reopening_a_risk_accepted_case_supersedes_its_acceptance(risk_accepted_case, analyst):
    case = risk_accepted_case()

    services.case_reopen(case_id=case.pk, actor=analyst, reason="control failed")

    approval = Approval.objects.get(case=case)
    assert approval.status == ApprovalStatus.SUPERSEDED
    assert Case.objects.get(pk=case.pk).risk_accepted_until is None


def test_a_reopened_severe_case_needs_a_new_closure_approval(case_in_state, analyst, approver, payments):
    case = case_in_state(CaseState.CLOSED, severity=Severity.HIGH)
    services.case_reopen(case_id=case.pk, actor=analyst, reason="key reused elsewhere")
    services.case_confirm(case_id=case.pk, actor=analyst)
    services.case_assign(case_id=case.pk, actor=analyst, assignee=analyst, owning_team=payments)
    services.case_start_action(case_id=case.pk, actor=analyst)
    services.case_verify(case_id=case.pk, actor=analyst)

    with pytest.raises(TransitionRefused):
        services.case_close(case_id=case.pk, actor=analyst)

    approval = _request_closure(case, analyst)
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)
    services.case_close(case_id=case.pk, actor=analyst)
    assert Case.objects.get(pk=case.pk).state == CaseState.CLOSED


# --- The database keeps the rule too ------------------------------------------------------------------------


def test_the_database_refuses_an_approval_decided_by_its_requester(case_in_state, analyst):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = _request_closure(case, analyst)
    approval.status = ApprovalStatus.APPROVED
    approval.decided_by = analyst
    approval.decided_at = timezone.now()

    with pytest.raises(IntegrityError), transaction.atomic():
        approval.save()

    assert Approval.objects.get(pk=approval.pk).decided_by is None


def test_the_database_refuses_a_bulk_update_making_the_requester_the_decider(case_in_state, analyst):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = _request_closure(case, analyst)

    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.filter(pk=approval.pk).update(decided_by=analyst, status=ApprovalStatus.APPROVED)

    assert Approval.objects.get(pk=approval.pk).status == ApprovalStatus.PENDING


def test_the_database_refuses_a_risk_acceptance_without_an_expiry(case_in_state, analyst):
    case = case_in_state(CaseState.CONFIRMED)

    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(
            case=case,
            kind=ApprovalKind.RISK_ACCEPTANCE,
            reason="forever",
            requested_by=analyst,
            requested_at=timezone.now(),
        )
