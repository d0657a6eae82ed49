"""`/api/v1/intake/` for each persona, malformed payloads refused whole, secrets never stored or echoed,
and a list that costs the same number of queries whatever its length."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from intake.models import AssistantOutput
from portal.services import api_token_create
from tests.factories import CredentialFactory, NonHumanIdentityFactory
from tests.findings.leaks import tables_containing
from tests.intake.conftest import INTAKE_URL, NO_FACTS, payload, stored

AWS_KEY = "AKIAZ7Q3EXAMPLE4K2PB"
GITHUB_TOKEN = "ghp_" + "x7Kq2M9vR4tY8wB1nC5eD3fG6hJ0kL2pQ9sZ"


# --- Who may submit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["analyst", "automation"])
def test_it_lets_analysts_and_the_automation_role_submit(
    submit: Callable[..., Any], persona: Callable[[str], Any], who: str
) -> None:
    response = submit(persona(who), facts={"triggers_downstream_work": True})
    assert response.status_code == 201
    assert response.json()["submitted_by"]["username"] == persona(who).username


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_it_refuses_a_submission_from_people_without_the_intake_permission(
    submit: Callable[..., Any], persona: Callable[[str], Any], who: str
) -> None:
    before = stored()
    response = submit(persona(who), facts={"triggers_downstream_work": True})
    assert response.status_code == 403
    assert "intake.submit_assistantoutput" in response.json()["detail"]
    assert stored() == before


def test_it_refuses_a_malformed_submission_from_people_without_permission_with_403_not_400(
    api: Callable[[Any], APIClient], owner: Any
) -> None:
    assert api(owner).post(INTAKE_URL, {}, format="json").status_code == 403


def test_it_asks_an_anonymous_client_to_sign_in(submit: Callable[..., Any]) -> None:
    before = stored()
    response = submit(None, facts={"triggers_downstream_work": True})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert stored() == before


def test_it_lets_an_assistant_submit_with_the_automation_accounts_token(
    automation: Any, analyst: Any, payments_identity: Any
) -> None:
    raw = api_token_create(actor=automation, user_id=automation.pk, name="SecOps Copilot")[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = payload(nhis=[payments_identity.pk], facts={"must_be_retained_as_evidence": True})
    response = client.post(INTAKE_URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["outcome"] == "case_opened"
    assert AssistantOutput.objects.get().submitted_by == automation


# --- Malformed payloads: field errors, nothing stored ------------------------------------------------------


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "missing facts": (lambda body: _without(body, "facts"), "facts"),
    "one fact missing": (
        lambda body: _without(body, "facts", "depends_on_fresh_context"),
        "facts.depends_on_fresh_context",
    ),
    "a fact as a string": (
        lambda body: {**body, "facts": {**NO_FACTS, "needs_multi_person_review": "yes"}},
        "facts.needs_multi_person_review",
    ),
    "a fact as a number": (
        lambda body: {**body, "facts": {**NO_FACTS, "triggers_downstream_work": 1}},
        "facts.triggers_downstream_work",
    ),
    "an unknown fact": (lambda body: {**body, "facts": {**NO_FACTS, "is_urgent": True}}, "facts.is_urgent"),
    "facts not an object": (lambda body: {**body, "facts": [True, False]}, "facts.non_field_errors"),
    "empty summary": (lambda body: {**body, "summary": "   "}, "summary"),
    "missing summary": (lambda body: _without(body, "summary"), "summary"),
    "summary not a string": (lambda body: {**body, "summary": {"text": "x"}}, "summary"),
    "empty recommendation": (lambda body: {**body, "recommendation": ""}, "recommendation"),
    "missing source": (lambda body: _without(body, "source"), "source"),
    "missing assistant": (lambda body: _without(body, "source", "assistant"), "source.assistant"),
    "assistant too long": (lambda body: {**body, "source": {"assistant": "a" * 101}}, "source.assistant"),
    "nhis not a list": (lambda body: {**body, "nhis": "12"}, "nhis"),
    "an nhi id not a number": (lambda body: {**body, "nhis": ["payments-api-bot"]}, "nhis.0"),
    "an unknown nhi id": (lambda body: {**body, "nhis": [999_999]}, "nhis"),
    "an nhi id beyond any id": (lambda body: {**body, "nhis": [2**70]}, "nhis.0"),
    "a NUL character": (lambda body: {**body, "summary": "key\x00"}, "summary"),
    "no identity nor credential": (lambda body: {**body, "nhis": []}, "nhis"),
    "an unknown credential id": (lambda body: {**body, "credentials": [999_999]}, "credentials"),
    "a fingerprint that is not one": (
        lambda body: {**body, "credential_fingerprints": ["not-a-fingerprint"]},
        "credential_fingerprints.0",
    ),
    "an unknown fingerprint": (
        lambda body: {**body, "credential_fingerprints": ["0" * 64]},
        "credential_fingerprints",
    ),
    "an unknown action kind": (
        lambda body: {**body, "proposed_actions": [{"kind": "reboot", "description": "Reboot it."}]},
        "proposed_actions.0.kind",
    ),
    "an action without description": (
        lambda body: {**body, "proposed_actions": [{"kind": "ticket"}]},
        "proposed_actions.0.description",
    ),
    "too many actions": (
        lambda body: {**body, "proposed_actions": [{"kind": "ticket", "description": "x"}] * 21},
        "proposed_actions",
    ),
    "an unknown case kind": (lambda body: {**body, "case_kind": "incident"}, "case_kind"),
    "an unknown field": (lambda body: {**body, "proposed_action": []}, "proposed_action"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_it_refuses_a_malformed_payload_naming_the_field_and_stores_nothing(
    api: Callable[[Any], APIClient], analyst: Any, payments_identity: Any, name: str
) -> None:
    spoil, field = MALFORMED[name]
    # Promoted if it were accepted, so a half-written case would show in the counts.
    body = spoil(payload(nhis=[payments_identity.pk], facts={"must_be_retained_as_evidence": True}))
    before = stored()
    response = api(analyst).post(INTAKE_URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert stored() == before


def test_it_gives_an_identity_the_caller_cannot_see_the_same_answer_as_one_that_does_not_exist(
    api: Callable[[Any], APIClient], owner: Any, platform_identity: Any
) -> None:
    # An owner who was also allowed to submit still names only identities they can see.
    owner.user_permissions.add(Permission.objects.get(codename="submit_assistantoutput"))
    before = stored()
    hidden = api(owner).post(INTAKE_URL, payload(nhis=[platform_identity.pk]), format="json")
    missing = api(owner).post(INTAKE_URL, payload(nhis=[999_999]), format="json")
    assert hidden.status_code == missing.status_code == 400
    assert hidden.json()["nhis"] == [f"No identity with id {platform_identity.pk} that you can see."]
    assert missing.json()["nhis"] == ["No identity with id 999999 that you can see."]
    assert stored() == before


def test_it_never_quotes_a_secret_sent_where_a_fingerprint_belongs(
    api: Callable[[Any], APIClient], analyst: Any, payments_identity: Any
) -> None:
    body = payload(nhis=[payments_identity.pk], credential_fingerprints=[GITHUB_TOKEN])
    response = api(analyst).post(INTAKE_URL, body, format="json")
    assert response.status_code == 400
    assert GITHUB_TOKEN not in response.content.decode()
    assert tables_containing([GITHUB_TOKEN]) == []


def test_it_never_quotes_a_secret_sent_as_an_action_kind(
    api: Callable[[Any], APIClient], analyst: Any, payments_identity: Any
) -> None:
    body = payload(nhis=[payments_identity.pk], proposed_actions=[{"kind": AWS_KEY, "description": "x"}])
    response = api(analyst).post(INTAKE_URL, body, format="json")
    assert response.status_code == 400
    assert AWS_KEY not in response.content.decode()


# --- Secrets in free text: masked before anything is stored -----------------------------------------------


def test_it_masks_a_pasted_key_everywhere_it_would_be_kept(submit: Callable[..., Any], analyst: Any) -> None:
    response = submit(
        analyst,
        summary=f"The key {AWS_KEY} of payments-api-bot is in the deploy log.",
        recommendation=f"Revoke {AWS_KEY} and the token {GITHUB_TOKEN}.",
        proposed_actions=[{"kind": "revocation", "description": f"Revoke {AWS_KEY}."}],
        facts={"must_be_retained_as_evidence": True, "depends_on_fresh_context": True},
    )
    body = response.json()
    assert body["summary"] == "The key [masked, 20 chars] of payments-api-bot is in the deploy log."
    assert body["masked_fields"] == ["proposed_actions.0.description", "summary", "recommendation"]
    for secret in (AWS_KEY, GITHUB_TOKEN):
        assert secret not in response.content.decode()
        assert tables_containing([secret]) == []


def test_it_keeps_a_conversation_link_without_its_credentials_or_query(
    submit: Callable[..., Any], analyst: Any
) -> None:
    source = {
        "assistant": "SecOps Copilot 2.1",
        "conversation_ref": f"https://bot:{GITHUB_TOKEN}@chat.example.com/c/8812?token={AWS_KEY}#frag",
    }
    body = submit(analyst, source=source).json()
    assert body["source"]["conversation_ref"] == "https://chat.example.com/c/8812"
    assert tables_containing([GITHUB_TOKEN]) == tables_containing([AWS_KEY]) == []


# --- Reading: list and detail, scoped ----------------------------------------------------------------------


@pytest.fixture
def two_outputs(submit: Callable[..., Any], analyst: Any, platform_identity: Any) -> dict[str, int]:
    """One output about a Payments identity (an advisory), one about a Platform identity (a case)."""
    payments = submit(analyst).json()["id"]
    platform = submit(analyst, nhis=[platform_identity.pk], facts={"triggers_downstream_work": True}).json()[
        "id"
    ]
    return {"payments": payments, "platform": platform}


@pytest.mark.parametrize("who", ["analyst", "approver", "auditor"])
def test_it_lists_every_output_to_staff_roles(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int], persona: Callable[[str], Any], who: str
) -> None:
    response = api(persona(who)).get(INTAKE_URL)
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == set(two_outputs.values())


def test_it_lists_to_an_owner_only_the_outputs_about_their_teams_identities(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int], owner: Any
) -> None:
    response = api(owner).get(INTAKE_URL)
    assert [row["id"] for row in response.json()["results"]] == [two_outputs["payments"]]


def test_it_shows_an_owner_an_output_about_their_identity_and_hides_the_others(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int], owner: Any
) -> None:
    assert api(owner).get(f"{INTAKE_URL}{two_outputs['payments']}/").status_code == 200
    assert api(owner).get(f"{INTAKE_URL}{two_outputs['platform']}/").status_code == 404


def test_it_refuses_the_list_to_an_outsider(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int], outsider: Any
) -> None:
    assert api(outsider).get(INTAKE_URL).status_code == 403
    assert api(outsider).get(f"{INTAKE_URL}{two_outputs['payments']}/").status_code == 403


def test_it_asks_an_anonymous_reader_to_sign_in(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int]
) -> None:
    assert api(None).get(INTAKE_URL).status_code == 401


def test_it_shows_the_record_as_it_was_submitted(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int], auditor: Any
) -> None:
    body = api(auditor).get(f"{INTAKE_URL}{two_outputs['platform']}/").json()
    assert body["outcome"] == "case_opened"
    assert body["facts"]["triggers_downstream_work"] is True
    assert body["source"] == {"assistant": "SecOps Copilot 2.1", "conversation_ref": "chat-8812"}
    assert body["recommendation_item"]["approved"] is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("outcome=advisory", "payments"),
        ("outcome=case_opened", "platform"),
        ("changes_ownership=true", "platform"),
    ],
)
def test_it_filters_the_list(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int], analyst: Any, query: str, expected: str
) -> None:
    rows = api(analyst).get(f"{INTAKE_URL}?{query}").json()["results"]
    assert [row["id"] for row in rows] == [two_outputs[expected]]


def test_it_filters_the_list_by_identity(
    api: Callable[[Any], APIClient], two_outputs: dict[str, int], analyst: Any, platform_identity: Any
) -> None:
    rows = api(analyst).get(f"{INTAKE_URL}?nhi={platform_identity.pk}").json()["results"]
    assert [row["id"] for row in rows] == [two_outputs["platform"]]


def _fill(submit: Callable[..., Any], analyst: Any, payments: Any, count: int) -> None:
    """Outputs of every shape: promoted with proposals, credentials and evidence, and advisories."""
    for _ in range(count):
        identity = NonHumanIdentityFactory.create(owner_team=payments)
        promoted = AssistantOutput.objects.count() % 2 == 0
        submit(
            analyst,
            nhis=[identity.pk],
            credentials=[CredentialFactory.create(nhi=identity).pk],
            facts={"must_be_retained_as_evidence": promoted},
            proposed_actions=[{"kind": "ticket", "description": "File it."}] if promoted else [],
        )


def _queries(client: APIClient, *, rows: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(INTAKE_URL)
    assert len(response.json()["results"]) == rows
    return len(captured)


@pytest.mark.parametrize("who", ["analyst", "owner"])
def test_it_lists_in_the_same_number_of_queries_for_2_and_for_12_outputs(
    api: Callable[[Any], APIClient],
    submit: Callable[..., Any],
    analyst: Any,
    payments: Any,
    persona: Callable[[str], Any],
    who: str,
    django_assert_num_queries: Any,
) -> None:
    client = api(persona(who))
    _fill(submit, analyst, payments, 2)
    expected = _queries(client, rows=2)
    _fill(submit, analyst, payments, 10)
    with django_assert_num_queries(expected):
        response = client.get(INTAKE_URL)
    assert len(response.json()["results"]) == 12
