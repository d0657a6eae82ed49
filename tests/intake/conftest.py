"""Fixtures for the AI/chat intake: a payload builder, the submitting client and the portal's own account."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from cases.models import ActionItem, Case, CaseTransition, Comment, Evidence
from intake.models import AssistantOutput, ProposedAction
from portal import roles

INTAKE_URL = "/api/v1/intake/"
NO_FACTS = {
    "needs_multi_person_review": False,
    "triggers_downstream_work": False,
    "must_be_retained_as_evidence": False,
    "depends_on_fresh_context": False,
}


def payload(**overrides: Any) -> dict[str, Any]:
    """A well-formed advisory about nothing in particular; tests say what differs."""
    facts = {**NO_FACTS, **overrides.pop("facts", {})}
    body: dict[str, Any] = {
        "summary": "payments-api-bot has not been used for 200 days.",
        "recommendation": "Consider decommissioning it after checking with its owners.",
        "nhis": [],
        "proposed_actions": [],
        "source": {"assistant": "SecOps Copilot 2.1", "conversation_ref": "chat-8812"},
        "facts": facts,
    }
    body.update(overrides)
    return body


@pytest.fixture
def automation(role_groups: None) -> Any:
    return roles.automation_user()


@pytest.fixture
def submit(api: Callable[[Any], APIClient], payments_identity: Any) -> Callable[..., Any]:
    """POST an output as a persona (default: about payments_identity); returns the response."""

    def post(user: Any, body: dict[str, Any] | None = None, **overrides: Any) -> Any:
        if body is None:
            overrides.setdefault("nhis", [payments_identity.pk])
            body = payload(**overrides)
        return api(user).post(INTAKE_URL, body, format="json")

    return post


def stored() -> dict[str, int]:
    """Every table a submission writes to: a refused submission must leave each as it was."""
    return {
        "outputs": AssistantOutput.objects.count(),
        "output_history": AssistantOutput.history.count(),
        "proposals": ProposedAction.objects.count(),
        "cases": Case.objects.count(),
        "case_history": Case.history.count(),
        "transitions": CaseTransition.objects.count(),
        "action_items": ActionItem.objects.count(),
        "evidence": Evidence.objects.count(),
        "comments": Comment.objects.count(),
    }
