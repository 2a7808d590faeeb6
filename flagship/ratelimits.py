"""Rate limits on the API, counted in the cache (locmem or Redis) by django-ratelimit.

DRF throttle classes, so a limited request becomes ``Throttled`` and the exception handler answers
429 problem details with ``Retry-After`` (seconds until the current window ends). Rates are
settings (``FLAGSHIP_AUTH_RATE``, ``FLAGSHIP_MANAGEMENT_RATE``), read per request through
``flags.conf`` (which holds their defaults); an empty rate turns a limit off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_ratelimit.core import get_usage  # type: ignore[import-untyped]  # ships no types
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from flags import conf
from flagship import breakers

if TYPE_CHECKING:  # DRF imports this module while rest_framework.views is half-loaded
    from rest_framework.views import APIView

# Evaluation routes have their own limits (per key), so the per-user limit skips them.
EVALUATION_PREFIXES = ("/api/v1/evaluate", "/api/v1/ruleset", "/api/v1/stream")
ENVIRONMENT_KEY_KINDS = ("server", "client")


class _RateLimitThrottle(BaseThrottle):
    """Throttle on a django-ratelimit counter; subclasses choose the group, key and rate."""

    group = ""
    rate_setting = ""

    def __init__(self) -> None:
        self.time_left: float | None = None

    def key(self, request: Request) -> str | None:
        """The counter's key for ``request``; ``None`` exempts the request."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        """Count the request; refuse it once the window's limit is used up."""
        rate = conf.rate(self.rate_setting)
        value = self.key(request) if rate else None
        if value is None or not breakers.redis_breaker.available():
            return True  # Redis is down: fail open rather than wait on it or lock everyone out
        usage = get_usage(
            request,
            group=self.group,
            key=lambda group, request: value,
            rate=rate,
            increment=True,
        )
        if usage is None or not usage["should_limit"]:
            return True
        self.time_left = usage["time_left"]
        return False

    def wait(self) -> float | None:
        """Seconds until the window ends (at least 1)."""
        return None if self.time_left is None else max(1.0, float(self.time_left))


class AuthRateThrottle(_RateLimitThrottle):
    """Per client address on the token endpoints (``FLAGSHIP_AUTH_RATE``)."""

    group = "auth"
    rate_setting = conf.AUTH_RATE

    def key(self, request: Request) -> str | None:
        """The client address."""
        return str(request.META.get("REMOTE_ADDR", ""))


class ManagementRateThrottle(_RateLimitThrottle):
    """Per user on authenticated management calls (``FLAGSHIP_MANAGEMENT_RATE``).

    Environment keys (evaluation) and evaluation routes are not counted here.
    """

    group = "management"
    rate_setting = conf.MANAGEMENT_RATE

    def key(self, request: Request) -> str | None:
        """The user's id, or ``None`` for anonymous, evaluation and non-API requests."""
        path = request.path
        if not path.startswith("/api/") or path.startswith(EVALUATION_PREFIXES):
            return None
        auth: Any = request.auth
        if getattr(auth, "kind", None) in ENVIRONMENT_KEY_KINDS:
            return None
        user = request.user
        if user is None or not user.is_authenticated:
            return None
        return str(user.pk)
