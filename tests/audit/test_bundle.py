"""Evidence bundles: what a case's bundle holds, who may export one, and how the export is recorded.

The standalone verifier's own tests are in test_bundle_verifier.py; the API, admin and commands in
test_bundle_interfaces.py. Both use the helpers here: a case worked through the real services, exported.
"""

import base64
import hashlib
import importlib.util
import io
import json
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.bundle import SHIPPED_FILES, VERIFIER_DIR, BundleSummary, _BundleZip, evidence_bundle_export
from audit.models import AuditEntry, AuditHead, AuditVerification, VerificationTrigger
from audit.signing import bundle_public_key
from cases import services
from cases.models import (
    ActionItem,
    Approval,
    Case,
    CaseControlMapping,
    CaseIdentity,
    CaseState,
    Comment,
    Evidence,
    EvidenceKind,
    Severity,
)
from findings.models import Exposure
from findings.services import findings_import
from tests.audit.tamper import set_columns
from tests.findings.reports import AWS_SECRET, trufflehog_v3

pytestmark = pytest.mark.django_db

RECEIPT = b"vault: key AKIA...(20 chars) rotated 2026-03-01T10:02Z; old version revoked\n" * 40
STAFF = ("analyst", "approver", "auditor")
MEMBER_ORDER = [
    "README.txt",
    "verify_bundle.py",
    "case.json",
    "transitions.json",
    "approvals.json",
    "action_items.json",
    "comments.json",
    "attack_path_steps.json",
    "mappings.json",
    "exposures.json",
    "findings.json",
    "evidence/{file}",
    "evidence.json",
    "history.json",
    "chain.jsonl",
    "chain_head.json",
    "people.json",
    "manifest.json",
]


# --- Helpers shared with the other bundle tests -------------------------------------------------------------


def work_case(case_in_state: Callable[..., Case], analyst: Any, approver: Any) -> Case:
    """A high-severity case closed through the real services: transitions with reasons, an approval, file,
    URL and note evidence, an action item and a comment."""
    case = case_in_state(CaseState.VERIFIED, severity=Severity.HIGH)
    services.evidence_capture(
        actor=analyst,
        case_id=case.pk,
        kind=EvidenceKind.FILE,
        title="Vault rotation receipt",
        file=SimpleUploadedFile("rotation receipt (prod).txt", RECEIPT),
    )
    services.evidence_capture(
        actor=analyst,
        case_id=case.pk,
        kind=EvidenceKind.URL,
        title="Revocation ticket",
        url="https://tickets.example.com/SEC-4711",
    )
    services.comment_add(
        actor=analyst, case_id=case.pk, body="Old key revoked at 10:02; nothing used it since."
    )
    approval = services.approval_request(
        actor=analyst, case_id=case.pk, kind="closure", reason="Rotation verified against the vault log"
    )
    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True, note="Receipt checked")
    return services.case_close(case_id=case.pk, actor=analyst, reason="Key rotated and the old one revoked")


def export(actor: Any, case: Case, path: Path) -> BundleSummary:
    with path.open("wb") as output:
        return evidence_bundle_export(actor=actor, case_id=case.pk, output=output)


def members(path: Path | bytes) -> dict[str, bytes]:
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with zipfile.ZipFile(source) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def member_json(path: Path, name: str) -> Any:
    return json.loads(members(path)[name])


