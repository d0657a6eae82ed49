"""Fixtures for the case-lifecycle tests: cases one step before a transition, and the personas by name."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from cases import services
from cases.models import ActionStatus, ApprovalKind, Case, CaseKind, CaseState, EvidenceKind, Severity
from portal import roles
from tests.factories import UserFactory


@pytest.fixture
def ready_to_verify(case_in_state: Callable[..., Case], analyst: Any) -> Callable[..., Case]:
    """An in-progress case whose only action item is done and which has one evidence item."""

    def make(*, severity: int = Severity.MEDIUM, kind: str = CaseKind.SECRET_EXPOSURE) -> Case:
        case = case_in_state(CaseState.IN_PROGRESS, severity=severity, kind=kind)
        item = case.action_items.get()
        services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE)
        services.evidence_capture(
            actor=analyst, case_id=case.pk, kind=EvidenceKind.NOTE, title="Rotation log", note="Key rotated"
        )
        return case

    return make


@pytest.fixture
def risk_accepted_case(
    case_in_state: Callable[..., Case], analyst: Any, approver: Any
) -> Callable[..., Case]:
    def make(*, from_state: str = CaseState.CONFIRMED, severity: int = Severity.MEDIUM) -> Case:
        case = case_in_state(from_state, severity=severity)
        approval = services.approval_request(
            actor=analyst,
            case_id=case.pk,
            kind=ApprovalKind.RISK_ACCEPTANCE,
            reason="compensating control",
            risk_expires_on=timezone.localdate() + timedelta(days=90),
        )
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)
        return Case.objects.get(pk=case.pk)

    return make


@pytest.fixture
def analyst_and_approver(role_groups: None) -> Any:
    """One person in both roles: may request and decide, so only the four-eyes rule stops self-approval."""
    user = UserFactory.create(username="dual", first_name="Dual")
    user.groups.add(Group.objects.get(name=roles.ANALYST), Group.objects.get(name=roles.APPROVER))
    return user
