"""The one place that turns a missing permission into an error that names it."""

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import PermissionDenied

# Every service takes the person (or service account) acting; anonymous callers are refused by name.
Actor = AbstractUser | AnonymousUser


def require_permission(actor: Actor, permission: str, *, to: str) -> None:
    if not actor.is_authenticated or not actor.is_active:
        raise PermissionDenied(f"You must be signed in to {to}.")
    if not actor.has_perm(permission):
        raise PermissionDenied(f"{actor} may not {to}: the permission {permission!r} is missing.")