def load_verifier(bundle: Path, into: Path) -> ModuleType:
    """verify_bundle.py as shipped inside `bundle`, extracted and imported (not the portal's copy)."""
    script = into / "verify_bundle.py"
    script.write_bytes(members(bundle)["verify_bundle.py"])
    name = f"shipped_verify_bundle_{abs(hash(str(script)))}"
    spec = importlib.util.spec_from_file_location(name, script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def worked_case(case_in_state: Callable[..., Case], analyst: Any, approver: Any) -> Case:
    return work_case(case_in_state, analyst, approver)


@pytest.fixture
def bundle(worked_case: Case, auditor: Any, tmp_path: Path) -> Path:
    path = tmp_path / "bundle.zip"
    export(auditor, worked_case, path)
    return path


# --- What the bundle holds ----------------------------------------------------------------------------------


def test_it_holds_its_members_in_a_fixed_order(bundle: Path, worked_case: Case) -> None:
    evidence = Evidence.objects.get(case=worked_case, kind=EvidenceKind.FILE)
    expected = [name.format(file=f"{evidence.pk}-rotation_receipt_prod.txt") for name in MEMBER_ORDER]
    assert list(members(bundle)) == expected


def test_every_member_has_the_same_fixed_time_and_mode(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as archive:
        stamps = {(info.date_time, info.external_attr, info.create_system) for info in archive.infolist()}
    assert stamps == {((1980, 1, 1, 0, 0, 0), 0o100644 << 16, 3)}


def test_the_manifest_lists_every_other_member_with_its_size_and_sha256(bundle: Path) -> None:
    content = members(bundle)
    manifest = json.loads(content.pop("manifest.json"))
    assert manifest["members"] == [
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in content.items()
    ]


def test_the_manifest_names_the_case_the_exporter_and_the_public_key(
    bundle: Path, worked_case: Case, auditor: Any
) -> None:
    manifest = member_json(bundle, "manifest.json")
    key = bundle_public_key()
    assert manifest["case"] == {"id": worked_case.pk, "reference": worked_case.reference}
    assert manifest["exported_by"] == {"id": auditor.pk, "username": "auditor"}
    assert manifest["public_key"] == {"algorithm": "ed25519", "hex": key.hex, "fingerprint": key.fingerprint}
    assert (manifest["format"], manifest["format_version"]) == ("nhi-portal-evidence-bundle", 1)


def test_it_ships_the_verifier_and_its_instructions_unchanged(bundle: Path) -> None:
    content = members(bundle)
    for name in SHIPPED_FILES:
        assert content[name] == (VERIFIER_DIR / name).read_bytes()


def test_the_evidence_file_is_in_the_bundle_byte_for_byte(bundle: Path, worked_case: Case) -> None:
    evidence = Evidence.objects.get(case=worked_case, kind=EvidenceKind.FILE)
    listed = {item["id"]: item for item in member_json(bundle, "evidence.json")}
    path = listed[evidence.pk]["bundle_path"]
    assert members(bundle)[path] == RECEIPT
    assert listed[evidence.pk]["sha256"] == hashlib.sha256(RECEIPT).hexdigest() == evidence.sha256


def test_an_evidence_file_larger_than_a_chunk_is_streamed_whole(
    case_in_state: Callable[..., Case], analyst: Any, auditor: Any, tmp_path: Path
) -> None:
    case = case_in_state(CaseState.IN_PROGRESS)
    large = b"".join(hashlib.sha256(str(n).encode()).digest() for n in range(80_000))  # 2.5 MB
    evidence = services.evidence_capture(
        actor=analyst,
        case_id=case.pk,
        kind=EvidenceKind.FILE,
        title="Disk image",
        file=SimpleUploadedFile("d.img", large),
    )
    export(auditor, case, tmp_path / "large.zip")
    assert members(tmp_path / "large.zip")[f"evidence/{evidence.pk}-d.img"] == large


def test_url_and_note_evidence_are_listed_with_their_text(bundle: Path, worked_case: Case) -> None:
    listed = member_json(bundle, "evidence.json")
    by_kind = {item["kind"]: item for item in listed}
    assert by_kind["url"]["url"] == "https://tickets.example.com/SEC-4711"
    assert by_kind["note"]["note"] == "Key rotated"
    assert by_kind["url"]["bundle_path"] is None
    assert len(listed) == Evidence.objects.filter(case=worked_case).count() == 3


def test_transitions_carry_their_reason_actor_and_chain_entry(bundle: Path, worked_case: Case) -> None:
    listed = member_json(bundle, "transitions.json")
    stored = list(worked_case.transitions.order_by("id"))
    assert [row["name"] for row in listed] == [t.name for t in stored]
    assert [row["name"] for row in listed] == ["open", "confirm", "assign", "start_action", "verify", "close"]
    assert listed[-1]["reason"] == "Key rotated and the old one revoked"
    assert [row["audit_seq"] for row in listed] == [t.audit_seq for t in stored]
    assert all(row["audit_seq"] for row in listed)
    assert listed[-1]["actor_id"] == stored[-1].actor_id


def test_the_case_approvals_action_items_and_comments_are_as_stored(bundle: Path, worked_case: Case) -> None:
    case = member_json(bundle, "case.json")
    assert case["case"]["id"] == worked_case.pk
    assert case["case"]["state"] == CaseState.CLOSED
    assert case["case"]["reference"] == worked_case.reference
    assert [link["nhi__name"] for link in case["identities"]] == ["payments-api-bot"]
    approvals = member_json(bundle, "approvals.json")
    assert [(a["reason"], a["decision_note"], a["status"]) for a in approvals] == [
        ("Rotation verified against the vault log", "Receipt checked", "approved")
    ]
    assert [item["title"] for item in member_json(bundle, "action_items.json")] == ["Rotate the key"]
    assert [c["body"] for c in member_json(bundle, "comments.json")] == [
        "Old key revoked at 10:02; nothing used it since."
    ]


def test_the_chain_holds_every_entry_of_the_case_and_no_other(bundle: Path, worked_case: Case) -> None:
    lines = members(bundle)["chain.jsonl"].decode().splitlines()
    rows = [json.loads(line) for line in lines]
    own = AuditEntry.objects.filter(case_id=worked_case.pk).exclude(event="case.bundle_export")
    assert [row["seq"] for row in rows] == list(own.values_list("seq", flat=True))
    first = own.first()
    assert first is not None
    assert rows[0] == {
        "seq": first.seq,
        "recorded_at": first.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": first.event,
        "case_id": first.case_id,
        "object_type": first.object_type,
        "object_id": first.object_id,
        "actor_id": first.actor_id,
        "prev_hash": first.prev_hash,
        "body": first.body,
        "entry_hash": first.entry_hash,
        "key_id": first.key_id,
        "mac": first.mac,
    }


def test_history_holds_every_version_of_the_case_and_its_rows(bundle: Path, worked_case: Case) -> None:
    history = member_json(bundle, "history.json")
    expected = {
        "cases.case": worked_case.history.count(),
        "cases.caseidentity": CaseIdentity.history.filter(case_id=worked_case.pk).count(),
        "cases.evidence": Evidence.history.filter(case_id=worked_case.pk).count(),
        "cases.actionitem": ActionItem.history.filter(case_id=worked_case.pk).count(),
        "cases.approval": Approval.history.filter(case_id=worked_case.pk).count(),
        "cases.comment": Comment.history.filter(case_id=worked_case.pk).count(),
        "cases.casecontrolmapping": CaseControlMapping.history.filter(case_id=worked_case.pk).count(),
    }
    assert {label: len(rows) for label, rows in history.items() if label in expected} == expected
    assert expected["cases.case"] >= 6  # opened, then five transitions
    closing = history["cases.case"][-1]
    assert (closing["state"], closing["history_change_reason"]) == (
        "closed",
        "close: Key rotated and the old one revoked",
    )


def test_people_names_everyone_the_files_refer_to(
    bundle: Path, analyst: Any, approver: Any, auditor: Any
) -> None:
    people = member_json(bundle, "people.json")
    assert {people[str(user.pk)]["username"] for user in (analyst, approver, auditor)} == {
        "analyst",
        "approver",
        "auditor",
    }


def test_the_head_file_records_the_verification_run_for_the_export(bundle: Path, auditor: Any) -> None:
    head = member_json(bundle, "chain_head.json")
    verification = AuditVerification.objects.get(trigger=VerificationTrigger.BUNDLE)
    assert verification.requested_by == auditor
    assert head["verification_at_export"]["id"] == verification.pk
    assert head["verification_at_export"]["ok"] is True
    assert head["verification_at_export"]["last_seq"] == verification.last_seq
    # The head was read after the walk: the chain's last entry then was the last one the walk checked.
    assert head["head_at_export"]["seq"] == verification.last_seq


# --- The export in the chain --------------------------------------------------------------------------------


def test_the_export_is_appended_to_the_chain_with_the_bundles_sha256(
    worked_case: Case, auditor: Any, tmp_path: Path
) -> None:
    summary = export(auditor, worked_case, tmp_path / "b.zip")
    data = (tmp_path / "b.zip").read_bytes()
    entry = AuditEntry.objects.get(event="case.bundle_export")
    payload = json.loads(entry.body)["entry"]
    assert entry.seq == summary.audit_seq == AuditHead.objects.get().seq
    assert (entry.case_id, entry.actor_id, entry.object_type) == (worked_case.pk, auditor.pk, "cases.case")
    assert payload["details"]["sha256"] == summary.sha256 == hashlib.sha256(data).hexdigest()
    assert payload["details"]["size"] == summary.size == len(data)
    assert payload["details"]["public_key_fingerprint"] == bundle_public_key().fingerprint


def test_an_exports_own_entry_is_in_the_next_bundle_only(
    worked_case: Case, auditor: Any, tmp_path: Path
) -> None:
    export(auditor, worked_case, tmp_path / "first.zip")
    export(auditor, worked_case, tmp_path / "second.zip")

    def events(name: str) -> list[str]:
        return [json.loads(line)["event"] for line in members(tmp_path / name)["chain.jsonl"].splitlines()]

    assert "case.bundle_export" not in events("first.zip")
    assert events("second.zip").count("case.bundle_export") == 1


def test_the_same_records_give_the_same_members_but_for_the_export_and_its_chain(
    worked_case: Case, auditor: Any, tmp_path: Path
) -> None:
    export(auditor, worked_case, tmp_path / "first.zip")
    export(auditor, worked_case, tmp_path / "second.zip")
    first, second = members(tmp_path / "first.zip"), members(tmp_path / "second.zip")
    differing = {name for name in first if first[name] != second.get(name)}
    assert list(first) == list(second)
    assert differing == {"chain.jsonl", "chain_head.json", "manifest.json"}


def test_the_same_members_give_the_same_zip_bytes() -> None:
    def build() -> bytes:
        output = io.BytesIO()
        writer = _BundleZip(output)
        writer.add_json("case.json", {"id": 1, "title": "Ü"})
        writer.add_rows("rows.json", iter([{"id": 1}, {"id": 2}]), users=[])
        writer.add_bytes("evidence/1-a.txt", b"evidence" * 1000)
        writer.close()
        return output.getvalue()

    assert build() == build()


# --- Who may export -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_analysts_approvers_and_auditors_may_export(
    persona: str, request: pytest.FixtureRequest, open_case: Callable[..., Case], tmp_path: Path
) -> None:
    user = request.getfixturevalue(persona)
    summary = export(user, open_case(), tmp_path / "b.zip")
    assert summary.size == (tmp_path / "b.zip").stat().st_size


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_owners_and_outsiders_may_not_export_and_nothing_is_recorded(
    persona: str, request: pytest.FixtureRequest, open_case: Callable[..., Case]
) -> None:
    case = open_case()  # a Payments case: the owner can see it, and still may not export it
    head = AuditHead.objects.get().seq
    output = io.BytesIO()
    with pytest.raises(PermissionDenied, match=r"audit\.export_evidence_bundle"):
        evidence_bundle_export(actor=request.getfixturevalue(persona), case_id=case.pk, output=output)
    assert output.getvalue() == b""
    assert AuditHead.objects.get().seq == head
    assert not AuditVerification.objects.exists()


def test_a_case_the_exporter_cannot_see_is_refused(
    open_case: Callable[..., Case], platform_identity: Any, owner: Any
) -> None:
    """Someone given the export permission but scoped to their own teams still cannot export other teams'."""
    owner.user_permissions.add(Permission.objects.get(codename="export_evidence_bundle"))
    platform_case = open_case(identities=[platform_identity])
    with pytest.raises(PermissionDenied, match="another team"):
        evidence_bundle_export(actor=owner, case_id=platform_case.pk, output=io.BytesIO())


def test_an_unknown_case_is_named(auditor: Any) -> None:
    with pytest.raises(ValidationError, match="No case with id 999999"):
        evidence_bundle_export(actor=auditor, case_id=999_999, output=io.BytesIO())


# --- No secrets, and problems the bundle must show ----------------------------------------------------------


def test_no_planted_secret_is_in_any_member(analyst: Any, auditor: Any, tmp_path: Path) -> None:
    report = trufflehog_v3({"Raw": AWS_SECRET, "file": "deploy/prod.env", "line": 3, "Verified": True})
    findings_import(
        actor=analyst,
        report_format="trufflehog",
        source="acme/payments",
        stream=io.BytesIO(report),
        file_name="r.json",
    )
    case = Exposure.objects.get().case
    assert case is not None, "the import opened no case: the check would prove nothing"
    export(auditor, case, tmp_path / "b.zip")
    content = members(tmp_path / "b.zip")
    assert len(member_json(tmp_path / "b.zip", "exposures.json")) == 1
    assert len(member_json(tmp_path / "b.zip", "findings.json")) == 1
    planted = [AWS_SECRET.encode(), base64.b64encode(AWS_SECRET.encode()), AWS_SECRET[4:].encode()]
    assert [name for name, data in content.items() if any(secret in data for secret in planted)] == []


def test_an_evidence_file_missing_from_storage_is_left_out_and_said(
    worked_case: Case, auditor: Any, tmp_path: Path
) -> None:
    evidence = Evidence.objects.get(case=worked_case, kind=EvidenceKind.FILE)
    evidence.file.storage.delete(evidence.file.name)
    export(auditor, worked_case, tmp_path / "b.zip")
    listed = {item["id"]: item for item in member_json(tmp_path / "b.zip", "evidence.json")}
    assert listed[evidence.pk]["bundle_path"] is None
    assert not [name for name in members(tmp_path / "b.zip") if name.startswith("evidence/")]


def test_a_chain_found_broken_at_export_is_recorded_in_the_bundle(
    worked_case: Case, auditor: Any, tmp_path: Path
) -> None:
    entry = AuditEntry.objects.filter(case_id=worked_case.pk).first()
    assert entry is not None
    set_columns(entry.seq, body=entry.body.replace('"state":"', '"state":"x', 1))
    export(auditor, worked_case, tmp_path / "b.zip")
    verification = member_json(tmp_path / "b.zip", "chain_head.json")["verification_at_export"]
    assert (verification["ok"], verification["problem_kind"], verification["problem_seq"]) == (
        False,
        "changed",
        entry.seq,
    )
