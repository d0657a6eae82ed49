from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.canonical import text_digest
from audit.services import audit_entry_append
from audit.values import audit_changes, audit_fields
from nhi_inventory.fingerprints import fingerprint_secret, redacted_preview
from nhi_inventory.models import (
    RISK_FIELDS,
    Credential,
    CredentialStatus,
    CredentialType,
    LifecycleState,
    NonHumanIdentity,
    Team,
    TeamMembership,
)
from nhi_inventory.selectors import nhi_list, sees_all_identities
from nhi_inventory.signals import identity_risk_changed
from portal.permissions import Actor, require_permission

OWNERSHIP_FIELDS = frozenset({"owner_team", "owner"})
TEAM_EDITABLE_FIELDS = frozenset({"name", "slug", "lead", "contact_email"})
# In the order forms and the API show them.
NHI_EDITABLE_FIELD_NAMES = (
    "name",
    "kind",
    "provider",
    "external_id",
    "environment",
    "description",
    "owner_team",
    "owner",
    "privilege_level",
    "criticality",
    "internet_facing",
    "third_party",
    "provisioned_at",
    "last_used_at",
    "last_rotated_at",
    "expires_at",
    "lifecycle_state",
)
NHI_EDITABLE_FIELDS = frozenset(NHI_EDITABLE_FIELD_NAMES)
TEAM_AUDITED_FIELDS = ("name", "slug", "lead", "contact_email")
# The provider is a platform's name (AWS, GitHub): kept as is. Names, external ids, descriptions: digests.
NHI_VERBATIM_FIELDS = ("provider",)
# Never the fingerprint or the secret: the key id and the redacted preview say which credential it is.
CREDENTIAL_AUDITED_FIELDS = (
    "nhi",
    "credential_type",
    "label",
    "fingerprint_key_id",
    "preview",
    "status",
    "issued_at",
    "expires_at",
)


def _apply_changes(instance: Any, changes: Mapping[str, Any], allowed: frozenset[str]) -> list[str]:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed here."))
    changed = []
    for name, value in changes.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _save_validated(instance: Any, *, actor: Actor, reason: str = "") -> None:
    instance.full_clean()
    instance._history_user = actor
    if reason:
        instance._change_reason = reason
    instance.save()


@transaction.atomic
def team_create(
    *, actor: Actor, name: str, slug: str, lead: User | None = None, contact_email: str = ""
) -> Team:
    actor = require_permission(actor, "nhi_inventory.add_team", to="create teams")
    team = Team(name=name, slug=slug, lead=lead, contact_email=contact_email)
    _save_validated(team, actor=actor)
    audit_entry_append(
        actor=actor, event="team.create", target=team, after=audit_fields(team, TEAM_AUDITED_FIELDS)
    )
    return team


@transaction.atomic
def team_update(*, actor: Actor, team_id: int, changes: Mapping[str, Any]) -> Team:
    actor = require_permission(actor, "nhi_inventory.change_team", to="change teams")
    team = Team.objects.select_for_update().get(pk=team_id)
    before = audit_fields(team, TEAM_AUDITED_FIELDS)
    if _apply_changes(team, changes, TEAM_EDITABLE_FIELDS):
        _save_validated(team, actor=actor)
        was, now = audit_changes(before, audit_fields(team, TEAM_AUDITED_FIELDS))
        audit_entry_append(actor=actor, event="team.update", target=team, before=was, after=now)
    return team


@transaction.atomic
def team_member_add(*, actor: Actor, team_id: int, user: User) -> TeamMembership:
    actor = require_permission(actor, "nhi_inventory.change_team", to="change team membership")
    existing = TeamMembership.objects.filter(team_id=team_id, user_id=user.pk).first()
    if existing is not None:
        return existing
    membership = TeamMembership(team_id=team_id, user_id=user.pk)
    membership._history_user = actor  # type: ignore[attr-defined]
    membership.save()
    audit_entry_append(
        actor=actor,
        event="team_member.add",
        target=membership,
        after={"team": team_id, "user": user.pk},
    )
    return membership


@transaction.atomic
def team_member_remove(*, actor: Actor, team_id: int, user: User) -> None:
    actor = require_permission(actor, "nhi_inventory.change_team", to="change team membership")
    for membership in TeamMembership.objects.filter(team_id=team_id, user_id=user.pk):
        membership_id = membership.pk
        membership._history_user = actor  # type: ignore[attr-defined]
        membership.delete()
        # The row is gone: the entry names it by id rather than as its target.
        audit_entry_append(
            actor=actor,
            event="team_member.remove",
            before={"team": team_id, "user": user.pk, "membership": membership_id},
            after=None,
        )


def _editable_identity(
    *, actor: Actor, nhi_id: int, permission: str = "nhi_inventory.change_nonhumanidentity"
) -> NonHumanIdentity:
    """The identity, locked, if the actor holds `permission` and may see it (their team's, or all)."""
    actor = require_permission(actor, permission, to="change identities")
    identity = nhi_list(user=actor).select_for_update().filter(pk=nhi_id).first()
    if identity is None:
        if NonHumanIdentity.objects.filter(pk=nhi_id).exists():
            raise PermissionDenied(f"{actor} may not change identity #{nhi_id}: it belongs to another team.")
        raise ValidationError({"nhi": f"No identity with id {nhi_id}."})
    return identity


