"""Visibility: is the owner, the last use and the last rotation of an identity known?"""

import pytest
from django.urls import reverse
from django.utils import timezone

from nhi_inventory.models import NonHumanIdentity
from tests.factories import NonHumanIdentityFactory

NOW = timezone.now()


def test_an_identity_owned_by_a_team_has_a_known_owner(payments):
    assert NonHumanIdentity(owner_team=payments).owner_known


def test_an_identity_owned_by_a_person_has_a_known_owner(analyst):
    assert NonHumanIdentity(owner=analyst).owner_known


def test_an_identity_with_neither_team_nor_person_has_no_known_owner():
    assert not NonHumanIdentity().owner_known


def test_last_use_is_known_once_recorded():
    assert not NonHumanIdentity().last_use_known
    assert NonHumanIdentity(last_used_at=NOW).last_use_known


def test_rotation_is_known_once_recorded():
    assert not NonHumanIdentity().rotation_known
    assert NonHumanIdentity(last_rotated_at=NOW).rotation_known


@pytest.mark.parametrize(
    ("attributes", "score"),
    [
        ({}, 0),
        ({"owner_known": True}, 1),
        ({"owner_known": True, "last_used_at": NOW}, 2),
        ({"owner_known": True, "last_used_at": NOW, "last_rotated_at": NOW}, 3),
        ({"last_used_at": NOW, "last_rotated_at": NOW}, 2),
    ],
)
def test_the_visibility_score_counts_the_known_facts(payments, attributes, score):
    attributes = dict(attributes)
    if attributes.pop("owner_known", False):
        attributes["owner_team"] = payments
    assert NonHumanIdentity(**attributes).visibility_score == score


@pytest.fixture
def identities_by_visibility(payments, analyst):
    return {
        "full": NonHumanIdentityFactory.create(
            name="full", owner_team=payments, last_used_at=NOW, last_rotated_at=NOW
        ),
        "person_owned_full": NonHumanIdentityFactory.create(
            name="person-owned", owner_team=None, owner=analyst, last_used_at=NOW, last_rotated_at=NOW
        ),
        "no_owner": NonHumanIdentityFactory.create(
            name="orphan", owner_team=None, last_used_at=NOW, last_rotated_at=NOW
        ),
        "no_last_use": NonHumanIdentityFactory.create(
            name="never-seen", owner_team=payments, last_rotated_at=NOW
        ),
        "no_rotation": NonHumanIdentityFactory.create(
            name="never-rotated", owner_team=payments, last_used_at=NOW
        ),
    }


def test_fully_visible_q_matches_exactly_the_fully_visible_identities(identities_by_visibility):
    found = set(
        NonHumanIdentity.objects.filter(NonHumanIdentity.fully_visible_q()).values_list("name", flat=True)
    )

    assert found == {"full", "person-owned"}


def filtered_names(client, user, value):
    client.force_login(user)
    response = client.get(reverse("admin:nhi_inventory_nonhumanidentity_changelist"), {"visibility": value})
    assert response.status_code == 200
    return {identity.name for identity in response.context["cl"].result_list}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("full", {"full", "person-owned"}),
        ("no_owner", {"orphan"}),
        ("no_last_use", {"never-seen"}),
        ("no_rotation", {"never-rotated"}),
        ("", {"full", "person-owned", "orphan", "never-seen", "never-rotated"}),
    ],
)
def test_the_admin_visibility_filter_lists_the_matching_identities(
    client, analyst, identities_by_visibility, value, expected
):
    assert filtered_names(client, analyst, value) == expected


def test_the_admin_visibility_filter_stays_within_the_owners_scope(client, owner, identities_by_visibility):
    # The orphan identity belongs to nobody: the owner cannot see it, filter or not.
    assert filtered_names(client, owner, "no_owner") == set()
