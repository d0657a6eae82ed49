"""No secret reaches the audit chain: it can never be edited, so a secret in it could never be erased.

Each test plants secrets where people and scanners put them (reports, free text, names), then searches every
audit table for them; the portal's own tables may keep the free text, the chain only its digest.
"""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_entry_append
from cases import mapping
from cases import services as case_services
from cases.models import ActionKind, ApprovalKind, Case, CaseKind, CaseState, EvidenceKind
from findings.services import findings_import
from frameworks.models import Control, ControlKind, Framework
from intake.rules import Facts
from intake.services import ProposedActionInput, assistant_output_submit
from nhi_inventory.services import credential_register, nhi_update, team_create
from portal import roles
from portal.services import api_token_create
from tests.findings.leaks import tables_containing
from tests.findings.reports import AWS_SECRET, GITHUB_TOKEN, SLACK_TOKEN
from tests.findings.test_import_samples import SAMPLE_FORMATS, SAMPLES, planted

pytestmark = pytest.mark.django_db

SAMPLE = "gitleaks__gitleaks8_many.json"
SECRETS = (AWS_SECRET, GITHUB_TOKEN, SLACK_TOKEN)


def in_the_chain(secrets: set[str] | tuple[str, ...]) -> list[str]:
    """The audit tables holding any of the secrets (the head, the entries, the verifications)."""
    return [hit for hit in tables_containing(secrets) if hit.startswith("audit_")]


def test_a_sample_report_s_secrets_do_not_reach_the_chain(analyst: Any) -> None:
    secrets = planted(SAMPLE)
    assert len(secrets) >= 4  # the search below is really looking for something

    with (SAMPLES / SAMPLE).open("rb") as stream:
        run = findings_import(
            actor=analyst,
            report_format=SAMPLE_FORMATS[SAMPLE],
            # Names typed by whoever imports: kept on the import run, only digested in the chain.
            source=f"acme/{GITHUB_TOKEN}",
            stream=stream,
            file_name=f"{SLACK_TOKEN}.json",
        )

    assert AuditEntry.objects.filter(event="findings.import", object_id=str(run.pk)).exists()
    assert in_the_chain(secrets | {GITHUB_TOKEN, SLACK_TOKEN}) == []


def test_secrets_in_an_assistant_s_free_text_do_not_reach_the_chain(payments_identity: Any) -> None:
    automation = roles.automation_user()

    output = assistant_output_submit(
        actor=automation,
        summary=f"The deploy key {AWS_SECRET} of payments-api-bot is in a public gist.",
        recommendation=f"Revoke {GITHUB_TOKEN} at once.",
        assistant="SecOps Copilot",
        conversation_ref=f"https://chat.example.test/c/1?token={SLACK_TOKEN}",
        facts=Facts(
            needs_multi_person_review=True,
            triggers_downstream_work=True,
            must_be_retained_as_evidence=True,
            depends_on_fresh_context=True,
        ),
        nhi_ids=[payments_identity.pk],
        proposed_actions=[
            ProposedActionInput(kind=ActionKind.REVOCATION, description=f"Revoke {SLACK_TOKEN}")
        ],
    )

    assert AuditEntry.objects.filter(event="intake.submit", object_id=str(output.pk)).exists()
    assert AuditEntry.objects.filter(case_id=output.case_id).count() >= 5  # opened, proposed, evidence, ...
    assert in_the_chain(SECRETS) == []


def test_secrets_typed_into_any_free_text_of_a_case_do_not_reach_the_chain(
    case_in_state: Callable[..., Case], analyst: Any, approver: Any, payments: Any, payments_identity: Any
) -> None:
    """Every text field a person fills in, through every recorded service, each holding a secret."""
    secret = AWS_SECRET
    case = case_in_state(CaseState.CONFIRMED, kind=CaseKind.ATTACK_PATH_REVIEW)
    case_services.case_update(
        actor=analyst, case_id=case.pk, changes={"title": secret, "summary": secret}, reason=secret
    )
    case_services.comment_add(actor=analyst, case_id=case.pk, body=secret)
    case_services.evidence_capture(
        actor=analyst, case_id=case.pk, kind=EvidenceKind.NOTE, title=secret, note=secret
    )
    case_services.evidence_capture(
        actor=analyst,
        case_id=case.pk,
        kind=EvidenceKind.URL,
        title=secret,
        url=f"https://evidence.example.test/?k={secret}",
    )
    item = case_services.action_item_add(
        actor=analyst,
        case_id=case.pk,
        kind=ActionKind.ROTATION,
        title=secret,
        owning_team=payments,
        external_reference=secret,
    )
    case_services.action_item_set_status(
        actor=analyst, action_item_id=item.pk, status="in_progress", external_reference=secret
    )
    step = case_services.attack_path_step_add(
        actor=analyst,
        case_id=case.pk,
        source_node=secret,
        target_node=secret,
        technique=secret,
        failed_control_note=secret,
        remediation_team=payments,
    )
    case_services.attack_path_step_route(actor=analyst, step_id=step.pk)
    approval = case_services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason=secret,
        risk_expires_on=timezone.localdate() + timedelta(days=30),
    )
    case_services.approval_decide(actor=approver, approval_id=approval.pk, approve=False, note=secret)
    framework = Framework.objects.create(
        key="fw", name="fw", version="1", publisher="t", source="t", license="t"
    )
    control = Control.objects.create(framework=framework, ref_id="C-1", kind=ControlKind.RISK, statement="s")
    mapping.case_mapping_add(actor=analyst, case_id=case.pk, control_id=control.pk, rationale=secret)
    mapping.case_mapping_remove(actor=analyst, case_id=case.pk, control_id=control.pk, rationale=secret)
    mapping.mapping_rule_create(
        actor=analyst, case_kind="", condition="always", control=control, rationale=secret
    )
    case_services.case_dismiss(case_id=case.pk, actor=analyst, dismissal_reason="benign", reason=secret)
    case_services.case_reopen(case_id=case.pk, actor=analyst, reason=secret)
    nhi_update(actor=analyst, nhi_id=payments_identity.pk, changes={"description": secret}, reason=secret)
    credential_register(
        actor=analyst, nhi_id=payments_identity.pk, credential_type="token", secret=GITHUB_TOKEN, label=secret
    )
    team_create(actor=analyst, name=secret[:100], slug="leaky", contact_email="x@example.test")
    api_token_create(actor=analyst, user_id=analyst.pk, name=secret)
    recorded = set(AuditEntry.objects.values_list("event", flat=True))

    assert in_the_chain((secret, GITHUB_TOKEN)) == []
    # Every service above was really recorded: the search covered their entries.
    assert {
        "case.update",
        "comment.add",
        "evidence.capture",
        "action_item.add",
        "action_item.set_status",
        "attack_path_step.add",
        "approval.request",
        "approval.decide",
        "mapping.add",
        "mapping.remove",
        "mapping_rule.create",
        "case.reopen",
        "nhi.update",
        "credential.register",
        "team.create",
        "api_token.create",
    } <= recorded
    bodies = [json.loads(body)["entry"] for body in AuditEntry.objects.values_list("body", flat=True)]
    assert all(secret not in json.dumps(body) for body in bodies)


def test_the_leak_search_finds_a_secret_that_is_in_the_chain() -> None:
    # Guards the tests above: the search does look into the chain's bodies.
    with transaction.atomic():
        audit_entry_append(actor=None, event="test.planted", details={"text": AWS_SECRET})

    assert in_the_chain(SECRETS) == [f"audit_auditentry: {AWS_SECRET[:6]}…"]
