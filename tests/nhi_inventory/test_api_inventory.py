"""`/api/v1/teams/`, `/api/v1/nhis/`, `/api/v1/credentials/` for each persona.

Owners see their teams' rows, staff roles see everything, outsiders nothing; writes go through the
services (analysts register and change, owners maintain their own identities, auditors and approvers write
nothing). A credential's secret goes in once and never comes back out.
"""

import logging
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from nhi_inventory import services
from nhi_inventory.models import Credential, CredentialStatus, CredentialType, NonHumanIdentity
from tests.factories import CredentialFactory, NonHumanIdentityFactory, TeamFactory
from tests.findings.leaks import tables_containing

TEAMS, NHIS, CREDENTIALS = "/api/v1/teams/", "/api/v1/nhis/", "/api/v1/credentials/"
SECRET = "AKIAQ7EXAMPLEsecretMaterial+9f8e7d6c5b4a3/zz"
STAFF = ["analyst", "approver", "auditor"]


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(row["name"] for row in response.json()["results"])


@pytest.fixture
def inventory(payments_identity: Any, platform_identity: Any) -> dict[str, Any]:
    return {
        "payments_credential": CredentialFactory.create(nhi=payments_identity, label="payments key"),
        "platform_credential": CredentialFactory.create(nhi=platform_identity, label="platform key"),
    }


# --- Reading ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STAFF)
def test_staff_roles_see_every_team_identity_and_credential(
    persona: str, request: pytest.FixtureRequest, api: Any, inventory: dict[str, Any]
) -> None:
    client = api(request.getfixturevalue(persona))
    assert names(client.get(TEAMS)) == ["Payments", "Platform"]
    assert names(client.get(NHIS)) == ["ci-deployer", "payments-api-bot"]
    assert len(client.get(CREDENTIALS).json()["results"]) == 2


def test_an_owner_sees_only_their_teams_rows(owner: Any, api: Any, inventory: dict[str, Any]) -> None:
    client = api(owner)
    assert names(client.get(TEAMS)) == ["Payments"]
    assert names(client.get(NHIS)) == ["payments-api-bot"]
    assert [row["label"] for row in client.get(CREDENTIALS).json()["results"]] == ["payments key"]


def test_an_owner_gets_404_for_another_teams_rows(
    owner: Any, api: Any, platform: Any, platform_identity: Any, inventory: dict[str, Any]
) -> None:
    client = api(owner)
    assert client.get(f"{TEAMS}{platform.pk}/").status_code == 404
    assert client.get(f"{NHIS}{platform_identity.pk}/").status_code == 404
    assert client.get(f"{CREDENTIALS}{inventory['platform_credential'].pk}/").status_code == 404


def test_an_owner_sees_an_identity_they_own_personally(owner: Any, api: Any, platform: Any) -> None:
    NonHumanIdentityFactory.create(name="personal-bot", owner_team=platform, owner=owner)
    assert "personal-bot" in names(api(owner).get(NHIS))


def test_an_outsider_sees_empty_lists_and_404s(
    outsider: Any, api: Any, payments_identity: Any, inventory: dict[str, Any]
) -> None:
    client = api(outsider)
    for url in (TEAMS, NHIS, CREDENTIALS):
        assert client.get(url).json()["results"] == []
    assert client.get(f"{NHIS}{payments_identity.pk}/").status_code == 404


@pytest.mark.parametrize("url", [TEAMS, NHIS, CREDENTIALS])
def test_anonymous_callers_must_authenticate(api: Any, url: str) -> None:
    assert api(None).get(url).status_code == 401


def test_a_credential_shows_its_fingerprint_and_preview_and_nothing_else_secret(
    analyst: Any, api: Any, inventory: dict[str, Any]
) -> None:
    credential = inventory["payments_credential"]
    body = api(analyst).get(f"{CREDENTIALS}{credential.pk}/").json()
    assert body["fingerprint"] == credential.fingerprint
    assert body["preview"] == credential.preview
    assert set(body) == {
        "id",
        "nhi",
        "credential_type",
        "label",
        "fingerprint",
        "fingerprint_key_id",
        "preview",
        "status",
        "issued_at",
        "last_rotated_at",
        "expires_at",
        "created_at",
    }


