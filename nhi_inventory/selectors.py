from django.db.models import Q, QuerySet

from nhi_inventory.models import Credential, NonHumanIdentity, Team, TeamMembership
from portal.permissions import Actor


def sees_all_identities(user: Actor) -> bool:
    return user.is_active and user.has_perm("nhi_inventory.view_all_identities")


def team_ids_of(user: Actor) -> QuerySet[TeamMembership, int]:
    """A subquery of the user's team ids, for filters that must not multiply rows with joins."""
    if user.pk is None:
        return TeamMembership.objects.none().values_list("team_id", flat=True)
    return TeamMembership.objects.filter(user_id=user.pk).values_list("team_id", flat=True)


def team_list(*, user: Actor) -> QuerySet[Team]:
    teams = Team.objects.all()
    if sees_all_identities(user):
        return teams
    return teams.filter(pk__in=team_ids_of(user))


def identity_scope(user: Actor, *, prefix: str = "") -> Q:
    """Rows whose identity is owned by one of the user's teams, or by the user personally."""
    return Q(**{f"{prefix}owner_team_id__in": team_ids_of(user)}) | Q(**{f"{prefix}owner_id": user.pk})


def nhi_list(*, user: Actor) -> QuerySet[NonHumanIdentity]:
    identities = NonHumanIdentity.objects.all()
    if not user.is_authenticated or not user.is_active:
        return identities.none()
    if sees_all_identities(user):
        return identities
    return identities.filter(identity_scope(user))


def credential_list(*, user: Actor) -> QuerySet[Credential]:
    credentials = Credential.objects.all()
    if not user.is_authenticated or not user.is_active:
        return credentials.none()
    if sees_all_identities(user):
        return credentials
    return credentials.filter(identity_scope(user, prefix="nhi__"))
