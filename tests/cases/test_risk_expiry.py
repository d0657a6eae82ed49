"""Accepted risks end: the day after a risk acceptance's last day, its case is reopened (frozen time)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied

from cases import services
from cases.errors import CaseWorkflowError, TransitionConflict
from cases.models import ApprovalStatus, Case, CaseState, CaseTransition, Comment, Severity
from cases.sweeps import expired_risk_acceptances_reopen
from portal import roles

ACCEPTED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LAST_DAY = date(2026, 5, 31)  # the risk_accepted_case fixture accepts for 90 days


@pytest.fixture
def automation(role_groups):
    return roles.automation_user()


@pytest.fixture
def frozen():
    with time_machine.travel(ACCEPTED, tick=False) as traveller:
        yield traveller


@pytest.fixture
def accepted(risk_accepted_case, frozen):
    case = risk_accepted_case(severity=Severity.HIGH)
    assert case.risk_accepted_until == LAST_DAY
    return case


def on(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def reopenings(case):
    return CaseTransition.objects.filter(case=case, name="reopen").count()


def test_an_acceptance_is_not_reopened_on_its_last_day(accepted, automation, frozen):
    frozen.move_to(on(LAST_DAY, 23))

    assert expired_risk_acceptances_reopen(actor=automation) == 0
    assert Case.objects.get(pk=accepted.pk).state == CaseState.RISK_ACCEPTED


def test_an_expired_acceptance_reopens_its_case_with_the_reason_history_and_a_comment(
    accepted, automation, frozen
):
    frozen.move_to(on(LAST_DAY + timedelta(days=1)))

    assert expired_risk_acceptances_reopen(actor=automation) == 1

    case = Case.objects.get(pk=accepted.pk)
    assert case.state == CaseState.IDENTIFIED
    assert case.risk_accepted_until is None
    step = CaseTransition.objects.filter(case=case).latest("at")
    assert (step.name, step.actor, step.reason) == (
        "reopen",
        automation,
        "risk acceptance expired on 2026-05-31",
    )
    entry = Case.history.filter(id=case.pk).latest("history_date")
    assert entry.history_change_reason == "reopen: risk acceptance expired on 2026-05-31"
    assert entry.history_user == automation
    comment = Comment.objects.get(case=case)
    assert comment.author == automation
    assert "ran until 2026-05-31 and has expired" in comment.body


def test_the_approval_behind_the_expired_acceptance_is_superseded(accepted, automation, frozen):
    frozen.move_to(on(LAST_DAY + timedelta(days=1)))

    expired_risk_acceptances_reopen(actor=automation)

    assert list(accepted.approvals.values_list("status", flat=True)) == [ApprovalStatus.SUPERSEDED]


def test_the_reopened_case_gets_a_new_due_date_from_the_reopening(accepted, automation, frozen):
    reopened_at = on(LAST_DAY + timedelta(days=1), 0)
    frozen.move_to(reopened_at)

    expired_risk_acceptances_reopen(actor=automation)

    assert Case.objects.get(pk=accepted.pk).due_at == reopened_at + timedelta(hours=72)


def test_running_the_sweep_twice_reopens_once(accepted, automation, frozen):
    frozen.move_to(on(LAST_DAY + timedelta(days=3)))

    assert [expired_risk_acceptances_reopen(actor=automation) for _ in range(2)] == [1, 0]
    assert reopenings(accepted) == 1
    assert Comment.objects.filter(case=accepted).count() == 1


def test_a_case_reopened_by_hand_meanwhile_is_left_alone(accepted, analyst, automation, frozen):
    services.case_reopen(case_id=accepted.pk, actor=analyst, reason="compensating control removed")
    frozen.move_to(on(LAST_DAY + timedelta(days=1)))

    assert expired_risk_acceptances_reopen(actor=automation) == 0
    assert reopenings(accepted) == 1


def test_only_expired_acceptances_reopen(risk_accepted_case, automation, frozen):
    expired = risk_accepted_case()
    Case.objects.filter(pk=expired.pk).update(risk_accepted_until=date(2026, 3, 1))
    running = risk_accepted_case()

    assert expired_risk_acceptances_reopen(actor=automation) == 1
    assert Case.objects.get(pk=expired.pk).state == CaseState.IDENTIFIED
    assert Case.objects.get(pk=running.pk).state == CaseState.RISK_ACCEPTED


def test_the_service_refuses_an_acceptance_that_still_runs_or_a_case_not_in_accepted_risk(
    accepted, open_case, automation
):
    with pytest.raises(CaseWorkflowError, match="runs until 2026-05-31"):
        services.case_risk_acceptance_expire(actor=automation, case_id=accepted.pk)
    with pytest.raises(TransitionConflict, match="not accepted risk"):
        services.case_risk_acceptance_expire(actor=automation, case_id=open_case().pk)


@pytest.mark.parametrize("persona_name", ["approver", "auditor", "owner"])
def test_personas_without_the_reopen_permission_cannot_expire_an_acceptance(
    accepted, persona, frozen, persona_name
):
    frozen.move_to(on(LAST_DAY + timedelta(days=1)))

    with pytest.raises(PermissionDenied, match=r"cases\.reopen_case"):
        services.case_risk_acceptance_expire(actor=persona(persona_name), case_id=accepted.pk)
