"""Hand-offs, the inventory and API tokens in the audit chain, and the rule behind every recorded event: its
entry is written in the transaction of the change, so a change rolled back takes its entry with it."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.canonical import canonical_json
from audit.models import AuditEntry
from cases import services as case_services
from cases.models import ActionKind, Case, Comment
from handoffs.models import Delivery
from handoffs.services import (
    CallbackAlreadyRecorded,
    handoff_callback_record,
    handoff_dispatch,
    webhook_endpoint_create,
    webhook_endpoint_rotate_key,
    webhook_endpoint_update,
)
from nhi_inventory.models import Credential, TeamMembership
from nhi_inventory.services import (
    credential_register,
    credential_set_status,
    nhi_create,
    nhi_update,
    team_create,
    team_member_add,
    team_member_remove,
    team_update,
)
from portal import roles
from portal.models import ApiToken
from portal.services import api_token_create, api_token_revoke
from tests.audit.recorded import appended, chain_unchanged, digest, events, head_seq, only
from tests.factories import UserFactory
from tests.findings.reports import GITHUB_TOKEN

pytestmark = pytest.mark.django_db

HOOK_URL = "https://hooks.example.test/nhi?token=hook-token-in-the-query-0042"


class Boom(Exception):
    pass


# --- Same transaction ---------------------------------------------------------------------------------------


def test_an_entry_is_rolled_back_with_the_change_it_records(
    open_case: Callable[..., Case], analyst: Any
) -> None:
    case = open_case()
    comments = Comment.objects.count()

    seen_inside: list[bool] = []

    def comment_then_fail() -> None:
        with transaction.atomic():
            case_services.comment_add(actor=analyst, case_id=case.pk, body="never kept")
            seen_inside.append(AuditEntry.objects.filter(event="comment.add", case_id=case.pk).exists())
            raise Boom

    with chain_unchanged(), pytest.raises(Boom):
        comment_then_fail()

    assert seen_inside == [True]
    assert Comment.objects.count() == comments


def test_entries_of_successive_changes_follow_one_another(
    open_case: Callable[..., Case], analyst: Any
) -> None:
    case = open_case()
    start = head_seq()

    first = case_services.comment_add(actor=analyst, case_id=case.pk, body="one")
    second = case_services.comment_add(actor=analyst, case_id=case.pk, body="two")

    entries = list(AuditEntry.objects.filter(seq__gt=start).order_by("seq"))
    assert [(entry.seq, entry.object_id) for entry in entries] == [
        (start + 1, str(first.pk)),
        (start + 2, str(second.pk)),
    ]
    assert entries[1].prev_hash == entries[0].entry_hash


# --- Hand-offs ----------------------------------------------------------------------------------------------


@pytest.fixture
def endpoint_and_key(analyst: Any, payments: Any) -> tuple[Any, str]:
    return webhook_endpoint_create(
        actor=analyst, name="Payments vault", url=HOOK_URL, team=payments, action_kind=ActionKind.REVOCATION
    )


@pytest.fixture
def item(open_case: Callable[..., Case], analyst: Any, payments: Any) -> Any:
    case = open_case()
    return case_services.action_item_add(
        actor=analyst, case_id=case.pk, kind=ActionKind.REVOCATION, title="Revoke it", owning_team=payments
    )


def test_a_webhook_endpoint_is_recorded_without_its_key_or_its_url(analyst: Any, payments: Any) -> None:
    with appended() as entries:
        endpoint, key = webhook_endpoint_create(
            actor=analyst,
            name="Payments vault",
            url=HOOK_URL,
            team=payments,
            action_kind=ActionKind.REVOCATION,
        )

    entry = only(entries, "webhook_endpoint.create")
    assert entry.targets(endpoint)
    assert entry.case_id is None
    assert entry.actor_id == analyst.pk
    assert entry.after == {
        "name": digest("Payments vault"),
        "url": digest(HOOK_URL),
        "team": payments.pk,
        "action_kind": "revocation",
        "is_active": True,
        "key_version": 1,
    }
    assert key not in entry.body
    assert "hook-token-in-the-query" not in entry.body


def test_a_webhook_endpoint_edit_records_only_what_changed(
    endpoint_and_key: tuple[Any, str], analyst: Any
) -> None:
    endpoint, _ = endpoint_and_key

    with appended() as entries:
        webhook_endpoint_update(actor=analyst, endpoint_id=endpoint.pk, changes={"is_active": False})

    entry = only(entries, "webhook_endpoint.update")
    assert (entry.before, entry.after) == ({"is_active": True}, {"is_active": False})


def test_a_key_rotation_is_recorded_by_its_version_never_the_key(
    endpoint_and_key: tuple[Any, str], analyst: Any
) -> None:
    endpoint, old_key = endpoint_and_key

    with appended() as entries:
        _, new_key = webhook_endpoint_rotate_key(actor=analyst, endpoint_id=endpoint.pk)

    entry = only(entries, "webhook_endpoint.rotate_key")
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["key_version"], entry.after["key_version"]) == (1, 2)
    assert new_key not in entry.body
    assert old_key not in entry.body


def test_an_endpoint_refused_records_nothing(owner: Any, payments: Any) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        webhook_endpoint_create(actor=owner, name="x", url=HOOK_URL, team=payments)


def test_a_dispatch_records_the_delivery_then_the_item_and_the_comment(
    endpoint_and_key: tuple[Any, str], item: Any, analyst: Any
) -> None:
    endpoint, _ = endpoint_and_key

    with appended() as entries:
        delivery = handoff_dispatch(actor=analyst, action_item_id=item.pk)

    assert events(entries) == ["handoff.dispatch", "action_item.set_status", "comment.add"]
    entry = only(entries, "handoff.dispatch")
    assert entry.targets(delivery)
    assert entry.case_id == item.case_id
    assert entry.actor_id == analyst.pk
    stored = Delivery.objects.get(pk=delivery.pk)
    assert entry.after == {
        "action_item": item.pk,
        "endpoint": endpoint.pk,
        "status": "pending",
        "payload": digest(canonical_json(stored.payload)),
    }


def test_a_dispatch_refused_records_nothing(endpoint_and_key: tuple[Any, str], item: Any, owner: Any) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        handoff_dispatch(actor=owner, action_item_id=item.pk)


def test_a_callback_records_the_outcome_then_the_item_and_the_comment(
    endpoint_and_key: tuple[Any, str], item: Any, analyst: Any, role_groups: None
) -> None:
    delivery = handoff_dispatch(actor=analyst, action_item_id=item.pk)
    account = roles.handoffs_user()

    with appended() as entries:
        handoff_callback_record(
            actor=account, delivery_id=delivery.pk, outcome="done", external_reference="VAULT-7", note="ok"
        )

    assert events(entries) == ["handoff.callback", "action_item.set_status", "comment.add"]
    entry = only(entries, "handoff.callback")
    assert entry.targets(delivery)
    assert entry.case_id == item.case_id
    assert entry.actor_id == account.pk
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["outcome"], entry.after["outcome"]) == ("", "done")
    assert (entry.before["status"], entry.after["status"]) == ("pending", "delivered")
    assert entry.after["external_reference"] == digest("VAULT-7")
    assert entry.after["outcome_note"] == digest("ok")


def test_a_second_callback_records_nothing(
    endpoint_and_key: tuple[Any, str], item: Any, analyst: Any, role_groups: None
) -> None:
    delivery = handoff_dispatch(actor=analyst, action_item_id=item.pk)
    account = roles.handoffs_user()
    handoff_callback_record(actor=account, delivery_id=delivery.pk, outcome="done", external_reference="V-1")

    with chain_unchanged(), pytest.raises(CallbackAlreadyRecorded):
        handoff_callback_record(actor=account, delivery_id=delivery.pk, outcome="failed")


# --- Teams, identities, credentials -------------------------------------------------------------------------


def test_a_team_created_and_edited_is_recorded(analyst: Any) -> None:
    lead = UserFactory.create(username="lead")

    with appended() as created:
        team = team_create(actor=analyst, name="Data", slug="data")
    with appended() as edited:
        team_update(actor=analyst, team_id=team.pk, changes={"lead": lead})

    entry = only(created, "team.create")
    assert entry.targets(team)
    assert entry.actor_id == analyst.pk
    assert entry.after is not None
    assert entry.after["lead"] is None
    change = only(edited, "team.update")
    assert (change.before, change.after) == ({"lead": None}, {"lead": lead.pk})


def test_team_membership_added_and_removed_is_recorded_once(analyst: Any, payments: Any) -> None:
    person = UserFactory.create(username="newcomer")

    with appended() as added:
        membership = team_member_add(actor=analyst, team_id=payments.pk, user=person)
        team_member_add(actor=analyst, team_id=payments.pk, user=person)  # already in: nothing changes
    with appended() as removed:
        team_member_remove(actor=analyst, team_id=payments.pk, user=person)
        team_member_remove(actor=analyst, team_id=payments.pk, user=person)

    entry = only(added, "team_member.add")
    assert events(added) == ["team_member.add"]
    assert entry.targets(membership)
    assert entry.after == {"team": payments.pk, "user": person.pk}
    gone = only(removed, "team_member.remove")
    assert events(removed) == ["team_member.remove"]
    assert gone.before == {"team": payments.pk, "user": person.pk, "membership": membership.pk}
    assert not TeamMembership.objects.filter(pk=membership.pk).exists()


def test_a_membership_change_refused_records_nothing(owner: Any, payments: Any) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        team_member_add(actor=owner, team_id=payments.pk, user=owner)


def test_an_identity_registered_is_recorded_by_ids_and_digests(analyst: Any, payments: Any) -> None:
    with appended() as entries:
        identity = nhi_create(
            actor=analyst, name="billing-bot", kind="service_account", provider="AWS", owner_team=payments
        )

    entry = only(entries, "nhi.create")
    assert entry.targets(identity)
    assert entry.actor_id == analyst.pk
    assert entry.after is not None
    assert (entry.after["owner_team"], entry.after["provider"]) == (payments.pk, "AWS")
    assert entry.after["name"] == digest("billing-bot")


def test_a_change_of_owner_is_recorded_before_and_after(
    analyst: Any, payments_identity: Any, payments: Any, platform: Any
) -> None:
    with appended() as entries:
        nhi_update(
            actor=analyst, nhi_id=payments_identity.pk, changes={"owner_team": platform}, reason="moved"
        )

    entry = only(entries, "nhi.update")
    assert entry.targets(payments_identity)
    assert (entry.before, entry.after) == ({"owner_team": payments.pk}, {"owner_team": platform.pk})
    assert entry.details == {"reason": digest("moved")}


def test_an_owner_giving_their_identity_away_records_nothing(
    owner: Any, payments_identity: Any, platform: Any
) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        nhi_update(actor=owner, nhi_id=payments_identity.pk, changes={"owner_team": platform})


def test_a_credential_is_recorded_by_key_id_and_preview_never_the_secret_or_its_fingerprint(
    analyst: Any, payments_identity: Any
) -> None:
    with appended() as entries:
        credential = credential_register(
            actor=analyst,
            nhi_id=payments_identity.pk,
            credential_type="token",
            secret=GITHUB_TOKEN,
            label="release token",
        )

    entry = only(entries, "credential.register")
    assert entry.targets(credential)
    assert entry.actor_id == analyst.pk
    assert entry.after is not None
    assert (entry.after["fingerprint_key_id"], entry.after["preview"]) == (
        credential.fingerprint_key_id,
        credential.preview,
    )
    assert (entry.after["nhi"], entry.after["label"]) == (payments_identity.pk, digest("release token"))
    assert GITHUB_TOKEN not in entry.body
    assert credential.fingerprint not in entry.body


def test_a_credential_registered_twice_records_nothing_the_second_time(
    analyst: Any, payments_identity: Any
) -> None:
    credential_register(
        actor=analyst, nhi_id=payments_identity.pk, credential_type="token", secret=GITHUB_TOKEN
    )

    with chain_unchanged(), pytest.raises(ValidationError):
        credential_register(
            actor=analyst, nhi_id=payments_identity.pk, credential_type="token", secret=GITHUB_TOKEN
        )


def test_a_credential_status_change_is_recorded(analyst: Any, payments_identity: Any) -> None:
    credential = credential_register(
        actor=analyst, nhi_id=payments_identity.pk, credential_type="token", secret=GITHUB_TOKEN
    )

    with appended() as entries:
        credential_set_status(actor=analyst, credential_id=credential.pk, status="revoked", reason="leaked")

    entry = only(entries, "credential.set_status")
    assert entry.targets(credential)
    assert (entry.before, entry.after) == ({"status": "active"}, {"status": "revoked"})
    assert entry.details == {"nhi": payments_identity.pk, "reason": digest("leaked")}
    assert Credential.objects.get(pk=credential.pk).status == "revoked"


# --- API tokens ---------------------------------------------------------------------------------------------


def test_an_api_token_is_recorded_without_the_token_its_prefix_or_its_hash(analyst: Any) -> None:
    with appended() as entries:
        token, raw = api_token_create(actor=analyst, user_id=analyst.pk, name="gitleaks in CI")

    entry = only(entries, "api_token.create")
    assert entry.targets(token)
    assert entry.actor_id == analyst.pk
    assert entry.after == {"user": analyst.pk, "name": digest("gitleaks in CI"), "expires_at": None}
    for kept_out in (raw, token.prefix, token.key_hash):
        assert kept_out not in entry.body


def test_a_token_revoked_is_recorded_once(analyst: Any) -> None:
    token, _ = api_token_create(actor=analyst, user_id=analyst.pk, name="ci")

    with appended() as entries:
        api_token_revoke(actor=analyst, token_id=token.pk)
        api_token_revoke(actor=analyst, token_id=token.pk)  # already revoked: nothing changes

    entry = only(entries, "api_token.revoke")
    assert events(entries) == ["api_token.revoke"]
    assert entry.before == {"revoked_at": None}
    assert entry.after is not None
    assert entry.after["revoked_at"] is not None


def test_a_token_for_someone_else_refused_records_nothing(analyst: Any, auditor: Any) -> None:
    with chain_unchanged(), pytest.raises(PermissionDenied):
        api_token_create(actor=analyst, user_id=auditor.pk, name="not mine")
    assert not ApiToken.objects.exists()
