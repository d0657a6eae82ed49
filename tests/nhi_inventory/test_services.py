"""Writes to the inventory: who may change what, and the history each write leaves behind."""

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from cases.models import Priority
from nhi_inventory import services
from nhi_inventory.admin import NonHumanIdentityForm
from nhi_inventory.models import Criticality, LifecycleState, NHIKind, NonHumanIdentity, Team
from tests.factories import UserFactory


def test_the_owner_may_update_an_identity_of_their_team(owner, payments_identity):
    services.nhi_update(actor=owner, nhi_id=payments_identity.pk, changes={"description": "Pays the bills"})

    payments_identity.refresh_from_db()
    assert payments_identity.description == "Pays the bills"


def test_the_owner_may_not_update_an_identity_of_another_team(owner, platform_identity):
    with pytest.raises(PermissionDenied, match="belongs to another team"):
        services.nhi_update(actor=owner, nhi_id=platform_identity.pk, changes={"description": "mine now"})

    platform_identity.refresh_from_db()
    assert platform_identity.description == ""


def test_the_auditor_may_not_update_an_identity(auditor, payments_identity):
    with pytest.raises(PermissionDenied, match="change_nonhumanidentity"):
        services.nhi_update(actor=auditor, nhi_id=payments_identity.pk, changes={"description": "audited"})


def test_the_outsider_may_not_update_an_identity(outsider, payments_identity):
    with pytest.raises(PermissionDenied):
        services.nhi_update(actor=outsider, nhi_id=payments_identity.pk, changes={"description": "x"})


def test_an_update_of_a_field_that_is_not_editable_is_refused(analyst, payments_identity):
    with pytest.raises(ValidationError) as refused:
        services.nhi_update(actor=analyst, nhi_id=payments_identity.pk, changes={"created_at": None})

    assert "created_at" in refused.value.message_dict


def test_a_decommissioned_identity_cannot_be_brought_back(analyst, payments_identity):
    services.nhi_update(
        actor=analyst, nhi_id=payments_identity.pk, changes={"lifecycle_state": LifecycleState.DECOMMISSIONED}
    )

    with pytest.raises(ValidationError) as refused:
        services.nhi_update(
            actor=analyst, nhi_id=payments_identity.pk, changes={"lifecycle_state": LifecycleState.ACTIVE}
        )

    assert "lifecycle_state" in refused.value.message_dict
    payments_identity.refresh_from_db()
    assert payments_identity.lifecycle_state == LifecycleState.DECOMMISSIONED


def test_a_decommissioned_identity_can_still_be_described(analyst, payments_identity):
    services.nhi_update(
        actor=analyst, nhi_id=payments_identity.pk, changes={"lifecycle_state": LifecycleState.DECOMMISSIONED}
    )

    services.nhi_update(
        actor=analyst, nhi_id=payments_identity.pk, changes={"description": "retired 2025-01"}
    )

    payments_identity.refresh_from_db()
    assert payments_identity.description == "retired 2025-01"


def test_the_admin_form_refuses_to_bring_back_a_decommissioned_identity(payments_identity):
    payments_identity.lifecycle_state = LifecycleState.DECOMMISSIONED
    payments_identity.save()
    data = {
        "name": payments_identity.name,
        "kind": payments_identity.kind,
        "provider": payments_identity.provider,
        "environment": payments_identity.environment,
        "owner_team": payments_identity.owner_team_id,
        "privilege_level": payments_identity.privilege_level,
        "criticality": payments_identity.criticality,
        "lifecycle_state": LifecycleState.ACTIVE,
    }

    form = NonHumanIdentityForm(data=data, instance=payments_identity)

    assert not form.is_valid()
    assert "cannot be brought back" in str(form.errors["lifecycle_state"])


def test_creating_an_identity_writes_history_with_the_actor(analyst, payments):
    identity = services.nhi_create(
        actor=analyst, name="etl-runner", kind=NHIKind.SERVICE_ACCOUNT, provider="GCP"
    )

    record = identity.history.get()
    assert record.history_type == "+"
    assert record.history_user == analyst


def test_updating_an_identity_writes_history_with_the_actor_and_reason(owner, payments_identity):
    services.nhi_update(
        actor=owner,
        nhi_id=payments_identity.pk,
        changes={"description": "Pays the bills"},
        reason="ownership review",
    )

    record = payments_identity.history.order_by("-history_id").first()
    assert record.history_type == "~"
    assert record.history_user == owner
    assert record.history_change_reason == "ownership review"


def test_an_update_that_changes_nothing_writes_no_history(analyst, payments_identity):
    before = payments_identity.history.count()

    services.nhi_update(actor=analyst, nhi_id=payments_identity.pk, changes={"name": payments_identity.name})

    assert payments_identity.history.count() == before


def test_creating_a_team_writes_history_with_the_actor(analyst):
    team = services.team_create(actor=analyst, name="Data", slug="data")

    assert team.history.get().history_user == analyst


def test_updating_a_team_writes_history_with_the_actor(analyst, payments):
    services.team_update(actor=analyst, team_id=payments.pk, changes={"contact_email": "pay@example.test"})

    assert payments.history.order_by("-history_id").first().history_user == analyst


def test_adding_a_team_member_writes_history_with_the_actor(analyst, payments):
    member: Any = UserFactory.create(username="newcomer")

    membership = services.team_member_add(actor=analyst, team_id=payments.pk, user=member)

    assert membership.history.get().history_user == analyst


def test_removing_a_team_member_writes_history_with_the_actor(analyst, payments):
    member: Any = UserFactory.create(username="leaver")
    membership = services.team_member_add(actor=analyst, team_id=payments.pk, user=member)

    services.team_member_remove(actor=analyst, team_id=payments.pk, user=member)

    deleted = type(membership).history.filter(id=membership.pk, history_type="-").get()
    assert deleted.history_user == analyst


def test_the_owner_may_not_create_teams(owner):
    with pytest.raises(PermissionDenied, match="add_team"):
        services.team_create(actor=owner, name="Rogue", slug="rogue")

    assert not Team.objects.filter(slug="rogue").exists()


def test_raising_an_identitys_criticality_refreshes_the_priority_of_its_open_cases(
    analyst, open_case, payments_identity
):
    case = open_case()
    before = case.priority

    services.nhi_update(
        actor=analyst,
        nhi_id=payments_identity.pk,
        changes={"criticality": Criticality.CRITICAL, "internet_facing": True, "privilege_level": 3},
    )

    case.refresh_from_db()
    assert case.priority < before
    assert case.priority in (Priority.P1, Priority.P2)


def test_an_identity_that_fails_validation_is_not_created(analyst):
    with pytest.raises(ValidationError):
        services.nhi_create(actor=analyst, name="bad", kind="not-a-kind", provider="AWS")

    assert not NonHumanIdentity.objects.filter(name="bad").exists()


def test_the_owner_may_not_hand_their_identity_to_another_team(owner, payments_identity, platform):
    with pytest.raises(PermissionDenied, match="who owns"):
        services.nhi_update(actor=owner, nhi_id=payments_identity.pk, changes={"owner_team": platform})
    payments_identity.refresh_from_db()
    assert payments_identity.owner_team.slug == "payments"


def test_the_analyst_may_move_an_identity_to_another_team(analyst, payments_identity, platform):
    services.nhi_update(actor=analyst, nhi_id=payments_identity.pk, changes={"owner_team": platform})
    payments_identity.refresh_from_db()
    assert payments_identity.owner_team == platform
