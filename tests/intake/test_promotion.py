"""The rule applied: each fact promotes the output into a case (opened or joined), none leaves an advisory,
and the response says which happened and why."""

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from cases.models import ActionItem, Case, CaseKind, CaseOrigin, CaseState, Evidence, Severity
from intake.models import AssistantOutput, Outcome
from intake.rules import Facts
from intake.services import assistant_output_submit
from nhi_inventory.models import Criticality, PrivilegeLevel
from tests.factories import CredentialFactory, NonHumanIdentityFactory
from tests.intake.conftest import stored

FACT_WORDS = {
    "needs_multi_person_review": "it needs review by more than one person",
    "triggers_downstream_work": "it triggers downstream work",
    "must_be_retained_as_evidence": "it must be retained as evidence",
    "depends_on_fresh_context": "it depends on fresh context",
}


@pytest.mark.parametrize("fact", FACT_WORDS)
def test_it_opens_a_case_on_each_fact_alone_and_says_which(
    submit: Callable[..., Any], analyst: Any, payments_identity: Any, fact: str
) -> None:
    response = submit(analyst, facts={fact: True})
    assert response.status_code == 201
    body = response.json()
    assert body["outcome"] == "case_opened"
    assert body["triggers"] == [fact]
    assert FACT_WORDS[fact] in body["reason"]
    case = Case.objects.get()
    assert body["case"]["id"] == case.pk
    assert body["case"]["url"].endswith(f"/api/v1/cases/{case.pk}/")
    assert case.reference in body["reason"]
    assert (case.kind, case.origin, case.state) == (
        CaseKind.AI_OUTPUT,
        CaseOrigin.ASSISTANT,
        CaseState.IDENTIFIED,
    )
    assert list(case.identities.all()) == [payments_identity]


def test_it_keeps_an_output_with_no_fact_and_no_proposal_as_an_advisory_without_a_case(
    submit: Callable[..., Any], analyst: Any
) -> None:
    response = submit(analyst)
    assert response.status_code == 201
    body = response.json()
    assert (body["outcome"], body["case"], body["triggers"]) == ("advisory", None, [])
    assert "changes neither ownership, state nor evidence requirements" in body["reason"]
    assert "no case was opened" in body["reason"]
    assert Case.objects.count() == 0
    assert ActionItem.objects.count() == 0
    output = AssistantOutput.objects.get()
    assert output.outcome == Outcome.ADVISORY
    assert output.history.count() == 1


def test_it_keeps_the_proposed_actions_of_an_advisory_nowhere_but_in_its_record(
    submit: Callable[..., Any], analyst: Any
) -> None:
    # A proposal makes it a case, so an advisory has none; its recommendation stays text.
    body = submit(analyst).json()
    assert body["recommendation_item"] is None
    assert body["proposed_actions"] == []


def test_it_routes_the_work_to_the_identitys_team_when_the_output_changes_ownership(
    submit: Callable[..., Any], analyst: Any, payments: Any
) -> None:
    body = submit(
        analyst,
        facts={"triggers_downstream_work": True},
        proposed_actions=[{"kind": "ticket", "description": "Open a change ticket for the key rotation."}],
    ).json()
    assert body["changes"] == {"ownership": True, "state": False, "evidence_requirements": False}
    case = Case.objects.get()
    assert case.owning_team == payments
    items = list(case.action_items.order_by("pk"))
    assert [(item.kind, item.owning_team) for item in items] == [("other", payments), ("ticket", payments)]
    assert items[0].title.startswith("Recommended: Consider decommissioning it")
    assert items[1].title == "Open a change ticket for the key rotation."


def test_it_opens_a_high_severity_case_when_the_output_needs_more_than_one_reviewer(
    submit: Callable[..., Any], analyst: Any
) -> None:
    body = submit(analyst, facts={"needs_multi_person_review": True}).json()
    assert body["changes"] == {"ownership": False, "state": True, "evidence_requirements": False}
    # High: closing it needs a closure approval by a second person.
    assert Case.objects.get().severity == Severity.HIGH


