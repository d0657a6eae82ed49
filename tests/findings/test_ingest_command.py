"""`manage.py ingest_findings`: a JSON summary; on bad input a named error, exit status 1, nothing written."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from findings.models import Exposure, ImportRun
from portal.roles import AUTOMATION_USERNAME
from tests.findings.reports import AWS_SECRET, gitleaks_v8, trufflehog_v3

pytestmark = pytest.mark.django_db


def ingest(*arguments: str) -> dict[str, Any]:
    out = StringIO()
    call_command("ingest_findings", *arguments, stdout=out)
    return json.loads(out.getvalue())


def test_it_prints_the_import_summary_as_json(role_groups: None, tmp_path: Path) -> None:
    report = tmp_path / "gitleaks.json"
    report.write_bytes(gitleaks_v8({"Secret": AWS_SECRET, "File": "a.env"}))
    summary = ingest("--format", "gitleaks", "--source", "acme/payments", str(report))
    assert {
        key: summary[key] for key in ("created", "updated", "unchanged", "regressions", "cases_opened")
    } == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "regressions": 0,
        "cases_opened": 0,
    }
    assert summary["skipped"] == 0
    assert summary["skipped_reasons"] == {}


def test_it_imports_as_the_portal_account_by_default(role_groups: None, tmp_path: Path) -> None:
    report = tmp_path / "gitleaks.json"
    report.write_bytes(gitleaks_v8({"Secret": AWS_SECRET, "File": "a.env"}))
    ingest("--format", "gitleaks", "--source", "acme/payments", str(report))
    assert ImportRun.objects.get().imported_by.username == AUTOMATION_USERNAME


def test_a_malformed_report_fails_naming_the_place_and_writes_nothing(
    role_groups: None, tmp_path: Path
) -> None:
    report = tmp_path / "trufflehog.json"
    report.write_bytes(trufflehog_v3({"Raw": AWS_SECRET, "file": "a", "line": 1}) + b'{"SourceMetadata": \n')
    with pytest.raises(CommandError, match="line 2") as caught:
        ingest("--format", "trufflehog", "--source", "acme/payments", str(report))
    assert AWS_SECRET not in str(caught.value)
    assert (ImportRun.objects.count(), Exposure.objects.count()) == (0, 0)


def test_a_user_without_the_permission_is_refused(outsider: Any, tmp_path: Path) -> None:
    report = tmp_path / "gitleaks.json"
    report.write_bytes(gitleaks_v8({"Secret": AWS_SECRET, "File": "a.env"}))
    with pytest.raises(CommandError, match="import_findings"):
        ingest("--format", "gitleaks", "--source", "x", "--user", outsider.username, str(report))


def test_a_missing_file_is_named(role_groups: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"nothing\.json: no such file"):
        ingest("--format", "gitleaks", "--source", "x", str(tmp_path / "nothing.json"))


def test_bad_input_is_an_exit_status_of_one(role_groups: None, tmp_path: Path) -> None:
    report = tmp_path / "gitleaks.json"
    report.write_bytes(b"[{")
    with pytest.raises(CommandError) as caught:
        ingest("--format", "gitleaks", "--source", "x", str(report))
    # run_from_argv turns a CommandError into this exit status.
    assert caught.value.returncode == 1
    assert "not a valid gitleaks report" in str(caught.value)
