"""API tokens: created and revoked only here, so the admin, the API and the command check the same rules.

A token is shown once, when it is created; only its SHA-256 is stored (see `portal.models.ApiToken`).
People create and revoke their own tokens; doing it for someone else needs `portal.add_apitoken` (create)
or `portal.change_apitoken` (revoke), which only administrators hold.
"""

import secrets
from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_entry_append
from audit.values import audit_fields
from portal.api.authentication import TOKEN_PREFIX, token_hash
from portal.models import ApiToken
from portal.permissions import Actor, signed_in

# "nhi_" and 8 random characters: enough to tell a person's tokens apart, far too little to guess the rest.
PREFIX_LENGTH = 12
NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length or 120


def _new_raw_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@transaction.atomic
def api_token_create(
    *, actor: Actor, user_id: int, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user_id`: the stored row, and the raw token to hand over once (it is not kept)."""
    creator = signed_in(actor, to="create API tokens")
    if user_id != creator.pk and not creator.has_perm("portal.add_apitoken"):
        raise PermissionDenied(
            f"{creator} may create API tokens only for themselves: 'portal.add_apitoken' is missing."
        )
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise ValidationError({"user": f"No user with id {user_id}."})
    if not user.is_active:
        raise ValidationError({"user": f"{user} is not active; a token for them would never work."})
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Say what will use the token, e.g. 'gitleaks in CI'."})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": f"At most {NAME_MAX_LENGTH} characters."})
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    raw = _new_raw_token()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[:PREFIX_LENGTH],
        key_hash=token_hash(raw),
        created_at=now,
        created_by=creator,
        expires_at=expires_at,
    )
    # Never the token, its prefix or its hash: the row's id says which token it was.
    audit_entry_append(
        actor=creator,
        event="api_token.create",
        target=token,
        after=audit_fields(token, ("user", "name", "expires_at")),
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token at once; revoking a revoked token changes nothing (its first revocation time stays)."""
    revoker = signed_in(actor, to="revoke API tokens")
    token = ApiToken.objects.select_for_update().select_related("user").filter(pk=token_id).first()
    if token is None:
        raise ValidationError({"token": f"No API token with id {token_id}."})
    if token.user_id != revoker.pk and not revoker.has_perm("portal.change_apitoken"):
        raise PermissionDenied(
            f"{revoker} may revoke only their own API tokens: 'portal.change_apitoken' is missing."
        )
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_entry_append(
            actor=revoker,
            event="api_token.revoke",
            target=token,
            before={"revoked_at": None},
            after={"revoked_at": token.revoked_at},
            details={"user": token.user_id},
        )
    return token
