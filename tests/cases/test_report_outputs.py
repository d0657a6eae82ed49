"""The alignment report's outputs: CSV, JSON, OSCAL, PDF, printable page, the command and the admin page."""

import copy
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from cases.alignment import alignment_report
from cases.mapping import DEFAULT_RULES, mapping_rules_load
from cases.models import Case, CaseState, Severity
from cases.reports.oscal import oscal_document, oscal_errors, token
from cases.reports.outputs import report_output
from cases.reports.render import CONTROL_COLUMNS
from frameworks.models import Framework
from frameworks.services import CATALOG_DIR, catalog_load

CSF = "nist-csf-2.0"
OWASP = "owasp-nhi-top10-2025"
AI_RMF = "nist-ai-rmf-1.0"
FORMATS = ("html", "csv", "json", "pdf", "oscal")


def load(tmp_path: Path, *keys: str) -> None:
    """Load only the catalogs a test reads, with their shipped mapping rules: CSF alone takes ~0.5 s."""
    for key in keys:
        catalog_load(path=CATALOG_DIR / f"{key}.json")
    rules = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    rules["rules"] = [rule for rule in rules["rules"] if rule["framework"] in keys]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    mapping_rules_load(path=path)


@pytest.fixture
def catalogs(db: None, tmp_path: Path) -> None:
    load(tmp_path, OWASP)


@pytest.fixture
def all_catalogs(db: None, tmp_path: Path) -> None:
    load(tmp_path, OWASP, CSF, AI_RMF)


def _cases(case_in_state: Callable[..., Case], open_case: Callable[..., Case]) -> None:
    case_in_state(CaseState.CLOSED, severity=Severity.HIGH)
    open_case()


@pytest.fixture
def many_cases(
    all_catalogs: None, case_in_state: Callable[..., Case], open_case: Callable[..., Case]
) -> None:
    _cases(case_in_state, open_case)


@pytest.fixture
def some_cases(catalogs: None, case_in_state: Callable[..., Case], open_case: Callable[..., Case]) -> None:
    """One closed severe case (four-eyes) and one still identified, both mapped by the shipped rules."""
    _cases(case_in_state, open_case)


def test_csv_has_the_header_and_one_row_per_control(many_cases: None) -> None:
    output = report_output(framework_key=CSF, fmt="csv", since=None, until=None)
    rows = list(csv.reader(io.StringIO(output.content.decode("utf-8"))))
    report = output.report
    assert tuple(rows[0]) == CONTROL_COLUMNS
    assert [row[0] for row in rows[1:]] == [control.ref_id for control in report.controls]
    assert output.content_type.startswith("text/csv")
    mapped = {row[0]: int(row[CONTROL_COLUMNS.index("mapped_cases")]) for row in rows[1:]}
    assert sum(mapped.values()) > 0, "the shipped rules map the test cases to CSF controls"


def test_json_carries_framework_attribution_summary_groups_controls_and_gaps(some_cases: None) -> None:
    data = json.loads(report_output(framework_key=OWASP, fmt="json", since=None, until=None).content)
    assert set(data) == {
        "framework",
        "period",
        "generated_at",
        "audit_chain",
        "summary",
        "groups",
        "controls",
        "gaps",
    }
    framework = Framework.objects.get(key=OWASP)
    assert data["framework"]["license"] == framework.license
    assert data["framework"]["url"] == framework.url != ""
    control = data["controls"][0]
    assert {"ref_id", "statement", "by_state", "mapped_cases", "evidence_coverage", "is_gap"} <= set(control)
    assert control["statement"], "the OWASP statements are shown with their attribution"
    assert data["gaps"] == [row["ref_id"] for row in data["controls"] if row["is_gap"]]


@pytest.mark.parametrize("framework_key", [CSF, OWASP, AI_RMF])
def test_oscal_document_validates_against_the_official_schema(many_cases: None, framework_key: str) -> None:
    output = report_output(framework_key=framework_key, fmt="oscal", since=None, until=None)
    document = json.loads(output.content)
    assert oscal_errors(document) == []
    result = document["assessment-results"]["results"][0]
    states = {finding["target"]["status"]["state"] for finding in result["findings"]}
    gaps = {token(row.ref_id) for row in output.report.gaps}
    not_satisfied = {
        finding["target"]["target-id"]
        for finding in result["findings"]
        if finding["target"]["status"]["state"] == "not-satisfied"
    }
    assert not_satisfied == gaps
    assert states <= {"satisfied", "not-satisfied"}


