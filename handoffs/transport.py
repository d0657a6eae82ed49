"""One POST to a receiver, reduced to what the attempt log keeps: status code, duration, error class and a
short message. The response body is read (so the connection can be reused) and dropped: a receiver could echo
anything back, including what it should not.

Redirects are not followed: a signed hand-off goes to the URL an administrator configured, nowhere else.
"""

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

USER_AGENT = "nhi-portal-handoff/1"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ERROR_MESSAGE_MAX = 200
DRAIN_MAX = 64 * 1024


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    duration_ms: int
    error_class: str = ""
    error_message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def url_refusal(url: str) -> str:
    """Why the portal will not send hand-offs to this URL, or "" if it will."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for an impossible port
    except ValueError:
        return "The URL is malformed."
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "The URL must be an https:// address with a host name."
    if parts.username is not None or parts.password is not None:
        # It would be shown in the admin and sent in every log line that names the URL.
        return "The URL must not carry a user name or password; the signature authenticates the portal."
    if parts.fragment:
        return "The URL must not have a #fragment."
    if parts.scheme == "http":
        local = not settings.PRODUCTION and parts.hostname in LOOPBACK_HOSTS
        if not (settings.DEBUG or local):
            return (
                "The URL must use https://: http:// is accepted only in development (DEBUG) or, outside "
                "production, to this machine (localhost)."
            )
    return ""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MESSAGE_MAX else text[: ERROR_MESSAGE_MAX - 1] + "…"


def post_json(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
    )
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(DRAIN_MAX)
            return PostResult(status_code=response.status, duration_ms=elapsed())
    except urllib.error.HTTPError as error:
        # 3xx (not followed), 4xx, 5xx: the status says it all; the body is not kept.
        error.close()
        return PostResult(
            status_code=error.code,
            duration_ms=elapsed(),
            error_class="HTTPError",
            error_message=_short(f"HTTP {error.code} {error.reason}"),
        )
    except urllib.error.URLError as error:
        reason = error.reason
        name = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        return PostResult(
            status_code=None, duration_ms=elapsed(), error_class=name, error_message=_short(str(reason))
        )
    except TimeoutError as error:
        return PostResult(
            status_code=None,
            duration_ms=elapsed(),
            error_class=type(error).__name__,
            error_message=f"No answer within {timeout:g} s.",
        )
    except (OSError, ValueError, http.client.HTTPException) as error:
        # Connection reset mid-response, a malformed status line, ...: the class and its short text.
        return PostResult(
            status_code=None,
            duration_ms=elapsed(),
            error_class=type(error).__name__,
            error_message=_short(str(error)),
        )
