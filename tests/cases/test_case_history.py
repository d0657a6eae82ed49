"""The record an auditor reads: transition log, history rows, immutable evidence, derived priority."""

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from cases import services
from cases.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseState,
    CaseTransition,
    Evidence,
    EvidenceKind,
    Priority,
    Severity,
)
from nhi_inventory import services as nhi_services
from nhi_inventory.models import Criticality, PrivilegeLevel
from tests.factories import NonHumanIdentityFactory

REASON = "checked with the team"


@pytest.fixture
def transition_made(case_in_state, ready_to_verify, analyst, approver, payments):
    """Make transition `name` once (with REASON where it takes one); return the case and the actor."""

    def make(name):
        actor = analyst
        if name == "confirm":
            case = case_in_state(CaseState.IDENTIFIED)
            services.case_confirm(case_id=case.pk, actor=actor, reason=REASON)
        elif name == "assign":
            case = case_in_state(CaseState.CONFIRMED)
            services.case_assign(
                case_id=case.pk, actor=actor, assignee=analyst, owning_team=payments, reason=REASON
            )
        elif name == "start_action":
            case = case_in_state(CaseState.ASSIGNED)
            services.action_item_add(
                actor=analyst, case_id=case.pk, kind="ticket", title="T", owning_team=payments
            )
            services.case_start_action(case_id=case.pk, actor=actor, reason=REASON)
        elif name == "verify":
            case = ready_to_verify()
            services.case_verify(case_id=case.pk, actor=actor, reason=REASON)
        elif name == "close":
            case = case_in_state(CaseState.VERIFIED)
            actor = approver
            services.case_close(case_id=case.pk, actor=actor, reason=REASON)
        elif name == "dismiss":
            case = case_in_state(CaseState.CONFIRMED)
            services.case_dismiss(case_id=case.pk, actor=actor, dismissal_reason="benign", reason=REASON)
        elif name == "accept_risk":
            case = case_in_state(CaseState.IN_PROGRESS)
            approval = services.approval_request(
                actor=analyst,
                case_id=case.pk,
                kind=ApprovalKind.RISK_ACCEPTANCE,
                reason=REASON,
                risk_expires_on=timezone.localdate() + timedelta(days=60),
            )
            actor = approver
            services.approval_decide(actor=actor, approval_id=approval.pk, approve=True)
        elif name == "reopen":
            case = case_in_state(CaseState.DISMISSED)
            services.case_reopen(case_id=case.pk, actor=actor, reason=REASON)
        else:
            raise AssertionError(name)
        return case, actor

    return make


EXPECTED = {
    "confirm": (CaseState.IDENTIFIED, CaseState.CONFIRMED),
    "assign": (CaseState.CONFIRMED, CaseState.ASSIGNED),
    "start_action": (CaseState.ASSIGNED, CaseState.IN_PROGRESS),
    "verify": (CaseState.IN_PROGRESS, CaseState.VERIFIED),
    "close": (CaseState.VERIFIED, CaseState.CLOSED),
    "dismiss": (CaseState.CONFIRMED, CaseState.DISMISSED),
    "accept_risk": (CaseState.IN_PROGRESS, CaseState.RISK_ACCEPTED),
    "reopen": (CaseState.DISMISSED, CaseState.IDENTIFIED),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_transition_writes_one_log_row_with_who_from_to_and_why(transition_made, name):
    case, actor = transition_made(name)

    row = CaseTransition.objects.get(case=case, name=name)

    assert (row.actor, row.source_state, row.target_state) == (actor, *EXPECTED[name])
    assert REASON in row.reason
    assert row.at is not None


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_transition_writes_one_history_row_by_the_actor_naming_the_transition(transition_made, name):
    case, actor = transition_made(name)
    logged = CaseTransition.objects.get(case=case, name=name)

    rows = Case.history.filter(id=case.pk, history_change_reason=f"{name}: {logged.reason}")

    assert rows.count() == 1
    row = rows.get()
    assert (row.history_user, row.state, row.history_type) == (actor, EXPECTED[name][1], "~")
    assert Case.history.filter(id=case.pk).latest().history_id == row.history_id


def test_a_transition_without_a_reason_is_named_alone_in_history(open_case, analyst):
    case = open_case()

    services.case_confirm(case_id=case.pk, actor=analyst)

    assert Case.history.filter(id=case.pk).latest().history_change_reason == "confirm"
    assert CaseTransition.objects.get(case=case, name="confirm").reason == ""


def test_opening_a_case_logs_the_opening_and_a_creation_history_row(open_case, analyst):
    case = open_case()

    opened = CaseTransition.objects.get(case=case)
    assert (opened.name, opened.source_state, opened.target_state, opened.actor) == (
        "open",
        "",
        CaseState.IDENTIFIED,
        analyst,
    )
    row = Case.history.get(id=case.pk)
    assert (row.history_type, row.history_user, row.history_change_reason) == ("+", analyst, "opened")


def test_a_decision_is_recorded_in_the_approvals_history_by_the_decider(case_in_state, analyst, approver):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = services.approval_request(
        actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="ok"
    )

    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)

    latest = approval.history.latest()
    assert (latest.status, latest.history_user) == (ApprovalStatus.APPROVED, approver)