# --- Filtering, search, ordering ----------------------------------------------------------------------------


def test_identities_filter_by_kind_team_environment_and_provider(
    analyst: Any, api: Any, payments: Any, platform: Any
) -> None:
    NonHumanIdentityFactory.create(
        name="k8s-sa", kind="workload_identity", provider="Kubernetes", owner_team=platform
    )
    NonHumanIdentityFactory.create(name="gh-app", kind="oauth_app", provider="GitHub", owner_team=payments)
    NonHumanIdentityFactory.create(name="staging-bot", environment="staging", owner_team=payments)
    client = api(analyst)
    assert names(client.get(NHIS, {"kind": "workload_identity"})) == ["k8s-sa"]
    assert names(client.get(NHIS, {"owner_team": payments.pk})) == ["gh-app", "staging-bot"]
    assert names(client.get(NHIS, {"environment": "staging"})) == ["staging-bot"]
    assert names(client.get(NHIS, {"provider": "github"})) == ["gh-app"]
    assert names(client.get(NHIS, {"search": "k8s"})) == ["k8s-sa"]


def test_identities_order_by_criticality(analyst: Any, api: Any, payments: Any) -> None:
    for name, criticality in (("low", 0), ("critical", 3), ("high", 2)):
        NonHumanIdentityFactory.create(name=name, criticality=criticality, owner_team=payments)
    rows = api(analyst).get(NHIS, {"ordering": "-criticality"}).json()["results"]
    assert [row["name"] for row in rows] == ["critical", "high", "low"]


def test_a_bad_filter_value_is_a_400_naming_the_filter(analyst: Any, api: Any) -> None:
    response = api(analyst).get(NHIS, {"kind": "spaceship"})
    assert response.status_code == 400
    assert list(response.json()) == ["kind"]


