"""Who sees which identities and credentials: every list a person sees comes from these selectors."""

import pytest
from django.contrib.auth.models import AnonymousUser

from nhi_inventory import services
from nhi_inventory.models import CredentialType
from nhi_inventory.selectors import credential_list, nhi_list, team_list
from tests.factories import NonHumanIdentityFactory


@pytest.fixture
def credentials(analyst, payments_identity, platform_identity):
    return {
        identity.name: services.credential_register(
            actor=analyst,
            nhi_id=identity.pk,
            credential_type=CredentialType.API_KEY,
            secret=f"secret-of-{identity.name}-0123",
        )
        for identity in (payments_identity, platform_identity)
    }


def names(queryset):
    return set(queryset.values_list("name", flat=True))


def test_the_analyst_sees_every_identity(analyst, payments_identity, platform_identity):
    assert names(nhi_list(user=analyst)) == {"payments-api-bot", "ci-deployer"}


def test_the_auditor_sees_every_identity(auditor, payments_identity, platform_identity):
    assert names(nhi_list(user=auditor)) == {"payments-api-bot", "ci-deployer"}


def test_the_owner_sees_only_their_teams_identities(owner, payments_identity, platform_identity):
    assert names(nhi_list(user=owner)) == {"payments-api-bot"}


def test_the_owner_sees_an_identity_they_own_personally_on_another_team(owner, platform):
    NonHumanIdentityFactory.create(name="owner-personal-bot", owner_team=platform, owner=owner)

    assert names(nhi_list(user=owner)) == {"owner-personal-bot"}


def test_the_outsider_sees_no_identity(outsider, payments_identity, platform_identity):
    assert not nhi_list(user=outsider).exists()


def test_an_anonymous_user_sees_no_identity(payments_identity):
    assert not nhi_list(user=AnonymousUser()).exists()


def test_an_inactive_analyst_sees_no_identity(analyst, payments_identity):
    analyst.is_active = False
    analyst.save()

    assert not nhi_list(user=analyst).exists()


def test_an_owner_on_two_teams_sees_each_identity_once(owner, platform, payments_identity, platform_identity):
    platform.memberships.create(user=owner)

    assert nhi_list(user=owner).count() == 2


def test_the_analyst_sees_every_credential(analyst, credentials):
    assert credential_list(user=analyst).count() == 2


def test_the_owner_sees_only_their_teams_credentials(owner, credentials):
    assert list(credential_list(user=owner)) == [credentials["payments-api-bot"]]


def test_the_outsider_sees_no_credential(outsider, credentials):
    assert not credential_list(user=outsider).exists()


def test_an_anonymous_user_sees_no_credential(credentials):
    assert not credential_list(user=AnonymousUser()).exists()


def test_the_owner_sees_only_their_own_teams(owner, payments, platform):
    assert list(team_list(user=owner)) == [payments]


def test_the_outsider_sees_no_team(outsider, payments, platform):
    assert not team_list(user=outsider).exists()
