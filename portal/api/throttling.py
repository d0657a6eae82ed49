"""Rate limits for token clients (tools); people in a browser are not throttled."""

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from portal.models import ApiToken


class TokenClientThrottle(UserRateThrottle):
    scope = "token"

    def allow_request(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, ApiToken):
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        # Per token, so that two tools of one account do not share a budget.
        return self.cache_format % {"scope": self.scope, "ident": f"token-{request.auth.pk}"}