def test_a_broken_oscal_document_fails_validation(catalogs: None) -> None:
    """Proves the validator bites, including the `\\p{L}` token patterns Python's `re` cannot compile."""
    report = alignment_report(framework_key=OWASP)
    good = oscal_document(report, Framework.objects.get(key=OWASP))
    assert oscal_errors(good) == []

    missing_uuid = copy.deepcopy(good)
    del missing_uuid["assessment-results"]["uuid"]
    bad_token = copy.deepcopy(good)
    bad_token["assessment-results"]["results"][0]["findings"][0]["target"]["target-id"] = "1 not a token"
    bad_state = copy.deepcopy(good)
    bad_state["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = "maybe"
    for broken in (missing_uuid, bad_token, bad_state):
        assert oscal_errors(broken), broken


def test_oscal_ids_are_tokens_even_for_refs_with_spaces() -> None:
    assert token("GOVERN 1.1") == "GOVERN_1.1"
    assert token("GV.OC-01") == "GV.OC-01"
    assert token("1A")[0] == "_"


def test_pdf_is_a_pdf_with_pages(many_cases: None) -> None:
    content = report_output(framework_key=CSF, fmt="pdf", since=None, until=None).content
    assert content.startswith(b"%PDF-")
    assert content.count(b"/Type /Page\n") + content.count(b"/Type /Page ") >= 2  # CSF needs several pages


def test_printable_page_shows_the_chart_statements_and_licence(some_cases: None) -> None:
    page = report_output(framework_key=OWASP, fmt="html", since=None, until=None).content.decode()
    framework = Framework.objects.get(key=OWASP)
    assert "<svg" in page
    assert "<script" not in page
    assert "Cases per risk" in page
    assert "Keys, tokens, passwords and certificates end up in code" in page
    assert framework.license.split(".")[0] in page
    assert f'href="{framework.url}"' in page


def test_category_chart_for_a_framework_with_categories(many_cases: None) -> None:
    page = report_output(framework_key=CSF, fmt="html", since=None, until=None).content.decode()
    assert "Controls with cases, per category" in page


# --- The command --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_command_writes_each_format_to_the_output_file(some_cases: None, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    out = io.StringIO()
    call_command(
        "alignment_report", framework=OWASP, format=fmt, since="2020-01-01", output=str(target), stdout=out
    )
    content = target.read_bytes()
    assert content
    assert str(target) in out.getvalue()
    if fmt == "pdf":
        assert content.startswith(b"%PDF-")
    elif fmt in ("json", "oscal"):
        json.loads(content)


def test_command_writes_text_formats_to_stdout(some_cases: None) -> None:
    out = io.StringIO()
    call_command("alignment_report", framework=OWASP, format="csv", stdout=out)
    assert out.getvalue().startswith("ref_id,kind,title")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--framework", "nist-csf-9"], "Unknown framework 'nist-csf-9'"),
        (["--framework", OWASP, "--since", "2025-13-01"], "--since"),
        (["--framework", OWASP, "--until", "yesterday"], "--until"),
        (["--framework", OWASP, "--since", "2025-02-01", "--until", "2025-01-01"], "starts after"),
        (["--framework", OWASP, "--format", "pdf"], "--output"),
    ],
)
def test_command_refuses_bad_arguments_clearly(catalogs: None, arguments: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("alignment_report", *arguments, stdout=io.StringIO())


def test_command_exits_non_zero_on_a_bad_framework(catalogs: None) -> None:
    with pytest.raises(SystemExit) as exit_info:
        call_command_from_argv(["alignment_report", "--framework", "nope"])
    assert exit_info.value.code != 0


def call_command_from_argv(argv: list[str]) -> None:
    from django.core.management import ManagementUtility  # noqa: PLC0415 - only this test drives argv

    ManagementUtility(["manage.py", *argv]).execute()


# --- The admin page -----------------------------------------------------------------------------------------

REPORT_URL = "/admin/cases/alignment-report/"


@pytest.mark.parametrize("who", ["analyst", "auditor", "approver"])
def test_admin_report_page_shows_for_readers_of_all_cases(
    some_cases: None, client: Any, persona: Callable[[str], Any], who: str
) -> None:
    client.force_login(persona(who))
    response = client.get(REPORT_URL, {"framework": OWASP, "since": "2020-01-01"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<svg" in page
    assert "Save snapshot" in page
    for fmt in FORMATS:
        assert f"format={fmt}" in page
    assert reverse("cases_alignment_report") == REPORT_URL


def test_admin_index_links_to_the_report(some_cases: None, client: Any, analyst: Any, owner: Any) -> None:
    client.force_login(analyst)
    assert REPORT_URL in client.get("/admin/").content.decode()
    client.force_login(owner)
    assert REPORT_URL not in client.get("/admin/").content.decode()


@pytest.mark.parametrize("fmt", FORMATS)
def test_admin_downloads_each_format(some_cases: None, client: Any, auditor: Any, fmt: str) -> None:
    client.force_login(auditor)
    response = client.get(REPORT_URL, {"framework": OWASP, "format": fmt})
    assert response.status_code == 200
    assert "filename=" in response["Content-Disposition"]


def test_admin_report_page_rejects_an_inverted_period(some_cases: None, client: Any, analyst: Any) -> None:
    client.force_login(analyst)
    response = client.get(REPORT_URL, {"framework": OWASP, "since": "2025-02-01", "until": "2025-01-01"})
    assert response.status_code == 200
    assert "starts after it ends" in response.content.decode()
    assert 'id="alignment-report"' not in response.content.decode()


def test_admin_report_page_is_refused_to_owner_and_outsider(
    some_cases: None, client: Any, owner: Any, outsider: Any
) -> None:
    client.force_login(owner)
    assert client.get(REPORT_URL, {"framework": OWASP}).status_code == 403
    assert client.get(REPORT_URL, {"framework": OWASP, "format": "csv"}).status_code == 403
    client.force_login(outsider)
    response = client.get(REPORT_URL, {"framework": OWASP, "format": "csv"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