def test_it_opens_a_medium_severity_case_when_no_second_person_or_containment_is_involved(
    submit: Callable[..., Any], analyst: Any
) -> None:
    submit(analyst, facts={"must_be_retained_as_evidence": True})
    assert Case.objects.get().severity == Severity.MEDIUM


def test_it_promotes_a_proposed_revocation_even_when_the_assistant_states_no_fact(
    submit: Callable[..., Any], analyst: Any
) -> None:
    body = submit(analyst, proposed_actions=[{"kind": "revocation", "description": "Revoke the key."}]).json()
    assert body["outcome"] == "case_opened"
    assert body["changes"] == {"ownership": True, "state": True, "evidence_requirements": False}
    assert "it proposes revocation, which changes an identity's state" in body["reason"]
    assert Case.objects.get().severity == Severity.HIGH


def test_it_keeps_the_output_as_evidence_on_the_case_when_it_must_be_retained(
    submit: Callable[..., Any], analyst: Any, payments_identity: Any
) -> None:
    body = submit(
        analyst,
        facts={"must_be_retained_as_evidence": True},
        proposed_actions=[{"kind": "ticket", "description": "File it with the audit team."}],
    ).json()
    evidence = Evidence.objects.get(pk=body["evidence"])
    assert evidence.case_id == body["case"]["id"]
    assert evidence.kind == "note"
    assert evidence.sha256 == hashlib.sha256(evidence.note.encode()).hexdigest()
    kept = json.loads(evidence.note)
    assert kept["reference"] == body["reference"]
    assert kept["facts"]["must_be_retained_as_evidence"] is True
    assert kept["nhis"] == [{"id": payments_identity.pk, "name": "payments-api-bot"}]
    assert kept["proposed_actions"] == [{"kind": "ticket", "description": "File it with the audit team."}]
    assert kept["outcome"] == "case_opened"
    assert kept["reason"] == body["reason"]
    assert "kept as evidence" in body["reason"]
    # Canonical: sorted keys, no spaces, so the same output always hashes the same.
    assert evidence.note == json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert Case.objects.get().has_evidence


def test_it_captures_no_evidence_when_retention_is_not_required(
    submit: Callable[..., Any], analyst: Any
) -> None:
    body = submit(analyst, facts={"triggers_downstream_work": True}).json()
    assert (body["evidence"], body["context_evidence"]) == (None, None)
    assert Evidence.objects.count() == 0


def test_it_captures_the_identities_current_context_when_the_decision_depends_on_it(
    submit: Callable[..., Any], analyst: Any, payments_identity: Any
) -> None:
    payments_identity.criticality = Criticality.CRITICAL
    payments_identity.privilege_level = PrivilegeLevel.ADMIN
    payments_identity.internet_facing = True
    payments_identity.save()
    body = submit(analyst, facts={"depends_on_fresh_context": True}).json()
    context = json.loads(Evidence.objects.get(pk=body["context_evidence"]).note)
    (identity,) = context["identities"]
    assert (identity["criticality"], identity["privilege_level"], identity["internet_facing"]) == (
        "Critical",
        "Administrative",
        True,
    )
    assert body["evidence"] is None  # retention was not asked for
    assert "current criticality, privilege and exposure were captured" in body["reason"]


def test_it_joins_the_open_case_of_the_same_kind_for_the_same_identity(
    submit: Callable[..., Any], analyst: Any, open_case: Callable[..., Case]
) -> None:
    existing = open_case(kind=CaseKind.AI_OUTPUT)
    before = Case.objects.count()
    body = submit(analyst, facts={"triggers_downstream_work": True}).json()
    assert body["outcome"] == "case_joined"
    assert body["case"]["id"] == existing.pk
    assert f"Joined {existing.reference}" in body["reason"]
    assert "concerning payments-api-bot" in body["reason"]
    assert "it triggers downstream work" in body["reason"]
    assert Case.objects.count() == before
    assert existing.action_items.filter(requires_approval=True).count() == 1
    assert "Assistant output" in existing.comments.get().body


