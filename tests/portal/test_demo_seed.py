from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cases.models import Case, CaseKind, CaseState, CaseTransition
from nhi_inventory.models import Credential, NonHumanIdentity


@pytest.fixture
def seeded(db):
    call_command("load_catalogs", verbosity=0)
    call_command("seed_demo", stdout=StringIO())


def test_the_demo_has_a_case_in_every_state(seeded):
    assert set(Case.objects.values_list("state", flat=True)) == set(CaseState.values)


def test_the_demo_has_about_fifty_identities_of_several_kinds(seeded):
    assert NonHumanIdentity.objects.count() == 50
    assert NonHumanIdentity.objects.values("kind").distinct().count() >= 6


def test_the_demo_has_an_attack_path_review_with_a_routed_step(seeded):
    review = Case.objects.get(kind=CaseKind.ATTACK_PATH_REVIEW)
    steps = list(review.attack_path_steps.order_by("position"))
    assert len(steps) >= 3
    assert any(step.remediation_action_id for step in steps)


def test_seeding_twice_changes_nothing(seeded):
    counts = (
        Case.objects.count(),
        NonHumanIdentity.objects.count(),
        Credential.objects.count(),
        CaseTransition.objects.count(),
    )
    call_command("seed_demo", stdout=StringIO())
    assert counts == (
        Case.objects.count(),
        NonHumanIdentity.objects.count(),
        Credential.objects.count(),
        CaseTransition.objects.count(),
    )


def test_every_demo_transition_is_attributed(seeded):
    assert not CaseTransition.objects.filter(actor__isnull=True).exists()
    assert CaseTransition.objects.exclude(name="open").count() > 10


def test_it_refuses_to_seed_in_production(db, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")
