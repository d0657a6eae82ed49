import hashlib
from datetime import timedelta

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from findings.models import Exposure, Finding, FingerprintScheme, ImportRun, ReportFormat
from nhi_inventory.models import Credential, CredentialType, NHIKind, NonHumanIdentity, Team


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


# --- Secrets findings (owner page, answer links) ----------------------------------------------------------


def _hex(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


class CredentialFactory(factory.django.DjangoModelFactory[Credential]):
    class Meta:
        model = Credential

    nhi = factory.SubFactory(NonHumanIdentityFactory)
    credential_type = CredentialType.ACCESS_KEY
    fingerprint = factory.Sequence(lambda n: _hex(f"credential-{n}"))
    fingerprint_key_id = factory.LazyFunction(lambda: settings.FINGERPRINT_KEY_ID)
    preview = factory.Sequence(lambda n: f"AKIA…(20 chars) #{n}")


class ImportRunFactory(factory.django.DjangoModelFactory[ImportRun]):
    class Meta:
        model = ImportRun

    report_format = ReportFormat.GITLEAKS
    source = "github.com/acme/payments"
    file_sha256 = factory.Sequence(lambda n: _hex(f"report-{n}"))
    file_size = 100
    imported_by = factory.SubFactory(UserFactory)
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)


class ExposureFactory(factory.django.DjangoModelFactory[Exposure]):
    """An exposure as an import leaves it: pending, attributed, one location (add findings to match)."""

    class Meta:
        model = Exposure

    fingerprint = factory.Sequence(lambda n: _hex(f"exposure-{n}"))
    fingerprint_key_id = factory.LazyFunction(lambda: settings.FINGERPRINT_KEY_ID)
    fingerprint_scheme = FingerprintScheme.SECRET
    detector = "aws-access-key"
    preview = factory.Sequence(lambda n: f"aws-access-key:A{n:03d}…(20 chars)")
    first_seen_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))
    last_seen_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    nhi = factory.SubFactory(NonHumanIdentityFactory)


class FindingFactory(factory.django.DjangoModelFactory[Finding]):
    class Meta:
        model = Finding

    exposure = factory.SubFactory(ExposureFactory)
    location_key = factory.Sequence(lambda n: _hex(f"location-{n}"))
    source = "github.com/acme/payments"
    scanner = "gitleaks"
    detector = factory.SelfAttribute("exposure.detector")
    repository = "github.com/acme/payments"
    path = factory.Sequence(lambda n: f"deploy/service-{n}.env")
    line = 3
    commit = "a" * 40
    context = factory.LazyAttribute(lambda finding: f"AWS_ACCESS_KEY_ID = {finding.exposure.preview}")
    first_seen_at = factory.SelfAttribute("exposure.first_seen_at")
    last_seen_at = factory.SelfAttribute("exposure.last_seen_at")
    first_import = factory.SubFactory(ImportRunFactory)
    last_import = factory.SelfAttribute("first_import")
