"""A DRF permission for endpoints whose every row needs one Django permission (reports, snapshots)."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def require_perm(permission: str, *, to: str) -> type[BasePermission]:
    """Signed in and holding `permission`; the refusal names what is missing."""

    class HasPermission(BasePermission):
        message = f"You may not {to}: the permission {permission!r} is missing."

        def has_permission(self, request: Request, view: Any) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.is_active and user.has_perm(permission))

    HasPermission.__name__ = f"Has_{permission.replace('.', '_')}"
    return HasPermission
