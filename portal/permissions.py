"""The one place that turns a missing sign-in or permission into an error that names it.

The portal uses Django's default user model, so an actor is a `User` or, for an unauthenticated request,
an `AnonymousUser`; services narrow it to a signed-in `User` before they write anything attributed to it.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied

Actor = User | AnonymousUser


def signed_in(actor: Actor, *, to: str) -> User:
    if isinstance(actor, AnonymousUser) or not actor.is_active:
        raise PermissionDenied(f"You must be signed in with an active account to {to}.")
    return actor


def require_permission(actor: Actor, permission: str, *, to: str) -> User:
    user = signed_in(actor, to=to)
    if not user.has_perm(permission):
        raise PermissionDenied(f"{user} may not {to}: the permission {permission!r} is missing.")
    return user
