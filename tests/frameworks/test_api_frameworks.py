"""`/api/v1/frameworks/` and `/api/v1/controls/`: the catalogs, read-only, for everyone with a role."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from frameworks.models import Control, ControlKind, Framework
from frameworks.services import CATALOG_DIR, catalog_load

FRAMEWORKS, CONTROLS = "/api/v1/frameworks/", "/api/v1/controls/"
OWASP = "owasp-nhi-top10-2025"


@pytest.fixture
def owasp(db: None) -> Framework:
    return catalog_load(path=CATALOG_DIR / f"{OWASP}.json").framework


def all_rows(client: Any, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    response = client.get(url, {"page_size": 500, **(params or {})})
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.mark.parametrize("persona", ["analyst", "approver", "auditor", "owner"])
def test_every_role_reads_the_catalogs(
    persona: str, request: pytest.FixtureRequest, api: Any, owasp: Framework
) -> None:
    client = api(request.getfixturevalue(persona))
    assert [row["key"] for row in all_rows(client, FRAMEWORKS)] == [OWASP]
    controls = all_rows(client, CONTROLS)
    assert len(controls) == 10
    assert controls[0]["ref_id"] == "NHI1"
    assert controls[0]["framework_key"] == OWASP
    assert client.get(f"{FRAMEWORKS}{owasp.pk}/").json()["license"]


def test_an_outsider_sees_no_catalog(outsider: Any, api: Any, owasp: Framework) -> None:
    client = api(outsider)
    assert all_rows(client, FRAMEWORKS) == []
    assert all_rows(client, CONTROLS) == []
    assert client.get(f"{FRAMEWORKS}{owasp.pk}/").status_code == 404


def test_anonymous_callers_must_authenticate(api: Any) -> None:
    assert api(None).get(FRAMEWORKS).status_code == 401
    assert api(None).get(CONTROLS).status_code == 401


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_catalogs_cannot_be_written(method: str, analyst: Any, api: Any, owasp: Framework) -> None:
    url = FRAMEWORKS if method == "post" else f"{FRAMEWORKS}{owasp.pk}/"
    assert getattr(api(analyst), method)(url, {"name": "x"}).status_code == 405
    control = owasp.controls.first()
    assert control is not None
    url = CONTROLS if method == "post" else f"{CONTROLS}{control.pk}/"
    assert getattr(api(analyst), method)(url, {"title": "x"}).status_code == 405


def test_controls_filter_by_framework_and_search_by_id_or_title(
    analyst: Any, api: Any, owasp: Framework
) -> None:
    other = Framework.objects.create(
        key="other", name="Other", version="1", publisher="x", source="x", license="x"
    )
    Control.objects.create(
        framework=other, ref_id="OT-1", kind=ControlKind.RISK, title="Secret Leakage", statement="x"
    )
    client = api(analyst)
    assert len(all_rows(client, CONTROLS, {"framework": owasp.pk})) == 10
    assert [row["ref_id"] for row in all_rows(client, CONTROLS, {"framework_key": "other"})] == ["OT-1"]
    assert {row["ref_id"] for row in all_rows(client, CONTROLS, {"search": "secret leakage"})} == {
        "NHI2",
        "OT-1",
    }
    assert [row["ref_id"] for row in all_rows(client, CONTROLS, {"search": "NHI10"})] == ["NHI10"]


def test_controls_list_in_a_fixed_number_of_queries(analyst: Any, api: Any, owasp: Framework) -> None:
    client = api(analyst)

    def queries() -> int:
        client.get(CONTROLS)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(CONTROLS, {"page_size": 500}).status_code == 200
        return len(captured)

    few = queries()
    frameworks = [
        Framework.objects.create(
            key=f"f{n}", name=f"F{n}", version="1", publisher="x", source="x", license="x"
        )
        for n in range(5)
    ]
    Control.objects.bulk_create(
        Control(framework=framework, ref_id=f"C-{n}", kind=ControlKind.RISK, statement="x")
        for framework in frameworks
        for n in range(10)
    )
    assert queries() == few
    client.get(FRAMEWORKS)
    with CaptureQueriesContext(connection) as captured:
        assert len(all_rows(client, FRAMEWORKS)) == 6
    Framework.objects.create(key="g", name="G", version="1", publisher="x", source="x", license="x")
    with CaptureQueriesContext(connection) as again:
        assert len(all_rows(client, FRAMEWORKS)) == 7
    assert len(again) == len(captured)
