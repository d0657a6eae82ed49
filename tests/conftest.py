"""Personas shared by every test: each permission test should read like a sentence about one of them.

- analyst: compliance analyst; opens, moves and works cases; cannot approve.
- approver: the second pair of eyes; decides closure and risk-acceptance requests.
- auditor: reads everything, writes nothing.
- owner: NHI owner on the Payments team; sees only Payments' identities and cases.
- outsider: signed in, not staff, in no group; sees nothing.
"""

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from cases import services
from cases.models import ActionStatus, Case, CaseKind, CaseState, EvidenceKind, Severity
from nhi_inventory.models import Team
from portal import roles
from tests.factories import NonHumanIdentityFactory, TeamFactory, UserFactory


def pytest_configure() -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """Create the role groups once: rolled-back tests then find them, and `role_groups` skips its ~0.1 s sync.

    Transactional tests flush them; `role_groups` recreates them there (pytest-django runs those last).
    """
    with django_db_blocker.unblock():
        roles.roles_sync()


@pytest.fixture
def role_groups(db: None) -> None:
    # Transactional tests flush every table, groups included; recreate them when missing.
    if Group.objects.filter(name=roles.ANALYST).exists():
        return
    roles.roles_sync()


def _persona(username: str, group: str | None, *, is_staff: bool = True) -> Any:
    user = UserFactory.create(username=username, is_staff=is_staff, first_name=username.capitalize())
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def payments(db: None) -> Team:
    return TeamFactory.create(name="Payments", slug="payments")


@pytest.fixture
def platform(db: None) -> Team:
    return TeamFactory.create(name="Platform", slug="platform")


@pytest.fixture
def analyst(role_groups: None) -> Any:
    return _persona("analyst", roles.ANALYST)


@pytest.fixture
def approver(role_groups: None) -> Any:
    return _persona("approver", roles.APPROVER)


@pytest.fixture
def auditor(role_groups: None) -> Any:
    return _persona("auditor", roles.AUDITOR)


@pytest.fixture
def owner(role_groups: None, payments: Team) -> Any:
    user = _persona("owner", roles.OWNER)
    payments.memberships.create(user=user)
    return user


@pytest.fixture
def outsider(role_groups: None) -> Any:
    return _persona("outsider", None, is_staff=False)


@pytest.fixture
def payments_identity(payments: Team) -> Any:
    return NonHumanIdentityFactory.create(name="payments-api-bot", owner_team=payments)


@pytest.fixture
def platform_identity(platform: Team) -> Any:
    return NonHumanIdentityFactory.create(name="ci-deployer", owner_team=platform)


@pytest.fixture
def open_case(analyst: Any, payments_identity: Any) -> Callable[..., Case]:
    def make(
        *, severity: int = Severity.MEDIUM, kind: str = CaseKind.SECRET_EXPOSURE, identities: Any = None
    ) -> Case:
        return services.case_open(
            actor=analyst,
            title="AWS key in payments repo",
            kind=kind,
            severity=severity,
            identities=[payments_identity] if identities is None else identities,
        )

    return make


@pytest.fixture
def case_in_state(
    open_case: Callable[..., Case], analyst: Any, approver: Any, payments: Team
) -> Callable[..., Case]:
    """Walk a new case through the real services to the state asked for."""

    def make(state: str, *, severity: int = Severity.MEDIUM, kind: str = CaseKind.SECRET_EXPOSURE) -> Case:
        case = open_case(severity=severity, kind=kind)
        path = [
            CaseState.CONFIRMED,
            CaseState.ASSIGNED,
            CaseState.IN_PROGRESS,
            CaseState.VERIFIED,
            CaseState.CLOSED,
        ]
        if state == CaseState.IDENTIFIED:
            return case
        if state == CaseState.DISMISSED:
            return services.case_dismiss(
                case_id=case.pk, actor=analyst, dismissal_reason="false_positive", reason="test data"
            )
        for step in path:
            if step == CaseState.CONFIRMED:
                case = services.case_confirm(case_id=case.pk, actor=analyst)
            elif step == CaseState.ASSIGNED:
                case = services.case_assign(
                    case_id=case.pk, actor=analyst, assignee=analyst, owning_team=payments
                )
            elif step == CaseState.IN_PROGRESS:
                item = services.action_item_add(
                    actor=analyst,
                    case_id=case.pk,
                    kind="rotation",
                    title="Rotate the key",
                    owning_team=payments,
                )
                case = services.case_start_action(case_id=case.pk, actor=analyst)
            elif step == CaseState.VERIFIED:
                services.action_item_set_status(
                    actor=analyst, action_item_id=item.pk, status=ActionStatus.DONE
                )
                services.evidence_capture(
                    actor=analyst,
                    case_id=case.pk,
                    kind=EvidenceKind.NOTE,
                    title="Rotation log",
                    note="Key rotated",
                )
                case = services.case_verify(case_id=case.pk, actor=analyst)
            elif step == CaseState.CLOSED:
                if severity >= Severity.HIGH:
                    approval = services.approval_request(
                        actor=analyst, case_id=case.pk, kind="closure", reason="done"
                    )
                    services.approval_decide(actor=approver, approval_id=approval.pk, approve=True)
                case = services.case_close(case_id=case.pk, actor=analyst)
            if case.state == state:
                return case
        raise AssertionError(f"cannot walk to {state}")

    return make


@pytest.fixture
def api() -> Callable[[Any], APIClient]:
    """An API client signed in as a persona through its session (None: anonymous)."""

    def client_for(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return client_for


@pytest.fixture
def persona(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """Look a persona up by name, so one parametrized test can speak about each of them."""
    return request.getfixturevalue
