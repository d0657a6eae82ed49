"""The admin: assistant outputs are read-only records scoped like the API; proposals are approved through
the service, by an approver other than the submitter, and cannot be started from the admin before that."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from cases.models import ActionItem, ActionStatus
from intake.models import AssistantOutput
from portal import roles
from tests.factories import UserFactory

OUTPUTS = reverse("admin:intake_assistantoutput_changelist")
ACTION_ITEMS = reverse("admin:cases_actionitem_changelist")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def outputs(submit: Callable[..., Any], analyst: Any, platform_identity: Any) -> dict[str, AssistantOutput]:
    submit(analyst, summary="About payments-api-bot.", facts={"triggers_downstream_work": True})
    submit(analyst, summary="About ci-deployer.", nhis=[platform_identity.pk])
    return {
        "payments": AssistantOutput.objects.get(summary="About payments-api-bot."),
        "platform": AssistantOutput.objects.get(summary="About ci-deployer."),
    }


def test_it_lists_every_output_to_an_analyst(outputs: dict[str, AssistantOutput], analyst: Any) -> None:
    page = signed_in(analyst).get(OUTPUTS).content.decode()
    assert "About payments-api-bot." in page
    assert "About ci-deployer." in page


def test_it_lists_to_an_owner_only_the_outputs_about_their_identities(
    outputs: dict[str, AssistantOutput], owner: Any
) -> None:
    page = signed_in(owner).get(OUTPUTS).content.decode()
    assert "About payments-api-bot." in page
    assert "About ci-deployer." not in page
    url = reverse("admin:intake_assistantoutput_change", args=(outputs["platform"].pk,))
    assert signed_in(owner).get(url).status_code == 302  # the admin's answer to a row outside the queryset


def test_it_shows_an_output_read_only_with_its_proposals(
    outputs: dict[str, AssistantOutput], analyst: Any
) -> None:
    output = outputs["payments"]
    url = reverse("admin:intake_assistantoutput_change", args=(output.pk,))
    response = signed_in(analyst).get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="_save"' not in page
    assert escape(output.reason) in page
    assert output.case is not None
    assert output.case.reference in page


@pytest.mark.parametrize("view", ["add", "delete"])
def test_it_offers_no_way_to_add_or_delete_an_output(
    outputs: dict[str, AssistantOutput], analyst: Any, view: str
) -> None:
    args = () if view == "add" else (outputs["payments"].pk,)
    assert (
        signed_in(analyst).get(reverse(f"admin:intake_assistantoutput_{view}", args=args)).status_code == 403
    )


def test_it_refuses_to_change_an_output_by_a_post(outputs: dict[str, AssistantOutput], analyst: Any) -> None:
    output = outputs["payments"]
    url = reverse("admin:intake_assistantoutput_change", args=(output.pk,))
    signed_in(analyst).post(url, {"summary": "rewritten"})
    assert AssistantOutput.objects.get(pk=output.pk).summary == "About payments-api-bot."


def _proposal(outputs: dict[str, AssistantOutput]) -> ActionItem:
    item = outputs["payments"].recommendation_item
    assert item is not None
    return item


def _approve(user: Any, item: ActionItem) -> Any:
    return signed_in(user).post(
        ACTION_ITEMS, {"action": "approve_proposals", "_selected_action": [item.pk]}, follow=True
    )


def test_it_lets_an_approver_approve_a_proposal_from_the_action_item_list(
    outputs: dict[str, AssistantOutput], approver: Any
) -> None:
    item = _proposal(outputs)
    page = _approve(approver, item).content.decode()
    assert "1 proposal(s) approved." in page
    item.refresh_from_db()
    assert item.approved_by == approver


def test_it_does_not_offer_the_approval_to_an_analyst(
    outputs: dict[str, AssistantOutput], analyst: Any
) -> None:
    assert "approve_proposals" not in signed_in(analyst).get(ACTION_ITEMS).content.decode()
    _approve(analyst, _proposal(outputs))
    assert ActionItem.objects.get(pk=_proposal(outputs).pk).approved_at is None


def test_it_shows_the_submitter_why_it_may_not_approve_its_own_proposal(
    submit: Callable[..., Any], role_groups: None
) -> None:
    dual = UserFactory.create(username="dual")
    dual.groups.add(Group.objects.get(name=roles.ANALYST), Group.objects.get(name=roles.APPROVER))
    submit(dual, facts={"triggers_downstream_work": True})
    item = ActionItem.objects.get()
    page = _approve(dual, item).content.decode()
    assert "Four-eyes: whoever proposed an action item cannot approve it." in page
    assert ActionItem.objects.get(pk=item.pk).approved_at is None


def test_it_refuses_on_the_form_to_start_a_proposal_nobody_approved(
    outputs: dict[str, AssistantOutput], analyst: Any
) -> None:
    item = _proposal(outputs)
    url = reverse("admin:cases_actionitem_change", args=(item.pk,))
    response = signed_in(analyst).post(url, {"status": ActionStatus.IN_PROGRESS, "external_reference": ""})
    assert response.status_code == 200
    assert "This proposal has not been approved yet" in response.content.decode()
    assert ActionItem.objects.get(pk=item.pk).status == ActionStatus.OPEN


def test_it_shows_on_the_case_page_which_action_items_await_approval(
    outputs: dict[str, AssistantOutput], approver: Any
) -> None:
    case = outputs["payments"].case
    assert case is not None
    page = signed_in(approver).get(reverse("admin:cases_case_change", args=(case.pk,))).content.decode()
    assert "Requires approval" in page
    assert "Recommended: Consider decommissioning it" in page
