"""Where a bundle is exported from: the API endpoint, the case admin's action and the two commands."""

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import AuditEntry, AuditVerification
from audit.signing import bundle_public_key
from cases.models import Case
from tests.audit.test_bundle import load_verifier, work_case

pytestmark = pytest.mark.django_db

STAFF = ("analyst", "approver", "auditor")
CASES = reverse("admin:cases_case_changelist")


def bundle_url(case_id: Any) -> str:
    return f"/api/v1/cases/{case_id}/evidence-bundle/"


def downloaded(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def quiet(line: str) -> None:
    pass


@pytest.fixture
def case(open_case: Callable[..., Case]) -> Case:
    return open_case()


# --- API ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_roles_download_the_bundle_as_a_zip(
    persona: str, request: pytest.FixtureRequest, api: Any, case: Case
) -> None:
    response = api(request.getfixturevalue(persona)).get(bundle_url(case.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{case.reference}-evidence-bundle.zip"'
    data = downloaded(response)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()[-1] == "manifest.json"
    assert response["X-Bundle-SHA256"] == hashlib.sha256(data).hexdigest()


def test_the_api_names_the_key_and_records_the_download_in_the_chain(
    api: Any, auditor: Any, case: Case
) -> None:
    response = api(auditor).get(bundle_url(case.pk))
    data = downloaded(response)
    key = bundle_public_key()
    assert (response["X-Bundle-Public-Key"], response["X-Bundle-Key-Fingerprint"]) == (
        key.hex,
        key.fingerprint,
    )
    entry = AuditEntry.objects.get(event="case.bundle_export")
    assert (entry.case_id, entry.actor_id) == (case.pk, auditor.pk)
    assert json.loads(entry.body)["entry"]["details"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_bundle_downloaded_from_the_api_verifies(
    api: Any,
    auditor: Any,
    case_in_state: Callable[..., Case],
    analyst: Any,
    approver: Any,
    tmp_path: Path,
) -> None:
    worked = work_case(case_in_state, analyst, approver)
    path = tmp_path / "downloaded.zip"
    path.write_bytes(downloaded(api(auditor).get(bundle_url(worked.pk))))
    verifier = load_verifier(path, tmp_path)
    report = verifier.verify_bundle(path, public_key_hex=bundle_public_key().hex, emit=quiet)
    assert any(line.startswith("Transitions: all 6") for line in report.lines)


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_owners_and_outsiders_are_refused_before_anything_is_read(
    persona: str, request: pytest.FixtureRequest, api: Any, case: Case
) -> None:
    response = api(request.getfixturevalue(persona)).get(bundle_url(case.pk))
    assert response.status_code == 403
    assert "audit.export_evidence_bundle" in response.json()["detail"]
    assert not AuditEntry.objects.filter(event="case.bundle_export").exists()
    assert not AuditVerification.objects.exists()


@pytest.mark.parametrize("case_id", ["999999", "abc", "0", "1.5", "99999999999999999999999"])
def test_no_such_case_is_a_json_404(api: Any, auditor: Any, case: Case, case_id: str) -> None:
    response = api(auditor).get(bundle_url(case_id))
    assert response.status_code == 404
    assert response.json()["detail"]
    assert not AuditVerification.objects.exists()


def test_anonymous_callers_must_authenticate_for_bundles(api: Any, case: Case) -> None:
    assert api(None).get(bundle_url(case.pk)).status_code == 401


# --- Admin action -------------------------------------------------------------------------------------------


def test_the_case_list_offers_the_export_to_those_who_may(client: Any, analyst: Any, case: Case) -> None:
    client.force_login(analyst)
    assert "Export evidence bundle" in client.get(CASES).content.decode()


def test_the_admin_action_downloads_the_selected_cases_bundle(client: Any, analyst: Any, case: Case) -> None:
    client.force_login(analyst)
    chosen = client.post(CASES, {"action": "export_evidence_bundle", "_selected_action": [case.pk]})
    assert chosen.status_code == 302
    response = client.get(chosen["Location"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{case.reference}-evidence-bundle.zip"'
    data = downloaded(response)
    assert response["X-Bundle-SHA256"] == hashlib.sha256(data).hexdigest()
    assert AuditEntry.objects.get(event="case.bundle_export").actor_id == analyst.pk
    # The next page says what was exported and with which key.
    page = client.get(CASES).content.decode()
    assert f"Exported {case.reference}-evidence-bundle.zip" in page
    assert bundle_public_key().fingerprint in page


def test_the_admin_action_asks_for_one_case_at_a_time(
    client: Any, analyst: Any, open_case: Callable[..., Case]
) -> None:
    first, second = open_case(), open_case()
    client.force_login(analyst)
    response = client.post(
        CASES, {"action": "export_evidence_bundle", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    assert "Select exactly one case" in response.content.decode()
    assert not AuditEntry.objects.filter(event="case.bundle_export").exists()


def test_owners_are_not_offered_the_action_and_cannot_post_it(client: Any, owner: Any, case: Case) -> None:
    client.force_login(owner)
    assert "Export evidence bundle" not in client.get(CASES).content.decode()
    response = client.post(CASES, {"action": "export_evidence_bundle", "_selected_action": [case.pk]})
    assert response.get("Content-Type") != "application/zip"
    assert not AuditEntry.objects.filter(event="case.bundle_export").exists()


def test_the_download_page_refuses_an_owner_and_exports_nothing(client: Any, owner: Any, case: Case) -> None:
    client.force_login(owner)
    response = client.get(reverse("cases_evidence_bundle", args=(case.pk,)), follow=True)
    assert response.get("Content-Type") != "application/zip"
    assert "may not export evidence bundles" in response.content.decode()
    assert not AuditEntry.objects.filter(event="case.bundle_export").exists()


# --- Commands -----------------------------------------------------------------------------------------------


def test_the_command_writes_the_bundle_to_the_path_given(auditor: Any, case: Case, tmp_path: Path) -> None:
    path = tmp_path / "out.zip"
    out = io.StringIO()
    call_command(
        "export_evidence_bundle", case.reference, "--user", "auditor", "--output", str(path), stdout=out
    )
    data = path.read_bytes()
    assert f"SHA-256: {hashlib.sha256(data).hexdigest()}" in out.getvalue()
    assert bundle_public_key().hex in out.getvalue()
    assert AuditEntry.objects.get(event="case.bundle_export").actor_id == auditor.pk
    verifier = load_verifier(path, tmp_path)
    verifier.verify_bundle(path, public_key_hex=bundle_public_key().hex, emit=quiet)


def test_the_command_names_the_file_after_the_case_by_default(
    auditor: Any, case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    call_command("export_evidence_bundle", str(case.pk), "--user", "auditor", stdout=io.StringIO())
    assert [path.name for path in tmp_path.iterdir()] == [f"{case.reference}-evidence-bundle.zip"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--user", "owner"], "audit.export_evidence_bundle"),
        (["--user", "nobody"], "No user named 'nobody'"),
    ],
)
def test_a_refused_export_leaves_no_file(
    owner: Any, case: Case, tmp_path: Path, arguments: list[str], message: str
) -> None:
    path = tmp_path / "out.zip"
    with pytest.raises(CommandError, match=message):
        call_command("export_evidence_bundle", str(case.pk), *arguments, "--output", str(path))
    assert list(tmp_path.iterdir()) == []


def test_the_command_names_an_unknown_case(auditor: Any, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No case with id 4242"):
        call_command(
            "export_evidence_bundle", "CASE-004242", "--user", "auditor", "--output", str(tmp_path / "x")
        )
    with pytest.raises(CommandError, match="neither a case id nor a reference"):
        call_command("export_evidence_bundle", "last", "--user", "auditor")


def test_audit_public_key_prints_the_key_and_its_fingerprint() -> None:
    key = bundle_public_key()
    out = io.StringIO()
    call_command("audit_public_key", stdout=out)
    assert key.hex in out.getvalue()
    assert f"Fingerprint: {key.fingerprint}" in out.getvalue()
    out = io.StringIO()
    call_command("audit_public_key", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "algorithm": "ed25519",
        "hex": key.hex,
        "fingerprint": key.fingerprint,
    }
