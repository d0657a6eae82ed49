"""`/api/v1/findings/` (a secret at one place) and `/api/v1/imports/` (the reports imported)."""

from typing import Any

import pytest

from findings.models import Exposure, Finding, ImportRun
from tests.factories import FindingFactory, ImportRunFactory
from tests.findings.conftest import MakeExposure

pytestmark = pytest.mark.django_db

FINDINGS = "/api/v1/findings/"
IMPORTS = "/api/v1/imports/"
STAFF = ["analyst", "approver", "auditor"]


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def exposures(
    payments_identity: Any, platform_identity: Any, make_exposure: MakeExposure
) -> dict[str, Exposure]:
    return {
        "payments": make_exposure(payments_identity, locations=2),
        "platform": make_exposure(platform_identity),
        "nobody": make_exposure(None),
    }


def findings_of(*exposures: Exposure) -> set[int]:
    return set(Finding.objects.filter(exposure__in=exposures).values_list("pk", flat=True))


# --- Findings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_see_every_finding(
    api: Any, persona: str, request: pytest.FixtureRequest, exposures: dict[str, Exposure]
) -> None:
    assert ids(api(request.getfixturevalue(persona)).get(FINDINGS)) == findings_of(*exposures.values())


def test_the_owner_sees_only_the_findings_of_their_teams_exposures(
    api: Any, owner: Any, exposures: dict[str, Exposure]
) -> None:
    client = api(owner)
    theirs = Finding.objects.filter(exposure=exposures["platform"]).get()

    assert ids(client.get(FINDINGS)) == findings_of(exposures["payments"])
    assert client.get(f"{FINDINGS}{theirs.pk}/").status_code == 404


def test_an_outsider_may_not_read_findings(api: Any, outsider: Any, exposures: dict[str, Exposure]) -> None:
    assert api(outsider).get(FINDINGS).status_code == 403


def test_an_anonymous_caller_may_not_read_findings(api: Any, exposures: dict[str, Exposure]) -> None:
    assert api(None).get(FINDINGS).status_code == 401


def test_a_finding_shows_its_place_and_scrubbed_context(
    api: Any, analyst: Any, payments_identity: Any
) -> None:
    finding = FindingFactory.create(
        exposure__nhi=payments_identity, path="deploy/prod.env", line=7, context="KEY = [aws:AKIA…(20 chars)]"
    )

    body = api(analyst).get(f"{FINDINGS}{finding.pk}/").json()

    assert (body["exposure"], body["path"], body["line"]) == (finding.exposure_id, "deploy/prod.env", 7)
    assert body["context"] == "KEY = [aws:AKIA…(20 chars)]"
    assert body["first_import"] == finding.first_import_id


def test_findings_filter_by_exposure_repository_path_scanner_and_resolution(
    api: Any, analyst: Any, payments_identity: Any, exposures: dict[str, Exposure]
) -> None:
    exposure = exposures["payments"]
    elsewhere = FindingFactory.create(
        exposure=exposure,
        repository="github.com/acme/infra",
        path="ci/deploy.yml",
        scanner="trufflehog",
        resolved_at_source=True,
    )
    client = api(analyst)

    assert ids(client.get(FINDINGS, {"exposure": exposure.pk})) == findings_of(exposure)
    assert ids(client.get(FINDINGS, {"repository": "github.com/acme/infra"})) == {elsewhere.pk}
    assert ids(client.get(FINDINGS, {"path": "ci/deploy.yml"})) == {elsewhere.pk}
    assert ids(client.get(FINDINGS, {"path_prefix": "ci/"})) == {elsewhere.pk}
    assert ids(client.get(FINDINGS, {"scanner": "trufflehog"})) == {elsewhere.pk}
    assert ids(client.get(FINDINGS, {"resolved_at_source": "true"})) == {elsewhere.pk}
    assert elsewhere.pk not in ids(client.get(FINDINGS, {"resolved_at_source": "false"}))


def test_the_owner_filtering_on_another_teams_exposure_gets_nothing(
    api: Any, owner: Any, exposures: dict[str, Exposure]
) -> None:
    assert ids(api(owner).get(FINDINGS, {"exposure": exposures["platform"].pk})) == set()


@pytest.mark.parametrize("count", [2, 12])
@pytest.mark.parametrize("persona", ["analyst", "owner"])
def test_the_finding_list_costs_the_same_whatever_its_length(
    api: Any,
    persona: str,
    request: pytest.FixtureRequest,
    count: int,
    payments_identity: Any,
    make_exposure: MakeExposure,
    django_assert_num_queries: Any,
) -> None:
    make_exposure(payments_identity, locations=count)
    client = api(request.getfixturevalue(persona))
    client.get(FINDINGS)

    # Session, user, their permissions (user and groups), the page of findings.
    with django_assert_num_queries(5):
        response = client.get(FINDINGS)
    assert len(response.json()["results"]) == count


# --- Imports ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_see_every_import_with_its_summary(
    api: Any, persona: str, request: pytest.FixtureRequest
) -> None:
    run = ImportRunFactory.create(summary={"entries": 3, "created": 2})
    client = api(request.getfixturevalue(persona))

    assert ids(client.get(IMPORTS)) == {run.pk}
    body = client.get(f"{IMPORTS}{run.pk}/").json()
    assert body["summary"] == {"entries": 3, "created": 2}
    assert body["imported_by"] == run.imported_by.username


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_others_may_not_read_imports(api: Any, persona: str, request: pytest.FixtureRequest) -> None:
    run = ImportRunFactory.create()
    client = api(request.getfixturevalue(persona))

    assert client.get(IMPORTS).status_code == 403
    assert client.get(f"{IMPORTS}{run.pk}/").status_code == 403


def test_an_anonymous_caller_may_not_read_imports(api: Any, role_groups: None) -> None:
    assert api(None).get(IMPORTS).status_code == 401


def test_imports_filter_by_format_and_source(api: Any, analyst: Any) -> None:
    gitleaks = ImportRunFactory.create(report_format="gitleaks", source="github.com/acme/a")
    github = ImportRunFactory.create(report_format="github", source="github.com/acme/b")
    client = api(analyst)

    assert ids(client.get(IMPORTS, {"report_format": "github"})) == {github.pk}
    assert ids(client.get(IMPORTS, {"source": "github.com/acme/a"})) == {gitleaks.pk}
    assert ids(client.get(IMPORTS, {"imported_by": github.imported_by_id})) == {github.pk}


def test_imports_cannot_be_written_through_the_api(api: Any, analyst: Any) -> None:
    run = ImportRunFactory.create()
    client = api(analyst)

    assert client.post(IMPORTS, {}).status_code == 405
    assert client.delete(f"{IMPORTS}{run.pk}/").status_code == 405
    assert ImportRun.objects.count() == 1


@pytest.mark.parametrize("count", [2, 12])
def test_the_import_list_costs_the_same_whatever_its_length(
    api: Any, analyst: Any, count: int, django_assert_num_queries: Any
) -> None:
    ImportRunFactory.create_batch(count)
    client = api(analyst)
    client.get(IMPORTS)

    # Session, user, their permissions (user and groups), the page of imports with who imported each.
    with django_assert_num_queries(5):
        response = client.get(IMPORTS)
    assert len(response.json()["results"]) == count