def test_it_joins_the_oldest_of_two_open_cases(
    submit: Callable[..., Any], analyst: Any, open_case: Callable[..., Case]
) -> None:
    oldest = open_case(kind=CaseKind.AI_OUTPUT)
    open_case(kind=CaseKind.AI_OUTPUT)
    assert submit(analyst, facts={"triggers_downstream_work": True}).json()["case"]["id"] == oldest.pk


def test_it_opens_a_new_case_when_the_open_case_of_the_identity_is_of_another_kind(
    submit: Callable[..., Any], analyst: Any, open_case: Callable[..., Case]
) -> None:
    other_kind = open_case(kind=CaseKind.SECRET_EXPOSURE)
    body = submit(analyst, facts={"triggers_downstream_work": True}).json()
    assert body["outcome"] == "case_opened"
    assert body["case"]["id"] != other_kind.pk


def test_it_joins_an_open_case_of_the_kind_the_output_names(
    submit: Callable[..., Any], analyst: Any, open_case: Callable[..., Case]
) -> None:
    exposure_case = open_case(kind=CaseKind.SECRET_EXPOSURE)
    body = submit(analyst, facts={"triggers_downstream_work": True}, case_kind="secret_exposure").json()
    assert (body["outcome"], body["case"]["id"]) == ("case_joined", exposure_case.pk)


@pytest.mark.parametrize("state", [CaseState.VERIFIED, CaseState.CLOSED, CaseState.DISMISSED])
def test_it_opens_a_new_case_rather_than_join_one_no_longer_open_to_work(
    submit: Callable[..., Any], analyst: Any, case_in_state: Callable[..., Case], state: str
) -> None:
    done = case_in_state(state, kind=CaseKind.AI_OUTPUT)
    body = submit(analyst, facts={"triggers_downstream_work": True}).json()
    assert body["outcome"] == "case_opened"
    assert body["case"]["id"] != done.pk


def test_it_opens_a_new_case_when_the_open_case_concerns_another_identity(
    submit: Callable[..., Any], analyst: Any, open_case: Callable[..., Case], platform_identity: Any
) -> None:
    open_case(kind=CaseKind.AI_OUTPUT, identities=[platform_identity])
    assert submit(analyst, facts={"triggers_downstream_work": True}).json()["outcome"] == "case_opened"


def test_it_links_the_other_identities_of_the_output_to_the_case_it_joins(
    submit: Callable[..., Any],
    analyst: Any,
    open_case: Callable[..., Case],
    payments_identity: Any,
    platform_identity: Any,
) -> None:
    existing = open_case(kind=CaseKind.AI_OUTPUT)
    submit(
        analyst, facts={"triggers_downstream_work": True}, nhis=[platform_identity.pk, payments_identity.pk]
    )
    assert set(existing.identities.all()) == {payments_identity, platform_identity}


def test_it_raises_the_severity_of_the_case_it_joins_when_a_second_reviewer_is_needed(
    submit: Callable[..., Any], analyst: Any, open_case: Callable[..., Case]
) -> None:
    existing = open_case(kind=CaseKind.AI_OUTPUT, severity=Severity.LOW)
    body = submit(analyst, facts={"needs_multi_person_review": True}).json()
    existing.refresh_from_db()
    assert existing.severity == Severity.HIGH
    assert "Its severity was raised to high" in body["reason"]


def test_it_never_lowers_the_severity_of_the_case_it_joins(
    submit: Callable[..., Any], analyst: Any, open_case: Callable[..., Case]
) -> None:
    existing = open_case(kind=CaseKind.AI_OUTPUT, severity=Severity.CRITICAL)
    submit(analyst, facts={"triggers_downstream_work": True})
    existing.refresh_from_db()
    assert existing.severity == Severity.CRITICAL


