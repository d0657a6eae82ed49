"""Identities, teams and credentials as the API shows and takes them. A credential is shown by its keyed
fingerprint and redacted preview only; its secret is taken once, write-only, to be fingerprinted."""

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from rest_framework import serializers

from nhi_inventory.models import Credential, CredentialStatus, CredentialType, NonHumanIdentity, Team
from nhi_inventory.selectors import team_list
from nhi_inventory.services import NHI_EDITABLE_FIELD_NAMES


class TeamSerializer(serializers.ModelSerializer[Team]):
    # Plain text: an empty address is allowed, and "" is no valid `format: email`.
    contact_email = serializers.CharField(read_only=True, help_text="An e-mail address, or empty.")
    lead: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Team
        fields = ("id", "name", "slug", "lead", "contact_email", "created_at")
        read_only_fields = fields


class VisibleTeamField(serializers.PrimaryKeyRelatedField[Team]):
    """A team id among those the caller may see: another team's id reads as unknown, not as forbidden."""

    def get_queryset(self) -> QuerySet[Team]:
        return team_list(user=self.context["request"].user)


class KnownUserField(serializers.SlugRelatedField[User]):
    """A username; people allowed to look users up may name anyone active, others only themselves."""

    def get_queryset(self) -> QuerySet[User]:
        user = self.context["request"].user
        users = User.objects.filter(is_active=True)
        return users if user.has_perm("auth.view_user") else users.filter(pk=user.pk)


class NhiSerializer(serializers.ModelSerializer[NonHumanIdentity]):
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    visibility_score = serializers.IntegerField(
        read_only=True, help_text="How many of owner, last use and last rotation are known (0 to 3)."
    )

    class Meta:
        model = NonHumanIdentity
        fields = (
            "id",
            *NHI_EDITABLE_FIELD_NAMES,
            "visibility_score",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class NhiWriteSerializer(serializers.ModelSerializer[NonHumanIdentity]):
    """What `nhi_create` and `nhi_update` take; the service checks permission, scope and the rules."""

    owner_team = VisibleTeamField(required=False, allow_null=True)
    owner = KnownUserField(slug_field="username", required=False, allow_null=True)
    reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Why (kept in the history); updates only.",
    )

    class Meta:
        model = NonHumanIdentity
        fields = (*NHI_EDITABLE_FIELD_NAMES, "reason")


class CredentialSerializer(serializers.ModelSerializer[Credential]):
    class Meta:
        model = Credential
        fields = (
            "id",
            "nhi",
            "credential_type",
            "label",
            "fingerprint",
            "fingerprint_key_id",
            "preview",
            "status",
            "issued_at",
            "last_rotated_at",
            "expires_at",
            "created_at",
        )
        read_only_fields = fields


class CredentialRegisterSerializer(serializers.Serializer[Any]):
    nhi = serializers.IntegerField(help_text="The identity the credential belongs to.")
    credential_type = serializers.ChoiceField(choices=CredentialType.choices)
    # Kept as sent (no trimming): the fingerprint must match what a scanner finds.
    secret = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=16384,
        style={"input_type": "password"},
        help_text="The secret itself: fingerprinted and dropped, never stored or shown back.",
    )
    label = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, max_length=200, default=""
    )
    issued_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class CredentialStatusSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=CredentialStatus.choices)
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Kept in the history."
    )
