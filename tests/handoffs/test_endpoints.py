"""Webhook endpoints: who configures them, which URLs are accepted, which endpoint an action item goes to, and
the signing key (derived, never stored, changed by a rotation)."""

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from cases.models import ActionKind
from handoffs import signing
from handoffs.models import WebhookEndpoint
from handoffs.selectors import endpoint_for
from handoffs.services import webhook_endpoint_create, webhook_endpoint_rotate_key, webhook_endpoint_update
from tests.findings.leaks import tables_containing

HTTPS = "https://hooks.example.com/nhi"


def create(actor: Any, **fields: Any) -> tuple[WebhookEndpoint, str]:
    fields.setdefault("name", "Vault")
    fields.setdefault("url", HTTPS)
    return webhook_endpoint_create(actor=actor, **fields)


def test_an_analyst_creates_an_endpoint_and_is_shown_its_key_once_it_is_stored_nowhere(
    analyst: Any, payments: Any
):
    endpoint, key = create(analyst, team=payments, action_kind=ActionKind.REVOCATION)

    assert key.startswith("whk_")
    assert len(key) == 4 + 64
    assert tables_containing([key]) == []
    assert tables_containing([key[4:]]) == []
    assert endpoint.history.get().history_user == analyst


def test_the_key_is_derived_from_the_setting_the_endpoint_and_its_rotation_counter(
    analyst: Any, payments: Any
):
    endpoint, key = create(analyst, team=payments)

    assert key == signing.endpoint_key(endpoint_id=endpoint.pk, key_version=1)
    assert key != signing.endpoint_key(endpoint_id=endpoint.pk + 1, key_version=1)
    with override_settings(HANDOFF_SIGNING_KEY="another-signing-key-of-at-least-32-characters"):
        assert key != signing.endpoint_key(endpoint_id=endpoint.pk, key_version=1)


def test_rotating_gives_a_new_key_and_counts_the_rotation(analyst: Any, payments: Any):
    endpoint, first = create(analyst, team=payments)

    rotated, second = webhook_endpoint_rotate_key(actor=analyst, endpoint_id=endpoint.pk)

    assert second != first
    assert rotated.key_version == 2
    assert rotated.history.latest().history_change_reason == "signing key rotated (version 2)"


@pytest.mark.parametrize("who", ["approver", "auditor", "owner", "outsider"])
def test_only_analysts_configure_endpoints(persona: Any, who: str, payments: Any, analyst: Any):
    endpoint, _ = create(analyst, team=payments)

    with pytest.raises(PermissionDenied):
        create(persona(who), name="Other", team=payments, action_kind=ActionKind.TICKET)
    with pytest.raises(PermissionDenied):
        webhook_endpoint_rotate_key(actor=persona(who), endpoint_id=endpoint.pk)
    with pytest.raises(PermissionDenied):
        webhook_endpoint_update(actor=persona(who), endpoint_id=endpoint.pk, changes={"is_active": False})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/", "https://"),
        ("https://bot:s3cret@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com/#x", "fragment"),
        ("http://hooks.example.com/", "must use https://"),
        ("https://hooks.example.com:99999/", "malformed"),
    ],
)
def test_a_url_the_portal_would_not_post_to_is_refused_naming_the_field(
    analyst: Any, payments: Any, url: str, message: str
):
    with pytest.raises(ValidationError) as refused:
        create(analyst, team=payments, url=url)

    assert message in " ".join(refused.value.message_dict["url"])
    assert WebhookEndpoint.objects.count() == 0


def test_plain_http_to_this_machine_is_accepted_outside_production(analyst: Any, payments: Any):
    endpoint, _ = create(analyst, team=payments, url="http://localhost:8080/hook")

    assert endpoint.pk is not None


@override_settings(PRODUCTION=True, DEBUG=False)
def test_production_accepts_https_only_even_to_this_machine(analyst: Any, payments: Any):
    with pytest.raises(ValidationError, match="must use https"):
        create(analyst, team=payments, url="http://localhost:8080/hook")


@override_settings(DEBUG=True)
def test_development_with_debug_accepts_plain_http_anywhere(analyst: Any, payments: Any):
    endpoint, _ = create(analyst, team=payments, url="http://receiver.internal/hook")

    assert endpoint.pk is not None


def test_an_endpoint_needs_a_team_or_a_kind(analyst: Any):
    with pytest.raises(ValidationError) as refused:
        create(analyst)

    assert "Choose a team, an action kind or both" in refused.value.message_dict["action_kind"][0]


def test_two_active_endpoints_cannot_take_the_same_hand_offs(analyst: Any, payments: Any):
    create(analyst, team=payments, action_kind=ActionKind.TICKET)

    with pytest.raises(ValidationError, match="already takes ticket, Payments hand-offs"):
        create(analyst, name="Second", team=payments, action_kind=ActionKind.TICKET)


def test_two_active_every_team_endpoints_cannot_take_the_same_kind(analyst: Any):
    create(analyst, action_kind=ActionKind.CONTAINMENT)

    with pytest.raises(ValidationError, match="already takes"):
        create(analyst, name="Second", action_kind=ActionKind.CONTAINMENT)


def test_an_inactive_endpoint_does_not_block_a_new_one(analyst: Any, payments: Any):
    old, _ = create(analyst, team=payments, action_kind=ActionKind.TICKET)
    webhook_endpoint_update(actor=analyst, endpoint_id=old.pk, changes={"is_active": False})

    new, _ = create(analyst, name="New Jira", team=payments, action_kind=ActionKind.TICKET)

    assert new.is_active


def test_an_update_cannot_touch_the_key_counter(analyst: Any, payments: Any):
    endpoint, _ = create(analyst, team=payments)

    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_update(actor=analyst, endpoint_id=endpoint.pk, changes={"key_version": 9})

    assert "key_version" in refused.value.message_dict


# --- Which endpoint an action item goes to ------------------------------------------------------------------


@pytest.fixture
def ticket(make_item: Any) -> Any:
    return make_item(kind=ActionKind.TICKET, title="Open a change ticket")


def test_the_teams_endpoint_for_the_kind_comes_first(analyst: Any, payments: Any, ticket: Any):
    create(analyst, name="Any team's tickets", action_kind=ActionKind.TICKET)
    create(analyst, name="Payments catch-all", team=payments)
    wanted, _ = create(analyst, name="Payments tickets", team=payments, action_kind=ActionKind.TICKET)

    assert endpoint_for(action_item=ticket) == wanted


def test_then_the_every_team_endpoint_for_the_kind(analyst: Any, payments: Any, ticket: Any):
    create(analyst, name="Payments catch-all", team=payments)
    wanted, _ = create(analyst, name="Any team's tickets", action_kind=ActionKind.TICKET)

    assert endpoint_for(action_item=ticket) == wanted


def test_then_the_teams_catch_all(analyst: Any, payments: Any, platform: Any, ticket: Any):
    create(analyst, name="Platform tickets", team=platform, action_kind=ActionKind.TICKET)
    create(analyst, name="Any team's revocations", action_kind=ActionKind.REVOCATION)
    wanted, _ = create(analyst, name="Payments catch-all", team=payments)

    assert endpoint_for(action_item=ticket) == wanted


def test_an_inactive_endpoint_is_never_chosen(analyst: Any, payments: Any, ticket: Any):
    endpoint, _ = create(analyst, team=payments, action_kind=ActionKind.TICKET)
    webhook_endpoint_update(actor=analyst, endpoint_id=endpoint.pk, changes={"is_active": False})

    assert endpoint_for(action_item=ticket) is None
