"""Who may call the findings endpoints at all; what each may see is the selectors' answer.

A view names the permission each action needs (`action_permissions`), so that a person without it gets a
403 before their input is even read, rather than a 400 about input they could never send. The services
check the same permissions again: this is the early answer, not the only guard.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class ActionPermission(BasePermission):
    """The permission `view.action_permissions[view.action]` (or `["*"]`), when one is named."""

    message = "You do not have the permission this needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        permissions: dict[str, str] = getattr(view, "action_permissions", {})
        action = getattr(view, "action", None) or (request.method or "").lower()
        needed = permissions.get(action, permissions.get("*"))
        if needed is None:
            return True
        if request.user.has_perm(needed):
            return True
        self.message = f"{request.user} may not do this: the permission {needed!r} is missing."
        return False
