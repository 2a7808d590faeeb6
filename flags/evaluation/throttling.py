"""Per-key rate limiting of evaluation (django-ratelimit, counted in the shared cache).

The rate is ``settings.FLAGSHIP_EVALUATION_RATE`` (django-ratelimit syntax, default ``6000/m``;
empty turns the limit off) and the counter is per API key (its public ``lookup``), shared by the
evaluation API and OFREP. When the cache cannot count (Redis down) evaluation fails open: serving
flags matters more than limiting them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey

GROUP = "flagship.evaluation"
DEFAULT_RATE = "6000/m"
# django-ratelimit ships no type information; this is the one function used, with its shape.
get_usage: Callable[..., dict[str, Any] | None] = import_string("django_ratelimit.core.get_usage")


def evaluation_rate() -> str:
    """The evaluation rate limit per key, e.g. ``"6000/m"``."""
    return str(getattr(settings, "FLAGSHIP_EVALUATION_RATE", DEFAULT_RATE))


class EvaluationRateThrottle(BaseThrottle):
    """Allow ``evaluation_rate()`` requests per API key; others get 429 with ``Retry-After``."""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        """Count the request against its key; refuse it when over the limit."""
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # not a key: the permission check has already refused it
        rate = evaluation_rate()
        if not rate:
            return True  # an empty rate turns the limit off (as for FlagShip's other rates)
        lookup = key.lookup
        usage = get_usage(
            request._request,  # django-ratelimit reads the Django request
            group=GROUP,
            key=lambda _group, _request: lookup,
            rate=rate,
            increment=True,
        )
        if usage is None or (usage["limit"] == 0 and usage["time_left"] == -1):
            return True  # limiting disabled, or the cache failed to count: fail open
        if not usage["should_limit"]:
            return True
        self.retry_after = max(1, int(usage["time_left"]))
        return False

    def wait(self) -> float | None:
        """Seconds until the key's window ends (an integer, at least 1)."""
        return self.retry_after
