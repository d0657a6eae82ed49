"""`/api/v1/mappings/`, `/api/v1/reports/alignment/`, `/api/v1/report-snapshots/` for each persona."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.mapping import DEFAULT_RULES, mapping_rules_load
from cases.models import CaseControlMapping, MappingSource, ReportSnapshot
from cases.reports.outputs import report_output
from cases.reports.services import report_snapshot_create
from frameworks.models import Control, Framework
from frameworks.services import CATALOG_DIR, catalog_load
from tests.factories import NonHumanIdentityFactory

MAPPINGS, REPORT, SNAPSHOTS = "/api/v1/mappings/", "/api/v1/reports/alignment/", "/api/v1/report-snapshots/"
OWASP = "owasp-nhi-top10-2025"
STAFF = ["analyst", "approver", "auditor"]


@pytest.fixture
def owasp(db: None, tmp_path: Path) -> Framework:
    framework = catalog_load(path=CATALOG_DIR / f"{OWASP}.json").framework
    rules = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    rules["rules"] = [rule for rule in rules["rules"] if rule["framework"] == OWASP]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), encoding="utf-8")
    mapping_rules_load(path=path)
    return framework


@pytest.fixture
def cases(owasp: Framework, open_case: Any, platform_identity: Any) -> dict[str, Any]:
    """A Payments case and a Platform case, each mapped by the rules."""
    return {"payments": open_case(), "platform": open_case(identities=[platform_identity])}


def control(ref_id: str) -> Control:
    return Control.objects.get(framework__key=OWASP, ref_id=ref_id)


def case_ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["case"] for row in response.json()["results"]}


# --- Mappings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_roles_see_every_cases_mappings(
    persona: str, request: pytest.FixtureRequest, api: Any, cases: dict[str, Any]
) -> None:
    rows = api(request.getfixturevalue(persona)).get(MAPPINGS, {"page_size": 500})
    assert case_ids(rows) == {cases["payments"].pk, cases["platform"].pk}
    first = rows.json()["results"][0]
    assert first["framework_key"] == OWASP
    assert first["source"] == MappingSource.RULE
    assert first["rationale"]


def test_an_owner_sees_only_the_mappings_of_their_cases(owner: Any, api: Any, cases: dict[str, Any]) -> None:
    client = api(owner)
    assert case_ids(client.get(MAPPINGS, {"page_size": 500})) == {cases["payments"].pk}
    theirs = CaseControlMapping.objects.filter(case=cases["platform"]).first()
    assert theirs is not None
    assert client.get(f"{MAPPINGS}{theirs.pk}/").status_code == 404


def test_an_outsider_sees_no_mapping(outsider: Any, api: Any, cases: dict[str, Any]) -> None:
    assert case_ids(api(outsider).get(MAPPINGS)) == set()


def test_anonymous_callers_must_authenticate_for_mappings(api: Any) -> None:
    assert api(None).get(MAPPINGS).status_code == 401


def test_mappings_filter_by_case_and_control(analyst: Any, api: Any, cases: dict[str, Any]) -> None:
    client = api(analyst)
    assert case_ids(client.get(MAPPINGS, {"case": cases["payments"].pk})) == {cases["payments"].pk}
    nhi2 = control("NHI2")
    rows = client.get(MAPPINGS, {"control": nhi2.pk}).json()["results"]
    assert rows
    assert {row["control_ref_id"] for row in rows} == {"NHI2"}
    assert client.get(MAPPINGS, {"framework_key": "nope"}).json()["results"] == []


def test_an_analyst_maps_a_case_by_hand_with_a_rationale(
    analyst: Any, api: Any, cases: dict[str, Any]
) -> None:
    case, nhi9 = cases["payments"], control("NHI9")
    response = api(analyst).post(MAPPINGS, {"case": case.pk, "control": nhi9.pk, "rationale": "reused by CI"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["source"], body["is_active"], body["changed_by"]) == ("manual", True, "analyst")
    mapping = CaseControlMapping.objects.get(case=case, control=nhi9)
    assert mapping.history.latest().history_change_reason == "added by hand: reused by CI"


def test_mapping_twice_is_a_conflict(analyst: Any, api: Any, cases: dict[str, Any]) -> None:
    body = {"case": cases["payments"].pk, "control": control("NHI9").pk, "rationale": "reused"}
    api(analyst).post(MAPPINGS, body)
    again = api(analyst).post(MAPPINGS, body)
    assert again.status_code == 409
    assert "already mapped" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"rationale": "  "}, "rationale"), ({"control": 999999}, "control"), ({"case": 999999}, "case")],
)
def test_a_bad_mapping_names_the_field_and_writes_nothing(
    analyst: Any, api: Any, cases: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    before = CaseControlMapping.objects.count()
    full = {"case": cases["payments"].pk, "control": control("NHI9").pk, "rationale": "why", **body}
    response = api(analyst).post(MAPPINGS, full)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert CaseControlMapping.objects.count() == before


@pytest.mark.parametrize("persona", ["approver", "auditor", "owner", "outsider"])
def test_only_analysts_map_cases(
    persona: str, request: pytest.FixtureRequest, api: Any, cases: dict[str, Any]
) -> None:
    body = {"case": cases["payments"].pk, "control": control("NHI9").pk, "rationale": "reused"}
    assert api(request.getfixturevalue(persona)).post(MAPPINGS, body).status_code == 403
    assert not CaseControlMapping.objects.filter(control=control("NHI9")).exists()


def test_an_analyst_removes_a_mapping_which_stays_as_history(
    analyst: Any, api: Any, cases: dict[str, Any]
) -> None:
    mapping = CaseControlMapping.objects.filter(case=cases["payments"], is_active=True).first()
    assert mapping is not None
    url = f"{MAPPINGS}{mapping.pk}/remove/"
    response = api(analyst).post(url, {"rationale": "not an NHI of ours"})
    assert response.status_code == 200
    assert (response.json()["is_active"], response.json()["removed_by_hand"]) == (False, True)
    assert api(analyst).post(url, {"rationale": "again"}).status_code == 409
    assert api(analyst).post(url, {}).json() == {"rationale": ["This field is required."]}


def test_an_owner_may_see_but_not_remove_their_cases_mapping(
    owner: Any, api: Any, cases: dict[str, Any]
) -> None:
    mapping = CaseControlMapping.objects.filter(case=cases["payments"], is_active=True).first()
    assert mapping is not None
    assert api(owner).post(f"{MAPPINGS}{mapping.pk}/remove/", {"rationale": "no"}).status_code == 403
    theirs = CaseControlMapping.objects.filter(case=cases["platform"], is_active=True).first()
    assert theirs is not None
    assert api(owner).post(f"{MAPPINGS}{theirs.pk}/remove/", {"rationale": "no"}).status_code == 404
    assert CaseControlMapping.objects.get(pk=mapping.pk).is_active


# --- The alignment report -----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_roles_read_the_alignment_report_as_the_json_download_has_it(
    persona: str, request: pytest.FixtureRequest, api: Any, cases: dict[str, Any], owasp: Framework
) -> None:
    response = api(request.getfixturevalue(persona)).get(REPORT, {"framework": OWASP, "since": "2020-01-01"})
    assert response.status_code == 200, response.content
    body = response.json()
    download = json.loads(report_output(framework_key=OWASP, fmt="json", since=None, until=None).content)
    for document in (body, download):
        document.pop("generated_at")
        document.pop("period")
    assert body == download
    assert body["summary"]["mapped_cases"] == 2


def test_the_report_takes_the_framework_by_id_too(analyst: Any, api: Any, owasp: Framework) -> None:
    response = api(analyst).get(REPORT, {"framework": owasp.pk, "format": "json"})
    assert response.status_code == 200
    assert response.json()["framework"]["key"] == OWASP


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "framework"),
        ({"framework": "nist-csf-9"}, "framework"),
        ({"framework": OWASP, "since": "yesterday"}, "since"),
        ({"framework": OWASP, "since": "2026-02-01", "until": "2026-01-01"}, "until"),
    ],
)
def test_a_bad_report_request_names_the_parameter(
    analyst: Any, api: Any, owasp: Framework, params: dict[str, str], field: str
) -> None:
    response = api(analyst).get(REPORT, params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_owners_and_outsiders_may_not_read_the_report(
    persona: str, request: pytest.FixtureRequest, api: Any, owasp: Framework
) -> None:
    response = api(request.getfixturevalue(persona)).get(REPORT, {"framework": OWASP})
    assert response.status_code == 403
    assert "cases.view_all_cases" in response.json()["detail"]


def test_anonymous_callers_must_authenticate_for_the_report(api: Any) -> None:
    assert api(None).get(REPORT, {"framework": OWASP}).status_code == 401


# --- Report snapshots ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_roles_save_a_snapshot_and_get_its_exact_bytes(
    persona: str, request: pytest.FixtureRequest, api: Any, cases: dict[str, Any]
) -> None:
    user = request.getfixturevalue(persona)
    client = api(user)
    response = client.post(SNAPSHOTS, {"framework": OWASP, "format": "pdf", "since": "2020-01-01"})
    assert response.status_code == 201, response.content
    body = response.json()
    stored = ReportSnapshot.objects.get(pk=body["id"])
    assert (stored.requested_by, stored.format, str(stored.since)) == (user, "pdf", "2020-01-01")
    assert body["size"] == len(bytes(stored.content))
    assert body["sha256"] == stored.sha256
    download = client.get(body["content_url"], HTTP_ACCEPT="application/pdf")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download.content.startswith(b"%PDF-")
    assert hashlib.sha256(download.content).hexdigest() == stored.sha256
    assert download["X-Content-SHA256"] == stored.sha256


def test_snapshots_are_listed_without_their_bytes(analyst: Any, api: Any, owasp: Framework) -> None:
    for fmt in ("csv", "json"):
        report_snapshot_create(actor=analyst, framework_key=OWASP, fmt=fmt, since=None, until=None)
    rows = api(analyst).get(SNAPSHOTS).json()["results"]
    assert [row["format"] for row in rows] == ["json", "csv"]
    assert "content" not in rows[0]
    assert [
        row["format"] for row in api(analyst).get(SNAPSHOTS, {"report_format": "csv"}).json()["results"]
    ] == ["csv"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"framework": OWASP, "format": "docx"}, "format"),
        ({"framework": "nope", "format": "csv"}, "framework"),
        ({"framework": OWASP, "format": "csv", "since": "2026-02-01", "until": "2026-01-01"}, "until"),
    ],
)
def test_a_bad_snapshot_request_names_the_field_and_stores_nothing(
    analyst: Any, api: Any, owasp: Framework, body: dict[str, str], field: str
) -> None:
    response = api(analyst).post(SNAPSHOTS, body)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not ReportSnapshot.objects.exists()


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_owners_and_outsiders_neither_see_nor_save_snapshots(
    persona: str, request: pytest.FixtureRequest, api: Any, analyst: Any, owasp: Framework
) -> None:
    snapshot = report_snapshot_create(actor=analyst, framework_key=OWASP, fmt="csv", since=None, until=None)
    client = api(request.getfixturevalue(persona))
    assert client.get(SNAPSHOTS).status_code == 403
    assert client.get(f"{SNAPSHOTS}{snapshot.pk}/content/").status_code == 403
    assert client.post(SNAPSHOTS, {"framework": OWASP, "format": "csv"}).status_code == 403
    assert ReportSnapshot.objects.count() == 1


def test_snapshots_cannot_be_changed_or_deleted(analyst: Any, api: Any, owasp: Framework) -> None:
    snapshot = report_snapshot_create(actor=analyst, framework_key=OWASP, fmt="csv", since=None, until=None)
    client = api(analyst)
    assert client.patch(f"{SNAPSHOTS}{snapshot.pk}/", {"format": "json"}).status_code == 405
    assert client.delete(f"{SNAPSHOTS}{snapshot.pk}/").status_code == 405


def test_anonymous_callers_must_authenticate_for_snapshots(api: Any) -> None:
    assert api(None).get(SNAPSHOTS).status_code == 401


# --- A fixed number of queries per list ---------------------------------------------------------------------


def _count(client: Any, url: str) -> tuple[int, int]:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"page_size": 500})
    assert response.status_code == 200
    return len(captured), len(response.json()["results"])


@pytest.mark.parametrize("persona", ["analyst", "owner"])
def test_the_mapping_list_runs_the_same_queries_for_2_cases_as_for_12(
    persona: str, request: pytest.FixtureRequest, api: Any, owasp: Framework, open_case: Any, payments: Any
) -> None:
    client = api(request.getfixturevalue(persona))
    for _ in range(2):
        open_case(identities=[NonHumanIdentityFactory.create(owner_team=payments)])
    few, few_rows = _count(client, MAPPINGS)
    for _ in range(10):
        open_case(identities=[NonHumanIdentityFactory.create(owner_team=payments)])
    many, many_rows = _count(client, MAPPINGS)
    assert many_rows > few_rows > 0
    assert many == few


def test_the_snapshot_list_runs_the_same_queries_for_2_rows_as_for_12(
    analyst: Any, approver: Any, api: Any, owasp: Framework
) -> None:
    client = api(analyst)
    for who in (analyst, approver):
        report_snapshot_create(actor=who, framework_key=OWASP, fmt="csv", since=None, until=None)
    few, _ = _count(client, SNAPSHOTS)
    for n in range(10):
        report_snapshot_create(
            actor=(analyst, approver)[n % 2], framework_key=OWASP, fmt="csv", since=None, until=None
        )
    many, rows = _count(client, SNAPSHOTS)
    assert rows == 12
    assert many == few
