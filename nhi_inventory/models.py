from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class Team(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="teams_led"
    )
    members: models.ManyToManyField[User, TeamMembership] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMembership", related_name="nhi_teams", blank=True
    )
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        constraints = (models.UniqueConstraint(fields=("team", "user"), name="team_membership_unique"),)

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class NHIKind(models.TextChoices):
    SERVICE_ACCOUNT = "service_account", "Service account"
    API_KEY = "api_key", "API key"
    OAUTH_APP = "oauth_app", "OAuth app"
    BOT = "bot", "Bot"
    WORKLOAD_IDENTITY = "workload_identity", "Workload identity"
    CERTIFICATE = "certificate", "Certificate"
    TOKEN = "token", "Token"
    OTHER = "other", "Other"


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"
    TEST = "test", "Test"


class PrivilegeLevel(models.IntegerChoices):
    READ_ONLY = 0, "Read-only"
    STANDARD = 1, "Standard"
    ELEVATED = 2, "Elevated"
    ADMIN = 3, "Administrative"


class Criticality(models.IntegerChoices):
    LOW = 0, "Low"
    MEDIUM = 1, "Medium"
    HIGH = 2, "High"
    CRITICAL = 3, "Critical"


class LifecycleState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


# Fields whose change alters the priority of every open case that concerns the identity.
RISK_FIELDS = ("criticality", "privilege_level", "internet_facing", "third_party")


class NonHumanIdentity(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=NHIKind.choices)
    provider = models.CharField(
        max_length=80, help_text="Platform or provider, e.g. AWS, GitHub, Kubernetes, Okta, Salesforce."
    )
    external_id = models.CharField(
        max_length=255, blank=True, help_text="The identity's id at the provider (ARN, client id, ...)."
    )
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.PRODUCTION)
    description = models.TextField(blank=True)
    owner_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="identities"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_identities",
        help_text="The person accountable for this identity.",
    )
    privilege_level = models.PositiveSmallIntegerField(
        choices=PrivilegeLevel.choices, default=PrivilegeLevel.STANDARD
    )
    criticality = models.PositiveSmallIntegerField(choices=Criticality.choices, default=Criticality.MEDIUM)
    internet_facing = models.BooleanField(default=False)
    third_party = models.BooleanField(default=False, help_text="Used by or shared with a third party.")
    provisioned_at = models.DateTimeField(null=True, blank=True, help_text="When the identity was created.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    lifecycle_state = models.CharField(
        max_length=16, choices=LifecycleState.choices, default=LifecycleState.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "non-human identity"
        verbose_name_plural = "non-human identities"
        ordering = ("name", "id")
        indexes = (
            models.Index(fields=("kind", "name"), name="nhi_kind_name"),
            models.Index(fields=("owner_team", "name"), name="nhi_team_name"),
            models.Index(fields=("lifecycle_state", "name"), name="nhi_lifecycle_name"),
            models.Index(fields=("environment", "name"), name="nhi_env_name"),
            # The changelist's default order (Meta.ordering): lets the first page read 50 rows, not sort all.
            models.Index(fields=("name", "id"), name="nhi_name_id"),
        )
        permissions = (("view_all_identities", "Can view identities of every team"),)

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def owner_known(self) -> bool:
        return self.owner_team_id is not None or self.owner_id is not None

    @property
    def last_use_known(self) -> bool:
        return self.last_used_at is not None

    @property
    def rotation_known(self) -> bool:
        return self.last_rotated_at is not None

    @property
    def visibility_score(self) -> int:
        """How many of the three facts the guidance calls visibility are known (0 to 3)."""
        return sum((self.owner_known, self.last_use_known, self.rotation_known))

    @classmethod
    def fully_visible_q(cls) -> Q:
        return (Q(owner_team__isnull=False) | Q(owner__isnull=False)) & Q(
            last_used_at__isnull=False, last_rotated_at__isnull=False
        )


class CredentialType(models.TextChoices):
    API_KEY = "api_key", "API key"
    ACCESS_KEY = "access_key", "Cloud access key"
    PASSWORD = "password", "Password"
    PRIVATE_KEY = "private_key", "Private key"
    TOKEN = "token", "Token"
    CLIENT_SECRET = "client_secret", "OAuth client secret"
    CERTIFICATE = "certificate", "Certificate"
    OTHER = "other", "Other"


class CredentialStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ROTATED = "rotated", "Rotated"
    REVOKED = "revoked", "Revoked"


class Credential(models.Model):
    """A secret that belongs to an identity, known only by its keyed fingerprint and a redacted preview."""

    nhi = models.ForeignKey(NonHumanIdentity, on_delete=models.CASCADE, related_name="credentials")
    credential_type = models.CharField(max_length=24, choices=CredentialType.choices)
    label = models.CharField(max_length=200, blank=True)
    fingerprint = models.CharField(max_length=64, help_text="HMAC-SHA256 of the secret, hex.")
    fingerprint_key_id = models.CharField(max_length=40)
    preview = models.CharField(max_length=64, help_text="Redacted: a few leading characters and the length.")
    status = models.CharField(
        max_length=16, choices=CredentialStatus.choices, default=CredentialStatus.ACTIVE
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    last_rotated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("nhi_id", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("fingerprint_key_id", "fingerprint"), name="credential_fingerprint_unique"
            ),
            models.CheckConstraint(
                condition=Q(fingerprint__regex=r"^[0-9a-f]{64}$"), name="credential_fingerprint_is_hex_sha256"
            ),
        )

    def __str__(self) -> str:
        return f"{self.get_credential_type_display()} {self.preview}"