# --- Evidence -----------------------------------------------------------------------------------------------


@pytest.fixture
def evidence(open_case, analyst):
    case = open_case()
    return services.evidence_capture(
        actor=analyst, case_id=case.pk, kind=EvidenceKind.NOTE, title="Log", note="done"
    )


def test_evidence_cannot_be_saved_again(evidence):
    evidence.title = "Edited"

    with pytest.raises(ValueError, match="immutable"):
        evidence.save()

    assert Evidence.objects.get(pk=evidence.pk).title == "Log"


def test_evidence_cannot_be_deleted(evidence):
    with pytest.raises(ValueError, match="immutable"):
        evidence.delete()

    assert Evidence.objects.filter(pk=evidence.pk).exists()


def test_file_evidence_stores_the_sha256_and_size_of_the_uploaded_content(open_case, analyst):
    case = open_case()
    content = b"2025-01-01T00:00:00Z rotated AKIA****\n" * 500
    upload = SimpleUploadedFile("rotation.log", content, content_type="text/plain")

    evidence = services.evidence_capture(
        actor=analyst, case_id=case.pk, kind=EvidenceKind.FILE, title="Log", file=upload
    )

    evidence.refresh_from_db()
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.size == len(content)
    with evidence.file.open("rb") as stored:
        assert stored.read() == content


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        (EvidenceKind.URL, "url", "https://tickets.example.test/SEC-1"),
        (EvidenceKind.NOTE, "note", "Key revoked."),
    ],
)
def test_url_and_note_evidence_store_the_sha256_of_what_was_captured(open_case, analyst, kind, field, value):
    case = open_case()

    evidence = services.evidence_capture(
        actor=analyst, case_id=case.pk, kind=kind, title="Proof", **{field: value}
    )

    assert evidence.sha256 == hashlib.sha256(value.encode()).hexdigest()


def test_evidence_history_names_who_captured_it(evidence, analyst):
    assert evidence.history.get().history_user == analyst


# --- Priority -----------------------------------------------------------------------------------------------


def test_priority_derives_from_the_riskiest_linked_identity(open_case, payments):
    crown_jewel = NonHumanIdentityFactory.create(
        owner_team=payments, criticality=Criticality.CRITICAL, privilege_level=PrivilegeLevel.ADMIN
    )

    plain = open_case(severity=Severity.HIGH, identities=[])
    risky = open_case(severity=Severity.HIGH, identities=[crown_jewel])

    assert (plain.priority, risky.priority) == (Priority.P3, Priority.P1)


def test_priority_is_recomputed_when_an_identitys_criticality_changes(open_case, analyst, payments_identity):
    case = open_case(severity=Severity.HIGH)
    assert Case.objects.get(pk=case.pk).priority == Priority.P3
    rows = Case.history.filter(id=case.pk).count()

    nhi_services.nhi_update(
        actor=analyst,
        nhi_id=payments_identity.pk,
        changes={"criticality": Criticality.CRITICAL},
        reason="PCI scope",
    )

    assert Case.objects.get(pk=case.pk).priority == Priority.P2
    assert Case.history.filter(id=case.pk).count() == rows + 1
    latest = Case.history.filter(id=case.pk).latest()
    assert (latest.priority, latest.history_user) == (Priority.P2, analyst)
    assert "priority recomputed" in latest.history_change_reason


def test_a_change_that_is_not_about_risk_leaves_priority_and_history_alone(
    open_case, analyst, payments_identity
):
    case = open_case(severity=Severity.HIGH)
    rows = Case.history.filter(id=case.pk).count()

    nhi_services.nhi_update(
        actor=analyst, nhi_id=payments_identity.pk, changes={"description": "Payments API bot"}
    )

    assert Case.objects.get(pk=case.pk).priority == Priority.P3
    assert Case.history.filter(id=case.pk).count() == rows


