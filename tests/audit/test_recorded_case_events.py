"""Every write to a case that is not a transition appends its own entry to the audit chain, in its
transaction: the event, the case, the row changed, who, and what changed (free text only as a digest)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from cases import mapping, services
from cases.errors import TransitionRefused
from cases.models import (
    ActionKind,
    ActionStatus,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseKind,
    CaseState,
    EvidenceKind,
    MappingCondition,
    Severity,
    SlaPolicy,
)
from cases.sla import sla_policy_update
from frameworks.models import Control, ControlKind, Framework
from nhi_inventory.models import Criticality, PrivilegeLevel
from nhi_inventory.services import nhi_update
from portal import roles
from tests.audit.recorded import appended, chain_unchanged, digest, events, only
from tests.factories import NonHumanIdentityFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def automation(role_groups: None) -> Any:
    return roles.automation_user()


@pytest.fixture
def analyst_and_approver(role_groups: None) -> Any:
    """In both roles: only the four-eyes rule stops them deciding their own request."""
    user = UserFactory.create(username="dual")
    user.groups.add(Group.objects.get(name=roles.ANALYST), Group.objects.get(name=roles.APPROVER))
    return user


@pytest.fixture
def case(open_case: Callable[..., Case]) -> Case:
    return open_case()


@pytest.fixture
def control(db: None) -> Control:
    framework = Framework.objects.create(
        key="test-fw", name="Test framework", version="1", publisher="tests", source="tests", license="none"
    )
    return Control.objects.create(
        framework=framework, ref_id="TF-1", kind=ControlKind.SUBCATEGORY, statement="A control."
    )


# --- Editing a case -----------------------------------------------------------------------------------------


def test_an_edit_records_what_changed_before_and_after(case: Case, analyst: Any) -> None:
    with appended() as entries:
        services.case_update(
            actor=analyst, case_id=case.pk, changes={"severity": Severity.CRITICAL}, reason="it is live"
        )

    entry = only(entries, "case.update")
    assert events(entries) == ["case.update"]
    assert entry.targets(case)
    assert (entry.case_id, entry.actor_id) == (case.pk, analyst.pk)
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["severity"], entry.after["severity"]) == (Severity.MEDIUM, Severity.CRITICAL)
    assert entry.before["due_at"] != entry.after["due_at"]  # the SLA's date follows the severity
    assert "title" not in entry.after
    assert entry.details == {"reason": digest("it is live")}


def test_an_edited_title_is_recorded_as_its_digest_only(case: Case, analyst: Any) -> None:
    with appended() as entries:
        services.case_update(actor=analyst, case_id=case.pk, changes={"title": "Key in the wiki"})

    entry = only(entries, "case.update")
    assert entry.before == {"title": digest("AWS key in payments repo")}
    assert entry.after == {"title": digest("Key in the wiki")}
    assert "Key in the wiki" not in entry.body


def test_an_edit_that_changes_nothing_records_nothing(case: Case, analyst: Any) -> None:
    with appended() as entries:
        services.case_update(actor=analyst, case_id=case.pk, changes={"severity": case.severity})

    assert entries == []


def test_an_edit_refused_records_nothing(case: Case, auditor: Any, analyst: Any) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        services.case_update(actor=auditor, case_id=case.pk, changes={"severity": Severity.HIGH})
    with chain_unchanged(), pytest.raises(ValidationError):
        services.case_update(actor=analyst, case_id=case.pk, changes={"state": "closed"})


def test_linking_an_identity_records_the_identities_before_and_after(
    case: Case, analyst: Any, payments_identity: Any, payments: Any
) -> None:
    critical = NonHumanIdentityFactory.create(owner_team=payments, criticality=Criticality.CRITICAL)

    with appended() as entries:
        services.case_link_identity(actor=analyst, case_id=case.pk, nhi_id=critical.pk)

    entry = only(entries, "case.link_identity")
    assert entry.targets(case)
    assert entry.case_id == case.pk
    assert entry.before == {"identities": [payments_identity.pk], "priority": case.priority}
    assert entry.after == {
        "identities": sorted([payments_identity.pk, critical.pk]),
        "priority": Case.objects.get(pk=case.pk).priority,
    }
    assert entry.details is not None
    assert entry.details["nhi"] == critical.pk


def test_linking_an_identity_already_linked_records_nothing(
    case: Case, analyst: Any, payments_identity: Any
) -> None:
    with appended() as entries:
        services.case_link_identity(actor=analyst, case_id=case.pk, nhi_id=payments_identity.pk)

    assert entries == []


def test_unlinking_an_identity_records_it(case: Case, analyst: Any, payments_identity: Any) -> None:
    with appended() as entries:
        services.case_unlink_identity(actor=analyst, case_id=case.pk, nhi_id=payments_identity.pk)

    entry = only(entries, "case.unlink_identity")
    assert entry.before is not None
    assert entry.before["identities"] == [payments_identity.pk]
    assert entry.after is not None
    assert entry.after["identities"] == []
    assert entry.details == {"nhi": payments_identity.pk}


def test_unlinking_an_identity_that_is_not_linked_records_nothing(
    case: Case, analyst: Any, platform_identity: Any
) -> None:
    with appended() as entries:
        services.case_unlink_identity(actor=analyst, case_id=case.pk, nhi_id=platform_identity.pk)

    assert "case.unlink_identity" not in events(entries)


def test_an_identity_turning_critical_records_each_open_case_whose_priority_moved(
    open_case: Callable[..., Case],
    case_in_state: Callable[..., Case],
    analyst: Any,
    payments_identity: Any,
) -> None:
    first, second = open_case(), open_case()
    case_in_state(CaseState.CLOSED)  # settled: its priority is left alone, so nothing is recorded for it

    with appended() as entries:
        nhi_update(
            actor=analyst,
            nhi_id=payments_identity.pk,
            changes={"criticality": Criticality.CRITICAL, "privilege_level": PrivilegeLevel.ADMIN},
        )

    refreshed = [entry for entry in entries if entry.event == "case.refresh_priority"]
    assert events(entries) == ["nhi.update", "case.refresh_priority", "case.refresh_priority"]
    assert [entry.case_id for entry in refreshed] == [first.pk, second.pk]
    assert refreshed[0].before == {"priority": first.priority}
    assert refreshed[0].after == {"priority": Case.objects.get(pk=first.pk).priority}
    assert refreshed[0].details == {"identities": [payments_identity.pk]}


# --- Approvals ----------------------------------------------------------------------------------------------


def test_an_approval_request_is_recorded_with_its_reason_as_a_digest(
    case_in_state: Callable[..., Case], analyst: Any
) -> None:
    case = case_in_state(CaseState.CONFIRMED)
    until = timezone.localdate() + timedelta(days=30)

    with appended() as entries:
        approval = services.approval_request(
            actor=analyst,
            case_id=case.pk,
            kind=ApprovalKind.RISK_ACCEPTANCE,
            reason="compensating control",
            risk_expires_on=until,
        )

    entry = only(entries, "approval.request")
    assert events(entries) == ["approval.request"]
    assert entry.targets(approval)
    assert entry.case_id == case.pk
    assert entry.actor_id == analyst.pk
    assert entry.before is None
    assert entry.after == {
        "kind": "risk_acceptance",
        "status": "pending",
        "risk_expires_on": until.isoformat(),
        "requested_by": analyst.pk,
        "reason": digest("compensating control"),
    }


def test_a_decision_is_recorded_from_pending_to_its_outcome_with_the_decider(
    case_in_state: Callable[..., Case], analyst: Any, approver: Any
) -> None:
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = services.approval_request(
        actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
    )

    with appended() as entries:
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=False, note="no evidence")

    entry = only(entries, "approval.decide")
    assert events(entries) == ["approval.decide"]
    assert entry.targets(approval)
    assert entry.case_id == case.pk
    assert entry.actor_id == approver.pk
    assert entry.before == {"status": "pending"}
    assert entry.after is not None
    assert (entry.after["status"], entry.after["decided_by"]) == ("rejected", approver.pk)
    assert entry.after["decision_note"] == digest("no evidence")
    assert entry.details == {"kind": "closure", "requested_by": analyst.pk, "risk_expires_on": None}


def test_approving_a_risk_acceptance_records_the_decision_then_the_transition(
    case_in_state: Callable[..., Case], analyst: Any, approver: Any
) -> None:
    case = case_in_state(CaseState.CONFIRMED)
    approval = services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="compensating control",
        risk_expires_on=timezone.localdate() + timedelta(days=30),
    )

    with appended() as entries:
        services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    assert events(entries) == ["approval.decide", "case.accept_risk"]
    assert only(entries, "approval.decide").after["status"] == "approved"  # type: ignore[index]


def test_a_requester_deciding_their_own_request_records_nothing(
    case_in_state: Callable[..., Case], analyst_and_approver: Any
) -> None:
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = services.approval_request(
        actor=analyst_and_approver, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
    )

    with chain_unchanged(), pytest.raises(PermissionDenied):
        services.approval_decide(actor=analyst_and_approver, approval_id=approval.pk, approve=True)


def test_reopening_records_each_approval_it_supersedes(
    case_in_state: Callable[..., Case], analyst: Any
) -> None:
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = services.approval_request(
        actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
    )

    with appended() as entries:
        services.case_reopen(case_id=case.pk, actor=analyst, reason="the key is back")

    assert events(entries) == ["case.reopen", "approval.supersede"]
    entry = only(entries, "approval.supersede")
    assert entry.targets(approval)
    assert entry.case_id == case.pk
    assert (entry.before, entry.after) == ({"status": "pending"}, {"status": ApprovalStatus.SUPERSEDED})


# --- Work on a case -----------------------------------------------------------------------------------------


def test_captured_note_evidence_is_recorded_by_its_hash_and_size(case: Case, analyst: Any) -> None:
    with appended() as entries:
        evidence = services.evidence_capture(
            actor=analyst, case_id=case.pk, kind=EvidenceKind.NOTE, title="Rotation log", note="Key rotated"
        )

    entry = only(entries, "evidence.capture")
    assert events(entries) == ["evidence.capture"]
    assert entry.targets(evidence)
    assert entry.case_id == case.pk
    assert entry.actor_id == analyst.pk
    assert entry.after is not None
    assert (entry.after["kind"], entry.after["sha256"], entry.after["size"]) == (
        "note",
        evidence.sha256,
        len("Key rotated"),
    )
    assert entry.after["title"] == digest("Rotation log")
    assert "Key rotated" not in entry.body


def test_captured_file_evidence_is_recorded_with_the_file_s_sha256(case: Case, analyst: Any) -> None:
    upload = SimpleUploadedFile("scan.txt", b"rotation output\n" * 100)

    with appended() as entries:
        evidence = services.evidence_capture(
            actor=analyst, case_id=case.pk, kind=EvidenceKind.FILE, title="Scan", file=upload
        )

    entry = only(entries, "evidence.capture")
    assert entry.after is not None
    assert (entry.after["sha256"], entry.after["size"]) == (evidence.sha256, 1600)


def test_evidence_refused_records_nothing(case: Case, analyst: Any, auditor: Any) -> None:
    with chain_unchanged(), pytest.raises(ValidationError):
        services.evidence_capture(actor=analyst, case_id=case.pk, kind=EvidenceKind.NOTE, title="x", note=" ")
    with chain_unchanged(), pytest.raises(PermissionDenied):
        services.evidence_capture(actor=auditor, case_id=case.pk, kind=EvidenceKind.NOTE, title="x", note="y")


def test_an_action_item_added_is_recorded(case: Case, analyst: Any, payments: Any) -> None:
    with appended() as entries:
        item = services.action_item_add(
            actor=analyst, case_id=case.pk, kind=ActionKind.ROTATION, title="Rotate", owning_team=payments
        )

    entry = only(entries, "action_item.add")
    assert entry.targets(item)
    assert entry.case_id == case.pk
    assert entry.actor_id == analyst.pk
    assert entry.after == {
        "kind": "rotation",
        "title": digest("Rotate"),
        "owning_team": payments.pk,
        "status": "open",
        "external_reference": digest(""),
        "requires_approval": False,
        "created_by": analyst.pk,
    }


def test_a_proposal_and_its_approval_are_each_recorded(
    case: Case, automation: Any, approver: Any, payments: Any
) -> None:
    with appended() as proposed:
        item = services.action_item_propose(
            actor=automation,
            case_id=case.pk,
            kind=ActionKind.REVOCATION,
            title="Revoke",
            owning_team=payments,
        )
    with appended() as approved:
        services.action_item_approve(actor=approver, action_item_id=item.pk)

    proposal = only(proposed, "action_item.propose")
    assert proposal.targets(item)
    assert proposal.actor_id == automation.pk
    assert proposal.after is not None
    assert proposal.after["requires_approval"] is True
    approval = only(approved, "action_item.approve")
    assert events(approved) == ["action_item.approve"]
    assert approval.targets(item)
    assert approval.case_id == case.pk
    assert approval.actor_id == approver.pk
    assert approval.before == {"approved_by": None, "approved_at": None}
    assert approval.after is not None
    assert approval.after["approved_by"] == approver.pk
    assert approval.details == {"proposed_by": automation.pk}


def test_a_proposer_approving_their_own_proposal_records_nothing(
    case: Case, analyst: Any, payments: Any
) -> None:
    item = services.action_item_propose(
        actor=analyst, case_id=case.pk, kind=ActionKind.REVOCATION, title="Revoke", owning_team=payments
    )

    with chain_unchanged(), pytest.raises(PermissionDenied):
        services.action_item_approve(actor=analyst, action_item_id=item.pk)


def test_an_action_item_s_status_change_is_recorded_before_and_after(
    case: Case, analyst: Any, payments: Any
) -> None:
    item = services.action_item_add(
        actor=analyst, case_id=case.pk, kind=ActionKind.ROTATION, title="Rotate", owning_team=payments
    )

    with appended() as entries:
        services.action_item_set_status(
            actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE, external_reference="CHG-1"
        )

    entry = only(entries, "action_item.set_status")
    assert events(entries) == ["action_item.set_status"]
    assert entry.targets(item)
    assert entry.case_id == case.pk
    assert entry.before == {"status": "open", "completed_at": None, "external_reference": digest("")}
    assert entry.after is not None
    assert (entry.after["status"], entry.after["external_reference"]) == ("done", digest("CHG-1"))
    assert entry.after["completed_at"] is not None


def test_setting_the_status_an_action_item_already_has_records_nothing(
    case: Case, analyst: Any, payments: Any
) -> None:
    item = services.action_item_add(
        actor=analyst, case_id=case.pk, kind=ActionKind.ROTATION, title="Rotate", owning_team=payments
    )

    with appended() as entries:
        services.action_item_set_status(actor=analyst, action_item_id=item.pk, status=ActionStatus.OPEN)

    assert entries == []


def test_a_status_change_refused_records_nothing(case: Case, analyst: Any, payments: Any) -> None:
    item = services.action_item_add(
        actor=analyst, case_id=case.pk, kind=ActionKind.ROTATION, title="Rotate", owning_team=payments
    )

    with chain_unchanged(), pytest.raises(ValidationError):
        services.action_item_set_status(actor=analyst, action_item_id=item.pk, status="finished")


def test_a_comment_is_recorded_as_the_digest_of_its_body(case: Case, owner: Any) -> None:
    with appended() as entries:
        comment = services.comment_add(actor=owner, case_id=case.pk, body="  Rotated on Monday.  ")

    entry = only(entries, "comment.add")
    assert events(entries) == ["comment.add"]
    assert entry.targets(comment)
    assert entry.case_id == case.pk
    assert entry.actor_id == owner.pk
    assert entry.after == {"author": owner.pk, "body": digest("Rotated on Monday.")}


def test_a_comment_refused_records_nothing(case: Case, analyst: Any, outsider: Any) -> None:
    with chain_unchanged(), pytest.raises(ValidationError):
        services.comment_add(actor=analyst, case_id=case.pk, body="   ")
    with chain_unchanged(), pytest.raises(PermissionDenied):
        services.comment_add(actor=outsider, case_id=case.pk, body="hello")


def test_an_attack_path_step_and_its_routing_are_recorded(
    open_case: Callable[..., Case], analyst: Any, payments: Any, payments_identity: Any
) -> None:
    case = open_case(kind=CaseKind.ATTACK_PATH_REVIEW)

    with appended() as added:
        step = services.attack_path_step_add(
            actor=analyst,
            case_id=case.pk,
            source_node="CI runner",
            target_node="prod database",
            technique="T1552",
            nhi=payments_identity,
            remediation_team=payments,
        )
    with appended() as routed:
        item = services.attack_path_step_route(actor=analyst, step_id=step.pk)

    entry = only(added, "attack_path_step.add")
    assert events(added) == ["attack_path_step.add"]
    assert entry.targets(step)
    assert entry.case_id == case.pk
    assert entry.after is not None
    assert (entry.after["position"], entry.after["nhi"], entry.after["remediation_team"]) == (
        1,
        payments_identity.pk,
        payments.pk,
    )
    assert entry.after["source_node"] == digest("CI runner")
    assert events(routed) == ["action_item.add", "attack_path_step.route"]
    route = only(routed, "attack_path_step.route")
    assert route.targets(step)
    assert (route.before, route.after) == ({"remediation_action": None}, {"remediation_action": item.pk})


def test_a_refused_transition_records_nothing(case_in_state: Callable[..., Case], analyst: Any) -> None:
    case = case_in_state(CaseState.ASSIGNED)  # no action item yet: starting the work is refused

    with chain_unchanged(), pytest.raises(TransitionRefused):
        services.case_start_action(case_id=case.pk, actor=analyst)


# --- Automation ---------------------------------------------------------------------------------------------


def test_an_escalation_is_recorded_once_with_its_due_date(case: Case, analyst: Any, automation: Any) -> None:
    overdue = timezone.now() - timedelta(hours=1)
    services.case_update(actor=analyst, case_id=case.pk, changes={"due_at": overdue})

    with appended() as entries:
        services.case_escalate(actor=automation, case_id=case.pk)

    entry = only(entries, "case.escalate")
    assert events(entries) == ["case.escalate"]
    assert entry.targets(case)
    assert entry.case_id == case.pk
    assert entry.actor_id == automation.pk
    assert entry.before == {"escalated_at": None}
    assert entry.after is not None
    assert entry.after["escalated_at"] is not None
    assert entry.details is not None
    assert entry.details["state"] == CaseState.IDENTIFIED


def test_an_expired_risk_acceptance_records_the_reopen_the_superseded_approval_and_the_comment(
    case_in_state: Callable[..., Case], analyst: Any, approver: Any, automation: Any
) -> None:
    case = case_in_state(CaseState.CONFIRMED)
    approval = services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="compensating control",
        risk_expires_on=timezone.localdate() + timedelta(days=30),
    )
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)
    Case.objects.filter(pk=case.pk).update(risk_accepted_until=timezone.localdate() - timedelta(days=1))

    with appended() as entries:
        services.case_risk_acceptance_expire(actor=automation, case_id=case.pk)

    assert events(entries) == ["case.reopen", "approval.supersede", "comment.add"]
    assert {entry.case_id for entry in entries} == {case.pk}
    assert {entry.actor_id for entry in entries} == {automation.pk}


# --- Mappings, rules and SLA policies ----------------------------------------------------------------------


def test_a_mapping_added_and_removed_by_hand_is_recorded_with_the_control(
    case: Case, analyst: Any, control: Control
) -> None:
    with appended() as added:
        row = mapping.case_mapping_add(
            actor=analyst, case_id=case.pk, control_id=control.pk, rationale="it is about secrets"
        )
    with appended() as removed:
        mapping.case_mapping_remove(actor=analyst, case_id=case.pk, control_id=control.pk, rationale="not")

    entry = only(added, "mapping.add")
    assert events(added) == ["mapping.add"]
    assert entry.targets(row)
    assert entry.case_id == case.pk
    assert entry.actor_id == analyst.pk
    assert entry.before is None
    assert entry.after is not None
    assert (entry.after["control"], entry.after["is_active"], entry.after["source"]) == (
        control.pk,
        True,
        "manual",
    )
    assert entry.after["rationale"] == digest("it is about secrets")
    assert entry.details == {"control_ref_id": "TF-1"}
    gone = only(removed, "mapping.remove")
    assert gone.targets(row)
    assert gone.before is not None
    assert gone.after is not None
    assert (gone.before["is_active"], gone.after["is_active"], gone.after["removed_by_hand"]) == (
        True,
        False,
        True,
    )


def test_a_mapping_refused_records_nothing(case: Case, analyst: Any, control: Control) -> None:
    with chain_unchanged(), pytest.raises(ValidationError):
        mapping.case_mapping_add(actor=analyst, case_id=case.pk, control_id=control.pk, rationale=" ")


def test_rules_applied_when_a_case_opens_are_one_entry_listing_the_controls(
    open_case: Callable[..., Case], analyst: Any, control: Control
) -> None:
    rule = mapping.mapping_rule_create(
        actor=analyst,
        case_kind=CaseKind.SECRET_EXPOSURE,
        condition=MappingCondition.ALWAYS,
        control=control,
        rationale="secrets",
    )

    with appended() as entries:
        case = open_case()

    assert events(entries) == ["case.open", "mapping.apply"]
    entry = only(entries, "mapping.apply")
    assert entry.targets(case)
    assert entry.case_id == case.pk
    assert (entry.before, entry.after) == ({"controls": []}, {"controls": [control.pk]})
    assert entry.details == {"added_by_rule": {str(control.pk): rule.pk}, "removed": []}


def test_rules_that_change_nothing_record_nothing(case: Case, analyst: Any) -> None:
    with appended() as entries:
        mapping.case_mappings_apply(case=case, actor=analyst)

    assert entries == []


def test_a_mapping_rule_created_and_edited_is_recorded(analyst: Any, control: Control) -> None:
    with appended() as created:
        rule = mapping.mapping_rule_create(
            actor=analyst, case_kind="", condition=MappingCondition.ALWAYS, control=control, rationale="why"
        )
    with appended() as edited:
        mapping.mapping_rule_update(actor=analyst, rule_id=rule.pk, changes={"is_active": False})

    entry = only(created, "mapping_rule.create")
    assert entry.targets(rule)
    assert entry.case_id is None
    assert entry.actor_id == analyst.pk
    assert entry.after == {
        "case_kind": "",
        "condition": "always",
        "control": control.pk,
        "rationale": digest("why"),
        "is_active": True,
    }
    change = only(edited, "mapping_rule.update")
    assert (change.before, change.after) == ({"is_active": True}, {"is_active": False})


def test_an_sla_policy_change_is_recorded_in_seconds(analyst: Any) -> None:
    policy = SlaPolicy.objects.get(severity=Severity.HIGH)

    with appended() as entries:
        sla_policy_update(
            actor=analyst, policy_id=policy.pk, hours_to_resolve=48, is_active=True, reason="tighter"
        )

    entry = only(entries, "sla_policy.update")
    assert entry.targets(policy)
    assert entry.case_id is None
    assert entry.actor_id == analyst.pk
    assert entry.before == {"seconds_to_resolve": 72 * 3600, "is_active": True}
    assert entry.after == {"seconds_to_resolve": 48 * 3600, "is_active": True}
    assert entry.details == {"severity": Severity.HIGH, "reason": digest("tighter")}


def test_an_sla_policy_change_refused_records_nothing(auditor: Any) -> None:
    policy = SlaPolicy.objects.get(severity=Severity.HIGH)

    with chain_unchanged(), pytest.raises(PermissionDenied):
        sla_policy_update(actor=auditor, policy_id=policy.pk, hours_to_resolve=48, is_active=True)
