"""Fixtures for the owner page and answer links: a second owner, and exposures with their locations.

- owner (tests/conftest.py): NHI owner on the Payments team.
- platform_owner: NHI owner on the Platform team; must never see or answer for Payments' exposures.
"""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group

from findings.models import Exposure
from nhi_inventory.models import Team
from portal import roles
from tests.factories import ExposureFactory, FindingFactory, ImportRunFactory, UserFactory

MakeExposure = Callable[..., Exposure]


@pytest.fixture
def platform_owner(role_groups: None, platform: Team) -> Any:
    user = UserFactory.create(username="platform-owner", first_name="Pat", is_staff=False)
    user.groups.add(Group.objects.get(name=roles.OWNER))
    platform.memberships.create(user=user)
    return user


@pytest.fixture
def make_exposure(db: None) -> MakeExposure:
    """An exposure of `nhi` found in `locations` places, each a Finding from one shared import."""

    def make(nhi: Any, *, locations: int = 1, **fields: Any) -> Exposure:
        exposure = ExposureFactory.create(nhi=nhi, locations=locations, **fields)
        run = ImportRunFactory.create()
        FindingFactory.create_batch(locations, exposure=exposure, first_import=run, last_import=run)
        return exposure

    return make