def test_it_finds_the_identities_through_the_credentials_named_by_id_or_fingerprint(
    submit: Callable[..., Any], analyst: Any, payments_identity: Any, platform_identity: Any
) -> None:
    by_id = CredentialFactory.create(nhi=payments_identity)
    by_fingerprint = CredentialFactory.create(nhi=platform_identity)
    body = submit(
        analyst,
        facts={"triggers_downstream_work": True},
        nhis=[],
        credentials=[by_id.pk],
        credential_fingerprints=[by_fingerprint.fingerprint],
    ).json()
    assert {row["id"] for row in body["nhis"]} == {payments_identity.pk, platform_identity.pk}
    assert [(row["id"], row["fingerprint"], row["preview"]) for row in body["credentials"]] == [
        (by_id.pk, by_id.fingerprint, by_id.preview),
        (by_fingerprint.pk, by_fingerprint.fingerprint, by_fingerprint.preview),
    ]
    assert set(Case.objects.get().identities.all()) == {payments_identity, platform_identity}


def test_it_refuses_to_promote_an_output_about_identities_no_team_owns_and_stores_nothing(
    submit: Callable[..., Any], analyst: Any
) -> None:
    unowned = NonHumanIdentityFactory.create(name="orphan-bot", owner_team=None)
    before = stored()
    response = submit(analyst, facts={"triggers_downstream_work": True}, nhis=[unowned.pk])
    assert response.status_code == 400
    assert "No team owns the identities concerned" in response.json()["nhis"][0]
    assert stored() == before


def test_it_keeps_an_advisory_about_identities_no_team_owns(submit: Callable[..., Any], analyst: Any) -> None:
    unowned = NonHumanIdentityFactory.create(name="orphan-bot", owner_team=None)
    assert submit(analyst, nhis=[unowned.pk]).json()["outcome"] == "advisory"


def test_it_comments_on_the_case_with_the_output_and_its_reason(
    submit: Callable[..., Any], analyst: Any
) -> None:
    body = submit(analyst, facts={"triggers_downstream_work": True}).json()
    comment = Case.objects.get().comments.get()
    assert body["reference"] in comment.body
    assert "SecOps Copilot 2.1 (chat-8812)" in comment.body
    assert body["reason"] in comment.body


def test_it_records_who_submitted_the_output_in_its_history_and_the_cases(
    submit: Callable[..., Any], analyst: Any
) -> None:
    submit(analyst, facts={"triggers_downstream_work": True})
    output = AssistantOutput.objects.get()
    assert output.submitted_by == analyst
    assert output.history.get().history_user == analyst
    assert Case.history.earliest("history_date").history_user == analyst


def test_it_answers_with_a_location_for_the_record(submit: Callable[..., Any], analyst: Any) -> None:
    response = submit(analyst)
    assert response["Location"].endswith(f"/api/v1/intake/{response.json()['id']}/")


def test_it_keeps_the_record_immutable(submit: Callable[..., Any], analyst: Any) -> None:
    submit(analyst)
    output = AssistantOutput.objects.get()
    output.summary = "rewritten"
    with pytest.raises(ValueError, match="cannot be changed"):
        output.save()
    with pytest.raises(ValueError, match="cannot be deleted"):
        output.delete()


def test_it_applies_the_same_rule_to_a_direct_service_call(analyst: Any, payments_identity: Any) -> None:
    # The API is one caller; a command or a background job calling the service gets the same outcome.
    output = assistant_output_submit(
        actor=analyst,
        summary="Key still valid.",
        recommendation="Rotate it.",
        assistant="cli",
        facts=Facts(
            needs_multi_person_review=False,
            triggers_downstream_work=False,
            must_be_retained_as_evidence=True,
            depends_on_fresh_context=False,
        ),
        nhi_ids=[payments_identity.pk],
    )
    assert output.outcome == Outcome.CASE_OPENED
    assert output.evidence is not None