def test_lists_page_with_a_cursor(analyst: Any, api: Any, payments: Any) -> None:
    for n in range(3):
        NonHumanIdentityFactory.create(name=f"bot-{n}", owner_team=payments)
    client = api(analyst)
    first = client.get(NHIS, {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    assert [row["name"] for row in first["results"] + second["results"]] == ["bot-0", "bot-1", "bot-2"]
    assert second["next"] is None


# --- Writing identities -------------------------------------------------------------------------------------


def test_an_analyst_registers_an_identity(analyst: Any, api: Any, payments: Any) -> None:
    response = api(analyst).post(
        NHIS,
        {
            "name": "billing-bot",
            "kind": "bot",
            "provider": "Slack",
            "owner_team": payments.pk,
            "criticality": 2,
        },
    )
    assert response.status_code == 201, response.content
    identity = NonHumanIdentity.objects.get(pk=response.json()["id"])
    assert (identity.owner_team, identity.criticality) == (payments, 2)
    assert identity.history.get().history_user == analyst


def test_registering_an_identity_without_its_kind_names_the_field(analyst: Any, api: Any) -> None:
    response = api(analyst).post(NHIS, {"name": "x", "provider": "AWS"})
    assert response.status_code == 400
    assert list(response.json()) == ["kind"]
    assert not NonHumanIdentity.objects.exists()


@pytest.mark.parametrize("persona", ["approver", "auditor", "owner", "outsider"])
def test_only_analysts_register_identities(persona: str, request: pytest.FixtureRequest, api: Any) -> None:
    response = api(request.getfixturevalue(persona)).post(
        NHIS, {"name": "x", "kind": "bot", "provider": "AWS"}
    )
    assert response.status_code == 403
    assert not NonHumanIdentity.objects.exists()


def test_an_analyst_changes_an_identity_with_a_reason(analyst: Any, api: Any, payments_identity: Any) -> None:
    response = api(analyst).patch(
        f"{NHIS}{payments_identity.pk}/", {"criticality": 3, "reason": "holds production keys"}
    )
    assert response.status_code == 200
    assert response.json()["criticality"] == 3
    latest = NonHumanIdentity.history.filter(id=payments_identity.pk).latest("history_date")
    assert (latest.history_user, latest.history_change_reason) == (analyst, "holds production keys")


def test_an_owner_maintains_their_identity_but_cannot_give_it_away(
    owner: Any, api: Any, payments_identity: Any, platform: Any
) -> None:
    client = api(owner)
    assert (
        client.patch(f"{NHIS}{payments_identity.pk}/", {"description": "rotates monthly"}).status_code == 200
    )
    given_away = client.patch(f"{NHIS}{payments_identity.pk}/", {"owner_team": platform.pk})
    # Another team's id reads as unknown to an owner, not as forbidden.
    assert given_away.status_code == 400
    assert list(given_away.json()) == ["owner_team"]
    payments_identity.refresh_from_db()
    assert payments_identity.owner_team.name == "Payments"


def test_an_owner_cannot_touch_another_teams_identity(owner: Any, api: Any, platform_identity: Any) -> None:
    assert api(owner).patch(f"{NHIS}{platform_identity.pk}/", {"description": "x"}).status_code == 404


@pytest.mark.parametrize("persona", ["approver", "auditor"])
def test_read_only_roles_cannot_change_an_identity(
    persona: str, request: pytest.FixtureRequest, api: Any, payments_identity: Any
) -> None:
    response = api(request.getfixturevalue(persona)).patch(
        f"{NHIS}{payments_identity.pk}/", {"description": "x"}
    )
    assert response.status_code == 403
    payments_identity.refresh_from_db()
    assert payments_identity.description == ""


def test_a_decommissioned_identity_cannot_come_back(analyst: Any, api: Any, payments_identity: Any) -> None:
    client = api(analyst)
    client.patch(f"{NHIS}{payments_identity.pk}/", {"lifecycle_state": "decommissioned"})
    response = client.patch(f"{NHIS}{payments_identity.pk}/", {"lifecycle_state": "active"})
    assert response.status_code == 400
    assert list(response.json()) == ["lifecycle_state"]


def test_put_and_delete_are_not_offered(analyst: Any, api: Any, payments_identity: Any) -> None:
    client = api(analyst)
    assert client.put(f"{NHIS}{payments_identity.pk}/", {"name": "x"}).status_code == 405
    assert client.delete(f"{NHIS}{payments_identity.pk}/").status_code == 405


# --- Credentials --------------------------------------------------------------------------------------------


def test_an_analyst_registers_a_credential_by_its_secret_which_is_never_kept_or_shown(
    analyst: Any, api: Any, payments_identity: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = api(analyst).post(
        CREDENTIALS,
        {"nhi": payments_identity.pk, "credential_type": "access_key", "secret": SECRET, "label": "deploy"},
    )
    assert response.status_code == 201, response.content
    assert SECRET not in response.content.decode()
    assert SECRET[4:] not in response.content.decode()
    credential = Credential.objects.get()
    assert response.json()["preview"] == credential.preview == "AKIA…(44 chars)"
    assert tables_containing([SECRET]) == []
    assert tables_containing([SECRET[4:20]]) == []
    assert SECRET not in caplog.text


def test_registering_a_known_secret_again_is_refused_without_echoing_it(
    analyst: Any, api: Any, payments_identity: Any
) -> None:
    body = {"nhi": payments_identity.pk, "credential_type": "access_key", "secret": SECRET}
    api(analyst).post(CREDENTIALS, body)
    again = api(analyst).post(CREDENTIALS, body)
    assert again.status_code == 400
    assert list(again.json()) == ["secret"]
    assert SECRET not in again.content.decode()
    assert Credential.objects.count() == 1


def test_a_secret_sent_as_a_form_is_not_echoed_either(analyst: Any, api: Any, payments_identity: Any) -> None:
    response = api(analyst).post(
        CREDENTIALS,
        {"nhi": payments_identity.pk, "credential_type": "nonsense", "secret": SECRET},
        format="multipart",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["credential_type"]
    assert SECRET not in response.content.decode()


@pytest.mark.parametrize("persona", ["approver", "auditor", "owner", "outsider"])
def test_only_analysts_register_credentials(
    persona: str, request: pytest.FixtureRequest, api: Any, payments_identity: Any
) -> None:
    response = api(request.getfixturevalue(persona)).post(
        CREDENTIALS, {"nhi": payments_identity.pk, "credential_type": "token", "secret": SECRET}
    )
    assert response.status_code == 403
    assert not Credential.objects.exists()


def test_registering_for_an_unknown_identity_names_the_field(analyst: Any, api: Any) -> None:
    response = api(analyst).post(CREDENTIALS, {"nhi": 999999, "credential_type": "token", "secret": SECRET})
    assert response.status_code == 400
    assert list(response.json()) == ["nhi"]


def test_an_analyst_marks_a_credential_rotated_then_revoked_and_revoked_stays(
    analyst: Any, api: Any, inventory: dict[str, Any]
) -> None:
    url = f"{CREDENTIALS}{inventory['payments_credential'].pk}/status/"
    client = api(analyst)
    assert client.post(url, {"status": "rotated", "reason": "quarterly"}).json()["status"] == "rotated"
    assert client.post(url, {"status": "revoked"}).json()["status"] == "revoked"
    back = client.post(url, {"status": "active"})
    assert back.status_code == 400
    assert list(back.json()) == ["status"]
    assert Credential.objects.get(pk=inventory["payments_credential"].pk).status == CredentialStatus.REVOKED


@pytest.mark.parametrize("persona", ["approver", "auditor", "owner"])
def test_other_roles_cannot_change_a_credentials_status(
    persona: str, request: pytest.FixtureRequest, api: Any, inventory: dict[str, Any]
) -> None:
    url = f"{CREDENTIALS}{inventory['payments_credential'].pk}/status/"
    assert api(request.getfixturevalue(persona)).post(url, {"status": "revoked"}).status_code == 403
    assert Credential.objects.get(pk=inventory["payments_credential"].pk).status == CredentialStatus.ACTIVE


def test_an_outsider_gets_404_on_a_credentials_status(
    outsider: Any, api: Any, inventory: dict[str, Any]
) -> None:
    url = f"{CREDENTIALS}{inventory['payments_credential'].pk}/status/"
    assert api(outsider).post(url, {"status": "revoked"}).status_code == 404


def test_credentials_filter_by_identity_status_and_team(
    analyst: Any, api: Any, payments: Any, inventory: dict[str, Any], payments_identity: Any
) -> None:
    services.credential_set_status(
        actor=analyst, credential_id=inventory["platform_credential"].pk, status=CredentialStatus.REVOKED
    )
    client = api(analyst)

    def labels(params: dict[str, Any]) -> list[str]:
        return [row["label"] for row in client.get(CREDENTIALS, params).json()["results"]]

    assert labels({"nhi": payments_identity.pk}) == ["payments key"]
    assert labels({"status": "revoked"}) == ["platform key"]
    assert labels({"owner_team": payments.pk}) == ["payments key"]
    assert labels({"credential_type": CredentialType.PASSWORD}) == []


# --- A fixed number of queries per list ---------------------------------------------------------------------


def _queries(client: Any, url: str) -> int:
    client.get(url)  # warm per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    assert response.json()["results"]
    return len(captured)


@pytest.mark.parametrize("persona", ["analyst", "owner"])
def test_each_list_runs_the_same_queries_for_2_rows_as_for_12(
    persona: str, request: pytest.FixtureRequest, api: Any, payments: Any, django_assert_num_queries: Any
) -> None:
    user = request.getfixturevalue(persona)
    client = api(user)

    def grow(count: int) -> None:
        for _ in range(count):
            lead = user if persona == "analyst" else None
            team = TeamFactory.create(lead=lead)
            team.memberships.create(user=user)
            identity = NonHumanIdentityFactory.create(owner_team=payments, owner=user)
            CredentialFactory.create(nhi=identity)

    grow(2)
    few = {url: _queries(client, url) for url in (TEAMS, NHIS, CREDENTIALS)}
    grow(10)
    for url, count in few.items():
        with django_assert_num_queries(count):
            assert len(client.get(url).json()["results"]) >= 12
