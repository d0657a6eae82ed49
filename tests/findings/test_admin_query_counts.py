"""The secrets-findings changelists run a fixed number of queries, however many rows there are."""

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.models import Case, CaseKind
from findings.models import ImportRun
from tests.factories import ExposureFactory, FindingFactory, ImportRunFactory, NonHumanIdentityFactory

pytestmark = pytest.mark.django_db


def grow(count: int, *, run: ImportRun, identities: list[Any], case: Case) -> None:
    for n in range(count):
        exposure = ExposureFactory.create(nhi=identities[n % len(identities)], case=case if n % 2 else None)
        FindingFactory.create(exposure=exposure, first_import=run, last_import=run)
        ImportRunFactory.create(imported_by=run.imported_by)


def queries_for(client: Client, url: str, params: dict[str, str]) -> int:
    client.get(url, params)  # warm per-process caches (content types, permissions) first
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    assert response.context["cl"].result_count > 0, "the page listed no row: the count proves nothing"
    return len(captured)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("exposure", {}),
        ("exposure", {"triage": "waiting"}),
        ("exposure", {"q": "aws"}),
        ("exposure", {"state": "pending", "validity": "unknown"}),
        ("finding", {}),
        ("finding", {"q": "deploy"}),
        ("importrun", {}),
    ],
)
def test_a_findings_changelist_query_count_does_not_grow_with_rows(
    client: Client, analyst: Any, payments: Any, model: str, params: dict[str, str]
) -> None:
    client.force_login(analyst)
    url = reverse(f"admin:findings_{model}_changelist")
    run = ImportRunFactory.create(imported_by=analyst)
    identities = [NonHumanIdentityFactory.create(owner_team=payments) for _ in range(3)]
    case = Case.objects.create(title="Leaked keys", kind=CaseKind.SECRET_EXPOSURE, opened_by=analyst)
    if params.get("triage"):
        identities = [None]  # type: ignore[list-item]
    grow(3, run=run, identities=identities, case=case)
    few = queries_for(client, url, params)
    grow(30, run=run, identities=identities, case=case)
    many = queries_for(client, url, params)
    assert few == many
