import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from nhi_inventory.models import NHIKind, NonHumanIdentity, Team


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    password = factory.django.Password("pw")
    is_staff = True


class TeamFactory(factory.django.DjangoModelFactory[Team]):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class NonHumanIdentityFactory(factory.django.DjangoModelFactory[NonHumanIdentity]):
    class Meta:
        model = NonHumanIdentity

    name = factory.Sequence(lambda n: f"svc-account-{n}")
    kind = NHIKind.SERVICE_ACCOUNT
    provider = "AWS"
    owner_team = factory.SubFactory(TeamFactory)
