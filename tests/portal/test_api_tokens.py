"""API tokens: a tool signs in with `Authorization: Bearer nhi_...`; only the token's SHA-256 is kept."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal import roles
from portal.api.throttling import TokenClientThrottle
from portal.models import ApiToken
from portal.services import api_token_create, api_token_revoke
from tests.factories import UserFactory
from tests.findings.leaks import tables_containing

REFUSAL = "Invalid, expired or revoked token."
TOKENS = "/api/v1/tokens/"
NHIS = "/api/v1/nhis/"


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def analyst_token(analyst: Any) -> str:
    return api_token_create(actor=analyst, user_id=analyst.pk, name="scanner")[1]


def test_it_lets_a_tool_in_with_its_bearer_token(analyst_token: str, payments_identity: Any) -> None:
    response = bearer(analyst_token).get(NHIS)
    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == ["payments-api-bot"]


def test_it_records_when_a_token_was_last_used(analyst_token: str) -> None:
    bearer(analyst_token).get(NHIS)
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize("case", ["revoked", "expired", "unknown", "inactive user", "not ours"])
def test_it_refuses_a_bad_token_with_one_message_whatever_is_wrong(analyst: Any, case: str) -> None:
    token, raw = api_token_create(actor=analyst, user_id=analyst.pk, name="scanner")
    if case == "revoked":
        api_token_revoke(actor=analyst, token_id=token.pk)
    elif case == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "unknown":
        raw = raw[:-4] + "AAAA"
    elif case == "inactive user":
        analyst.is_active = False
        analyst.save()
    elif case == "not ours":
        raw = "ghp_" + raw[4:]
    response = bearer(raw).get(NHIS)
    assert response.status_code == 401
    assert response.json() == {"detail": REFUSAL}
    assert response["WWW-Authenticate"] == "Bearer"


def test_it_asks_anonymous_callers_to_authenticate() -> None:
    response = APIClient().get(NHIS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_it_keeps_no_raw_token_anywhere_in_the_database(analyst: Any, role_groups: None, api: Any) -> None:
    admin_user = UserFactory.create(username="root", is_superuser=True)
    created = api(analyst).post(TOKENS, {"name": "from the API"})
    through_service = api_token_create(actor=analyst, user_id=analyst.pk, name="from the service")[1]
    out = StringIO()
    call_command("create_api_token", user="analyst", name="from the command", stdout=out, stderr=StringIO())
    client = Client()
    client.force_login(admin_user)
    page = client.post(
        reverse("admin:portal_apitoken_add"), {"user": analyst.pk, "name": "from the admin", "expires_at": ""}
    )
    from_admin = page.context["raw_token"]
    raws = [created.json()["token"], through_service, out.getvalue().strip(), from_admin]
    assert all(raw.startswith("nhi_") and len(raw) > 40 for raw in raws)
    assert ApiToken.objects.count() == 4
    for raw in raws:
        assert tables_containing([raw]) == []
        assert tables_containing([raw[12:]]) == []


def test_it_throttles_token_clients_and_not_people_in_a_browser(
    analyst_token: str, analyst: Any, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TokenClientThrottle, "THROTTLE_RATES", {"token": "2/min"})
    cache.clear()
    tool = bearer(analyst_token)
    assert [tool.get(NHIS).status_code for _ in range(3)] == [200, 200, 429]
    throttled = tool.get(NHIS)
    assert "detail" in throttled.json()
    assert int(throttled["Retry-After"]) > 0
    person = api(analyst)
    assert {person.get(NHIS).status_code for _ in range(5)} == {200}
    cache.clear()


def test_it_gives_each_token_its_own_budget(analyst: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TokenClientThrottle, "THROTTLE_RATES", {"token": "1/min"})
    cache.clear()
    first, second = (api_token_create(actor=analyst, user_id=analyst.pk, name=n)[1] for n in ("a", "b"))
    assert bearer(first).get(NHIS).status_code == 200
    assert bearer(first).get(NHIS).status_code == 429
    assert bearer(second).get(NHIS).status_code == 200
    cache.clear()


# --- /api/v1/tokens/: one's own tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["analyst", "approver", "auditor", "owner", "outsider"])
def test_it_lets_every_signed_in_person_create_a_token_for_themselves(
    persona: str, request: pytest.FixtureRequest, api: Any
) -> None:
    user = request.getfixturevalue(persona)
    response = api(user).post(TOKENS, {"name": "my laptop"})
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith(body["prefix"])
    assert response["Cache-Control"] == "no-store"
    assert ApiToken.objects.get(pk=body["id"]).user == user
    assert bearer(body["token"]).get(TOKENS).status_code == 200


def test_it_lists_only_ones_own_tokens_and_never_the_token_again(
    analyst: Any, approver: Any, api: Any
) -> None:
    api_token_create(actor=approver, user_id=approver.pk, name="theirs")
    api(analyst).post(TOKENS, {"name": "mine"})
    listed = api(analyst).get(TOKENS).json()["results"]
    assert [row["name"] for row in listed] == ["mine"]
    assert set(listed[0]) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    }


def test_it_refuses_to_create_a_token_with_a_token(analyst_token: str) -> None:
    response = bearer(analyst_token).post(TOKENS, {"name": "another"}, format="json")
    assert response.status_code == 403
    assert ApiToken.objects.count() == 1


def test_it_refuses_an_expiry_in_the_past_naming_the_field(analyst: Any, api: Any) -> None:
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = api(analyst).post(TOKENS, {"name": "old", "expires_at": past})
    assert response.status_code == 400
    assert list(response.json()) == ["expires_at"]
    assert not ApiToken.objects.exists()


def test_it_refuses_a_token_without_a_name(analyst: Any, api: Any) -> None:
    response = api(analyst).post(TOKENS, {"name": "  "})
    assert response.status_code == 400
    assert list(response.json()) == ["name"]


def test_it_revokes_a_token_at_once(analyst: Any, analyst_token: str) -> None:
    token = ApiToken.objects.get()
    response = bearer(analyst_token).post(f"{TOKENS}{token.pk}/revoke/")
    assert response.status_code == 200
    assert response.json()["revoked_at"]
    assert bearer(analyst_token).get(TOKENS).status_code == 401


def test_it_hides_other_peoples_tokens_from_revocation(analyst: Any, approver: Any, api: Any) -> None:
    theirs, _ = api_token_create(actor=approver, user_id=approver.pk, name="theirs")
    assert api(analyst).post(f"{TOKENS}{theirs.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_it_refuses_anonymous_callers_on_tokens(api: Any) -> None:
    assert api(None).get(TOKENS).status_code == 401
    assert api(None).post(TOKENS, {"name": "x"}).status_code == 401


# --- The services' rules ------------------------------------------------------------------------------------


def test_it_refuses_a_token_for_someone_else_without_the_admin_permission(
    analyst: Any, approver: Any
) -> None:
    with pytest.raises(PermissionDenied, match=r"portal\.add_apitoken"):
        api_token_create(actor=analyst, user_id=approver.pk, name="for them")


def test_it_lets_an_administrator_create_and_revoke_a_token_for_someone_else(
    analyst: Any, role_groups: None
) -> None:
    admin_user = UserFactory.create(username="root", is_superuser=True)
    token, _ = api_token_create(actor=admin_user, user_id=analyst.pk, name="for the analyst")
    assert (token.user, token.created_by) == (analyst, admin_user)
    assert api_token_revoke(actor=admin_user, token_id=token.pk).revoked_at is not None


def test_it_refuses_to_revoke_someone_elses_token(analyst: Any, approver: Any) -> None:
    theirs, _ = api_token_create(actor=approver, user_id=approver.pk, name="theirs")
    with pytest.raises(PermissionDenied, match=r"portal\.change_apitoken"):
        api_token_revoke(actor=analyst, token_id=theirs.pk)


# --- The admin and the command ------------------------------------------------------------------------------


def test_it_shows_the_new_token_once_on_the_admin_page_that_created_it(analyst: Any) -> None:
    client = Client()
    client.force_login(analyst)
    page = client.post(
        reverse("admin:portal_apitoken_add"), {"user": analyst.pk, "name": "CI", "expires_at": ""}
    )
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    raw = page.context["raw_token"]
    assert raw in page.content.decode()
    token = ApiToken.objects.get()
    assert (token.user, token.created_by, token.prefix) == (analyst, analyst, raw[:12])
    detail = client.get(reverse("admin:portal_apitoken_change", args=[token.pk]))
    assert detail.status_code == 200
    assert raw not in detail.content.decode()


def test_it_lets_staff_create_tokens_only_for_themselves_in_the_admin(analyst: Any, approver: Any) -> None:
    client = Client()
    client.force_login(analyst)
    page = client.post(
        reverse("admin:portal_apitoken_add"), {"user": approver.pk, "name": "CI", "expires_at": ""}
    )
    assert page.status_code == 200
    assert "user" in page.context["adminform"].form.errors
    assert not ApiToken.objects.exists()


def test_it_lists_only_ones_own_tokens_in_the_admin_and_revokes_them(analyst: Any, approver: Any) -> None:
    mine, _ = api_token_create(actor=analyst, user_id=analyst.pk, name="mine")
    api_token_create(actor=approver, user_id=approver.pk, name="theirs")
    client = Client()
    client.force_login(analyst)
    changelist = reverse("admin:portal_apitoken_changelist")
    assert [t.name for t in client.get(changelist).context["cl"].result_list] == ["mine"]
    client.post(changelist, {"action": "revoke", "_selected_action": [mine.pk]})
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None
    assert ApiToken.objects.get(name="theirs").revoked_at is None


def test_the_command_prints_a_working_token_once(analyst: Any) -> None:
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_token", user="analyst", name="gitleaks in CI", expires_days=30, stdout=out, stderr=err
    )
    raw = out.getvalue().strip()
    assert bearer(raw).get(NHIS).status_code == 200
    assert raw not in err.getvalue()
    expires_at = ApiToken.objects.get().expires_at
    assert expires_at is not None
    assert timedelta(days=29) < expires_at - timezone.now() <= timedelta(days=30)


def test_the_command_names_an_unknown_user(db: None) -> None:
    with pytest.raises(Exception, match="No user 'nobody'"):
        call_command("create_api_token", user="nobody", name="x", stdout=StringIO(), stderr=StringIO())


def test_role_groups_hold_no_token_permissions(role_groups: None) -> None:
    # Creating or revoking someone else's token is an administrator's act, not a role's.
    for group in Group.objects.filter(name__in=[roles.ANALYST, roles.APPROVER, roles.AUDITOR, roles.OWNER]):
        assert not group.permissions.filter(content_type__app_label="portal").exists()


def test_the_token_list_runs_the_same_queries_for_2_tokens_as_for_12(
    analyst: Any, api: Any, django_assert_num_queries: Any
) -> None:
    client = api(analyst)
    for n in range(2):
        api_token_create(actor=analyst, user_id=analyst.pk, name=f"tool {n}")
    client.get(TOKENS)
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(TOKENS).json()["results"]) == 2
    for n in range(10):
        api_token_create(actor=analyst, user_id=analyst.pk, name=f"more {n}")
    with django_assert_num_queries(len(few)):
        assert len(client.get(TOKENS).json()["results"]) == 12


def test_the_admin_refuses_a_past_expiry_on_the_form(analyst: Any) -> None:
    client = Client()
    client.force_login(analyst)
    past = timezone.localtime() - timedelta(days=1)
    page = client.post(
        reverse("admin:portal_apitoken_add"),
        {
            "user": analyst.pk,
            "name": "CI",
            "expires_at_0": past.strftime("%Y-%m-%d"),
            "expires_at_1": past.strftime("%H:%M:%S"),
        },
    )
    assert page.status_code == 200
    assert "expires_at" in page.context["adminform"].form.errors
    assert not ApiToken.objects.exists()