@transaction.atomic
def nhi_create(*, actor: Actor, name: str, kind: str, provider: str, **attributes: Any) -> NonHumanIdentity:
    actor = require_permission(actor, "nhi_inventory.add_nonhumanidentity", to="register identities")
    identity = NonHumanIdentity(name=name, kind=kind, provider=provider)
    _apply_changes(identity, attributes, NHI_EDITABLE_FIELDS)
    _save_validated(identity, actor=actor)
    audit_entry_append(
        actor=actor,
        event="nhi.create",
        target=identity,
        after=audit_fields(identity, NHI_EDITABLE_FIELD_NAMES, verbatim=NHI_VERBATIM_FIELDS),
    )
    return identity


@transaction.atomic
def nhi_update(
    *, actor: Actor, nhi_id: int, changes: Mapping[str, Any], reason: str = ""
) -> NonHumanIdentity:
    identity = _editable_identity(actor=actor, nhi_id=nhi_id)
    if identity.lifecycle_state == LifecycleState.DECOMMISSIONED and changes.get("lifecycle_state") not in (
        None,
        LifecycleState.DECOMMISSIONED,
    ):
        raise ValidationError({"lifecycle_state": "A decommissioned identity cannot be brought back."})
    before = audit_fields(identity, NHI_EDITABLE_FIELD_NAMES, verbatim=NHI_VERBATIM_FIELDS)
    changed = _apply_changes(identity, changes, NHI_EDITABLE_FIELDS)
    if not changed:
        return identity
    if set(changed) & OWNERSHIP_FIELDS and not sees_all_identities(actor):
        # An owner may maintain their identities, not hand them to someone else: that is a governance call.
        raise PermissionDenied(f"{actor} may not change who owns {identity.name}; ask a compliance analyst.")
    _save_validated(identity, actor=actor, reason=reason)
    was, now = audit_changes(
        before, audit_fields(identity, NHI_EDITABLE_FIELD_NAMES, verbatim=NHI_VERBATIM_FIELDS)
    )
    audit_entry_append(
        actor=actor,
        event="nhi.update",
        target=identity,
        before=was,
        after=now,
        details={"reason": text_digest(reason)},
    )
    if set(changed) & set(RISK_FIELDS):
        identity_risk_changed.send(sender=NonHumanIdentity, identity_ids=[identity.pk], actor=actor)
    return identity


@transaction.atomic
def credential_register(
    *,
    actor: Actor,
    nhi_id: int,
    credential_type: str,
    secret: str,
    label: str = "",
    issued_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> Credential:
    """Record a credential by fingerprint and preview; the secret itself is dropped here, never saved."""
    actor = require_permission(actor, "nhi_inventory.add_credential", to="register credentials")
    identity = _editable_identity(actor=actor, nhi_id=nhi_id)
    if credential_type not in CredentialType.values:
        raise ValidationError({"credential_type": f"{credential_type!r} is not a known credential type."})
    if not secret or not secret.strip():
        raise ValidationError({"secret": "The secret is empty."})
    fingerprint = fingerprint_secret(secret)
    duplicate = Credential.objects.filter(
        fingerprint=fingerprint.value, fingerprint_key_id=fingerprint.key_id
    ).first()
    if duplicate is not None:
        message = f"This secret is already registered as credential #{duplicate.pk} ({duplicate.preview})."
        raise ValidationError({"secret": message})
    credential = Credential(
        nhi=identity,
        credential_type=credential_type,
        label=label,
        fingerprint=fingerprint.value,
        fingerprint_key_id=fingerprint.key_id,
        preview=redacted_preview(secret),
        issued_at=issued_at,
        expires_at=expires_at,
    )
    _save_validated(credential, actor=actor)
    audit_entry_append(
        actor=actor,
        event="credential.register",
        target=credential,
        after=audit_fields(credential, CREDENTIAL_AUDITED_FIELDS, verbatim=("fingerprint_key_id", "preview")),
    )
    return credential


@transaction.atomic
def credential_set_status(*, actor: Actor, credential_id: int, status: str, reason: str = "") -> Credential:
    actor = require_permission(actor, "nhi_inventory.change_credential", to="change credentials")
    credential = Credential.objects.select_for_update().get(pk=credential_id)
    # Changing a credential's status is not changing its identity: the portal's own account marks a
    # credential rotated on its owner's word without being allowed to edit identities.
    _editable_identity(actor=actor, nhi_id=credential.nhi_id, permission="nhi_inventory.change_credential")
    if status not in CredentialStatus.values:
        raise ValidationError({"status": f"{status!r} is not a credential status."})
    if credential.status == CredentialStatus.REVOKED and status != CredentialStatus.REVOKED:
        raise ValidationError({"status": "A revoked credential stays revoked; register the new one instead."})
    before = {"status": credential.status}
    credential.status = status
    _save_validated(credential, actor=actor, reason=reason)
    audit_entry_append(
        actor=actor,
        event="credential.set_status",
        target=credential,
        before=before,
        after={"status": credential.status},
        details={"nhi": credential.nhi_id, "reason": text_digest(reason)},
    )
    return credential
