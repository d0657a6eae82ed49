"""Admin changelists run a fixed number of queries, however many rows the table holds."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.models import Case, CaseKind, CaseState, Severity
from nhi_inventory.models import NHIKind, NonHumanIdentity

CASE_LIST = reverse("admin:cases_case_changelist")
NHI_LIST = reverse("admin:nhi_inventory_nonhumanidentity_changelist")


def make_cases(count: int, *, teams: list[Any], assignee: Any) -> None:
    Case.objects.bulk_create(
        Case(
            title=f"Leaked token {n}",
            kind=CaseKind.SECRET_EXPOSURE if n % 2 else CaseKind.NHI_MISUSE,
            severity=Severity.HIGH,
            state=CaseState.IDENTIFIED if n % 3 else CaseState.ASSIGNED,
            owning_team=teams[(n // 2) % len(teams)],
            assignee=assignee,
            opened_by=assignee,
        )
        for n in range(count)
    )


def make_identities(count: int, *, teams: list[Any], owner: Any) -> None:
    NonHumanIdentity.objects.bulk_create(
        NonHumanIdentity(
            name=f"svc-bot-{n:04d}",
            kind=NHIKind.API_KEY if n % 2 else NHIKind.SERVICE_ACCOUNT,
            provider="AWS",
            owner_team=teams[(n // 2) % len(teams)],
            owner=owner,
        )
        for n in range(count)
    )


def queries_for(client, url: str, params: dict[str, str]) -> int:
    client.get(url, params)  # warm per-process caches (content types, permissions) first
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    assert response.context["cl"].result_count > 0, "the page listed no row: the count proves nothing"
    return len(captured)


def compare(client, url: str, params: dict[str, str], grow) -> tuple[int, int]:
    grow(5)
    few = queries_for(client, url, params)
    grow(495)
    many = queries_for(client, url, params)
    return few, many


CASE_PARAMS = [
    pytest.param({}, id="plain"),
    pytest.param({"state": "identified"}, id="filtered"),
    pytest.param({"q": "Leaked token"}, id="searched"),
    pytest.param(
        {"state": "identified", "kind": "secret_exposure", "q": "token"}, id="filtered-and-searched"
    ),
]


@pytest.mark.parametrize("params", CASE_PARAMS)
def test_the_case_changelist_query_count_does_not_grow_with_rows_for_the_analyst(
    client, analyst, payments, platform, params
):
    client.force_login(analyst)

    few, many = compare(
        client, CASE_LIST, params, lambda n: make_cases(n, teams=[payments, platform], assignee=analyst)
    )

    assert few == many


@pytest.mark.parametrize("params", CASE_PARAMS)
def test_the_case_changelist_query_count_does_not_grow_with_rows_for_the_owner(
    client, owner, analyst, payments, platform, params
):
    client.force_login(owner)

    few, many = compare(
        client, CASE_LIST, params, lambda n: make_cases(n, teams=[payments, platform], assignee=analyst)
    )

    assert few == many


NHI_PARAMS = [
    pytest.param({}, id="plain"),
    pytest.param({"kind": "api_key"}, id="filtered"),
    pytest.param({"q": "svc-bot"}, id="searched"),
    pytest.param({"visibility": "no_last_use", "kind": "api_key", "q": "bot"}, id="filtered-and-searched"),
]


@pytest.mark.parametrize("params", NHI_PARAMS)
def test_the_identity_changelist_query_count_does_not_grow_with_rows_for_the_analyst(
    client, analyst, payments, platform, params
):
    client.force_login(analyst)

    few, many = compare(
        client, NHI_LIST, params, lambda n: make_identities(n, teams=[payments, platform], owner=analyst)
    )

    assert few == many


@pytest.mark.parametrize("params", NHI_PARAMS[:2])
def test_the_identity_changelist_query_count_does_not_grow_with_rows_for_the_owner(
    client, owner, payments, platform, params
):
    client.force_login(owner)

    few, many = compare(
        client, NHI_LIST, params, lambda n: make_identities(n, teams=[payments, platform], owner=None)
    )

    assert few == many


def test_the_owner_case_changelist_lists_only_their_teams_rows(client, owner, analyst, payments, platform):
    # Guards the query-count tests above: the owner's page is scoped, not empty and not everything.
    make_cases(40, teams=[payments, platform], assignee=analyst)
    client.force_login(owner)

    cl = client.get(CASE_LIST).context["cl"]

    assert {case.owning_team_id for case in cl.result_list} == {payments.pk}
    assert cl.result_count == Case.objects.filter(owning_team=payments).count() == 20
