"""Report snapshots: what was shown, stored with who asked, when and its sha256; read-only afterwards."""

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from cases.mapping import DEFAULT_RULES, mapping_rules_load
from cases.models import ReportSnapshot
from cases.reports.services import report_snapshot_create
from frameworks.services import CATALOG_DIR, catalog_load

OWASP = "owasp-nhi-top10-2025"


@pytest.fixture
def owasp(db: None, tmp_path: Path) -> None:
    catalog_load(path=CATALOG_DIR / f"{OWASP}.json")
    rules = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    rules["rules"] = [rule for rule in rules["rules"] if rule["framework"] == OWASP]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    mapping_rules_load(path=path)


@pytest.fixture
def snapshot(owasp: None, auditor: Any, open_case: Any) -> ReportSnapshot:
    open_case()
    return report_snapshot_create(
        actor=auditor, framework_key=OWASP, fmt="pdf", since=date(2020, 1, 1), until=None
    )


def test_snapshot_stores_parameters_requester_and_the_sha256_of_the_exact_content(
    snapshot: ReportSnapshot, auditor: Any
) -> None:
    stored = ReportSnapshot.objects.get(pk=snapshot.pk)
    content = bytes(stored.content)
    assert content.startswith(b"%PDF-")
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert (stored.framework_key, stored.format, stored.since, stored.until) == (
        OWASP,
        "pdf",
        date(2020, 1, 1),
        None,
    )
    assert stored.requested_by == auditor
    assert stored.content_type == "application/pdf"
    assert stored.filename.endswith(".pdf")


@pytest.mark.parametrize("fmt", ["html", "csv", "json", "oscal"])
def test_each_format_can_be_snapshotted(owasp: None, analyst: Any, fmt: str) -> None:
    stored = report_snapshot_create(actor=analyst, framework_key=OWASP, fmt=fmt, since=None, until=None)
    assert stored.sha256 == hashlib.sha256(bytes(stored.content)).hexdigest()


@pytest.mark.parametrize("who", ["owner", "outsider"])
def test_only_analysts_approvers_and_auditors_may_save_snapshots(
    owasp: None, persona: Any, approver: Any, who: str
) -> None:
    with pytest.raises(PermissionDenied):
        report_snapshot_create(actor=persona(who), framework_key=OWASP, fmt="csv", since=None, until=None)
    assert not ReportSnapshot.objects.exists()
    report_snapshot_create(actor=approver, framework_key=OWASP, fmt="csv", since=None, until=None)
    assert ReportSnapshot.objects.count() == 1


def test_download_returns_the_identical_bytes(snapshot: ReportSnapshot, client: Any, auditor: Any) -> None:
    client.force_login(auditor)
    response = client.get(reverse("admin:cases_reportsnapshot_download", args=[snapshot.pk]))
    assert response.status_code == 200
    assert response.content == bytes(ReportSnapshot.objects.get(pk=snapshot.pk).content)
    assert hashlib.sha256(response.content).hexdigest() == snapshot.sha256
    assert response["Content-Type"] == "application/pdf"
    page = client.get(reverse("admin:cases_reportsnapshot_change", args=[snapshot.pk])).content.decode()
    assert snapshot.sha256 in page


def test_snapshot_download_is_refused_to_the_owner(snapshot: ReportSnapshot, client: Any, owner: Any) -> None:
    client.force_login(owner)
    assert client.get(reverse("admin:cases_reportsnapshot_download", args=[snapshot.pk])).status_code == 403


def test_snapshots_cannot_be_changed_or_deleted_in_the_admin(
    snapshot: ReportSnapshot, client: Any, admin_user: Any
) -> None:
    client.force_login(admin_user)  # even a superuser
    change_url = reverse("admin:cases_reportsnapshot_change", args=[snapshot.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    client.post(change_url, {"framework_key": "tampered", "sha256": "0" * 64})
    assert client.get(reverse("admin:cases_reportsnapshot_delete", args=[snapshot.pk])).status_code == 403
    client.post(reverse("admin:cases_reportsnapshot_delete", args=[snapshot.pk]), {"post": "yes"})
    client.post(
        reverse("admin:cases_reportsnapshot_changelist"),
        {"action": "delete_selected", "_selected_action": [snapshot.pk], "post": "yes"},
    )
    assert client.get(reverse("admin:cases_reportsnapshot_add")).status_code == 403
    stored = ReportSnapshot.objects.get(pk=snapshot.pk)
    assert (stored.framework_key, stored.sha256) == (OWASP, snapshot.sha256)


def test_the_model_refuses_updates_and_deletes(snapshot: ReportSnapshot) -> None:
    snapshot.content = b"tampered"
    with pytest.raises(ValueError, match="read-only"):
        snapshot.save()
    with pytest.raises(ValueError, match="read-only"):
        snapshot.delete()
    assert bytes(ReportSnapshot.objects.get(pk=snapshot.pk).content).startswith(b"%PDF-")


def test_save_snapshot_button_stores_what_the_page_shows(owasp: None, client: Any, auditor: Any) -> None:
    client.force_login(auditor)
    response = client.post(
        "/admin/cases/alignment-report/",
        {"framework": OWASP, "since": "2020-01-01", "until": "", "format": "json"},
    )
    stored = ReportSnapshot.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:cases_reportsnapshot_change", args=[stored.pk])
    assert stored.requested_by == auditor
    assert json.loads(bytes(stored.content))["period"] == {"since": "2020-01-01", "until": None}


def test_save_snapshot_button_is_refused_without_the_permission(owasp: None, client: Any, owner: Any) -> None:
    client.force_login(owner)
    response = client.post("/admin/cases/alignment-report/", {"framework": OWASP, "format": "json"})
    assert response.status_code == 403
    assert not ReportSnapshot.objects.exists()