def test_a_settled_case_keeps_its_priority_when_an_identity_changes(
    case_in_state, analyst, payments_identity
):
    case = case_in_state(CaseState.CLOSED, severity=Severity.HIGH)
    rows = Case.history.filter(id=case.pk).count()

    nhi_services.nhi_update(
        actor=analyst, nhi_id=payments_identity.pk, changes={"criticality": Criticality.CRITICAL}
    )

    assert Case.objects.get(pk=case.pk).priority == Priority.P3
    assert Case.history.filter(id=case.pk).count() == rows


def test_linking_a_risky_identity_raises_the_priority(open_case, analyst, payments):
    case = open_case(severity=Severity.HIGH, identities=[])
    crown_jewel = NonHumanIdentityFactory.create(
        owner_team=payments, criticality=Criticality.CRITICAL, privilege_level=PrivilegeLevel.ADMIN
    )

    services.case_link_identity(actor=analyst, case_id=case.pk, nhi_id=crown_jewel.pk)

    assert Case.objects.get(pk=case.pk).priority == Priority.P1
    assert Case.history.filter(id=case.pk).latest().history_user == analyst


# --- No reverting -------------------------------------------------------------------------------------------


def test_reverting_history_is_disabled_in_settings():
    assert settings.SIMPLE_HISTORY_REVERT_DISABLED is True


def test_an_auditor_cannot_rewrite_an_approval_through_the_admin_history_form(
    client, case_in_state, analyst, approver, auditor
):
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    approval = services.approval_request(
        actor=analyst, case_id=case.pk, kind=ApprovalKind.CLOSURE, reason="done"
    )
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=False, note="thin evidence")
    first = approval.history.earliest()
    client.force_login(auditor)

    response = client.post(
        f"/admin/cases/approval/{approval.pk}/history/{first.history_id}/",
        {
            "case": case.pk,
            "kind": "closure",
            "status": "approved",
            "reason": "done",
            "requested_by": analyst.pk,
            "requested_at_0": "2025-01-01",
            "requested_at_1": "10:00",
            "decided_by": approver.pk,
        },
    )

    assert response.status_code == 403
    assert Approval.objects.get(pk=approval.pk).status == ApprovalStatus.REJECTED


def test_an_owner_cannot_open_the_history_of_another_teams_approval(
    client, open_case, analyst, owner, platform_identity
):
    case = open_case(identities=[platform_identity])
    services.case_confirm(case_id=case.pk, actor=analyst)
    approval = services.approval_request(
        actor=analyst,
        case_id=case.pk,
        kind=ApprovalKind.RISK_ACCEPTANCE,
        reason="vendor fix",
        risk_expires_on=timezone.localdate() + timedelta(days=30),
    )
    client.force_login(owner)

    response = client.get(f"/admin/cases/approval/{approval.pk}/history/{approval.history.get().history_id}/")

    assert response.status_code == 404


def test_an_analyst_cannot_revert_a_case_through_the_admin_history_form(client, open_case, analyst):
    case = open_case()
    services.case_update(actor=analyst, case_id=case.pk, changes={"severity": Severity.LOW}, reason="triaged")
    first = Case.history.filter(id=case.pk).earliest()
    client.force_login(analyst)

    response = client.post(
        f"/admin/cases/case/{case.pk}/history/{first.history_id}/",
        {"title": case.title, "summary": "", "kind": case.kind, "severity": Severity.CRITICAL},
    )

    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).severity == Severity.LOW


def test_an_owner_cannot_read_the_history_of_another_teams_case(client, open_case, owner, platform_identity):
    case = open_case(identities=[platform_identity])
    first = Case.history.filter(id=case.pk).earliest()
    client.force_login(owner)

    listing = client.get(f"/admin/cases/case/{case.pk}/history/")
    version = client.get(f"/admin/cases/case/{case.pk}/history/{first.history_id}/")

    assert (listing.status_code, version.status_code) == (404, 404)


def test_an_owner_can_read_the_history_of_their_teams_case(client, open_case, owner):
    case = open_case()
    first = Case.history.filter(id=case.pk).earliest()
    client.force_login(owner)

    listing = client.get(f"/admin/cases/case/{case.pk}/history/")
    version = client.get(f"/admin/cases/case/{case.pk}/history/{first.history_id}/")

    assert (listing.status_code, version.status_code) == (200, 200)
