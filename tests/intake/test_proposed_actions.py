"""Nothing an assistant proposes runs without a person's approval in the case: proposals are created
unapproved, cannot be started or completed until someone with the approver role other than the submitter
approves them, and the database refuses a write that skips the services."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cases import services
from cases.errors import TransitionConflict
from cases.models import ActionItem, ActionStatus, CaseState
from portal import roles
from tests.factories import UserFactory


@pytest.fixture
def proposals(submit: Callable[..., Any], analyst: Any) -> list[ActionItem]:
    """A case opened by an analyst's output: its recommendation and one proposed revocation."""
    body = submit(
        analyst,
        facts={"triggers_downstream_work": True},
        proposed_actions=[{"kind": "revocation", "description": "Revoke the deploy key."}],
    ).json()
    return list(ActionItem.objects.filter(case_id=body["case"]["id"]).order_by("pk"))


@pytest.fixture
def analyst_and_approver(role_groups: None) -> Any:
    user = UserFactory.create(username="dual", first_name="Dual")
    user.groups.add(Group.objects.get(name=roles.ANALYST), Group.objects.get(name=roles.APPROVER))
    return user


def test_it_creates_each_proposal_unapproved_and_open(proposals: list[ActionItem], analyst: Any) -> None:
    assert [(item.kind, item.status, item.requires_approval) for item in proposals] == [
        ("other", "open", True),
        ("revocation", "open", True),
    ]
    assert all(item.approved_by is None and item.approved_at is None for item in proposals)
    assert all(item.created_by == analyst for item in proposals)


@pytest.mark.parametrize("status", [ActionStatus.IN_PROGRESS, ActionStatus.DONE])
@pytest.mark.parametrize("who", ["analyst", "owner"])
def test_it_refuses_to_start_or_complete_a_proposal_nobody_approved(
    proposals: list[ActionItem], persona: Callable[[str], Any], who: str, status: str
) -> None:
    item = proposals[1]
    with pytest.raises(ValidationError) as refused:
        services.action_item_set_status(actor=persona(who), action_item_id=item.pk, status=status)
    assert "nobody has approved yet" in refused.value.message_dict["status"][0]
    item.refresh_from_db()
    assert item.status == ActionStatus.OPEN
    assert item.history.count() == 1


def test_it_lets_anyone_who_may_update_it_cancel_a_proposal_without_approval(
    proposals: list[ActionItem], analyst: Any
) -> None:
    item = services.action_item_set_status(
        actor=analyst, action_item_id=proposals[1].pk, status=ActionStatus.CANCELLED
    )
    assert item.status == ActionStatus.CANCELLED


def test_it_lets_an_approver_approve_a_proposal_and_records_who_and_when(
    proposals: list[ActionItem], approver: Any
) -> None:
    item = services.action_item_approve(actor=approver, action_item_id=proposals[1].pk)
    assert item.approved_by == approver
    assert item.approved_at is not None
    latest = item.history.latest("history_date")
    assert (latest.history_user, latest.history_change_reason) == (approver, "approved")


def test_it_lets_the_work_start_and_complete_once_a_person_approved_it(
    proposals: list[ActionItem], approver: Any, analyst: Any
) -> None:
    item = proposals[1]
    services.action_item_approve(actor=approver, action_item_id=item.pk)
    services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.IN_PROGRESS)
    done = services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE)
    assert (done.status, done.completed_at is not None) == (ActionStatus.DONE, True)


def test_it_refuses_the_submitter_the_approval_of_its_own_proposal_even_with_the_approver_role(
    submit: Callable[..., Any], analyst_and_approver: Any
) -> None:
    body = submit(analyst_and_approver, facts={"triggers_downstream_work": True}).json()
    item_id = body["recommendation_item"]["id"]
    with pytest.raises(PermissionDenied, match="Four-eyes"):
        services.action_item_approve(actor=analyst_and_approver, action_item_id=item_id)
    assert ActionItem.objects.get(pk=item_id).approved_at is None


@pytest.mark.parametrize("who", ["analyst", "owner", "auditor", "outsider"])
def test_it_refuses_the_approval_to_people_without_the_approver_role(
    proposals: list[ActionItem], persona: Callable[[str], Any], who: str
) -> None:
    with pytest.raises(PermissionDenied, match=r"cases\.approve_actionitem"):
        services.action_item_approve(actor=persona(who), action_item_id=proposals[0].pk)
    assert ActionItem.objects.get(pk=proposals[0].pk).approved_at is None


def test_it_refuses_the_approval_to_the_portals_own_account(
    proposals: list[ActionItem], automation: Any
) -> None:
    with pytest.raises(PermissionDenied):
        services.action_item_approve(actor=automation, action_item_id=proposals[0].pk)


def test_it_refuses_to_approve_a_proposal_twice(proposals: list[ActionItem], approver: Any) -> None:
    services.action_item_approve(actor=approver, action_item_id=proposals[0].pk)
    with pytest.raises(TransitionConflict, match="already approved"):
        services.action_item_approve(actor=approver, action_item_id=proposals[0].pk)


def test_it_refuses_to_approve_a_cancelled_proposal(
    proposals: list[ActionItem], approver: Any, analyst: Any
) -> None:
    services.action_item_set_status(
        actor=analyst, action_item_id=proposals[0].pk, status=ActionStatus.CANCELLED
    )
    with pytest.raises(TransitionConflict, match="cancelled"):
        services.action_item_approve(actor=approver, action_item_id=proposals[0].pk)


def test_it_refuses_to_approve_an_action_item_that_is_not_a_proposal(
    case_in_state: Callable[..., Any], approver: Any
) -> None:
    item = case_in_state(CaseState.IN_PROGRESS).action_items.get()
    with pytest.raises(ValidationError, match="not a proposal"):
        services.action_item_approve(actor=approver, action_item_id=item.pk)


def test_it_leaves_action_items_added_by_a_person_free_to_be_worked_on(
    case_in_state: Callable[..., Any], analyst: Any
) -> None:
    item = case_in_state(CaseState.IN_PROGRESS).action_items.get()
    assert not item.requires_approval
    services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE)


@pytest.mark.parametrize("status", [ActionStatus.IN_PROGRESS, ActionStatus.DONE])
def test_it_has_the_database_refuse_work_on_an_unapproved_proposal_that_skips_the_services(
    proposals: list[ActionItem], status: str
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionItem.objects.filter(pk=proposals[0].pk).update(status=status)


def test_it_has_the_database_refuse_an_approval_by_the_proposer(proposals: list[ActionItem]) -> None:
    item = proposals[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionItem.objects.filter(pk=item.pk).update(approved_by=item.created_by, approved_at=timezone.now())
