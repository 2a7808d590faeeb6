"""Per-key rate limiting of evaluation, counted in batches so a request rarely touches Redis.

The rate is ``settings.FLAGSHIP_EVALUATION_RATE`` (``"6000/m"`` by default; ``N/s``, ``N/m``,
``N/h``, ``N/d`` or ``N/<k><unit>`` such as ``100/5m``; empty turns the limit off). Windows are
fixed and shared by every process through the shared cache (``flags.rulesets``): counter
``evaluation-rate:<lookup>:<window>``.

Counting every request in Redis costs a round trip per request, as much as the rest of a warm
evaluation. Instead each process counts locally and adds its count to the shared counter in
batches: when it has counted ``limit / 100`` requests since its last report, after a second, and
on *every* request once the shared count plus its own is within a batch of the limit. Far from the
limit a process talks to Redis about once a second per key; near it, on every request, so the
limit is exact where it matters. The overshoot is bounded by one batch per process (1 % of the
limit each). A process that learns its key is over the limit refuses it locally until the window
ends (``Retry-After``: the seconds left).

When the cache cannot count (Redis down) evaluation fails open: serving flags matters more than
limiting them.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey
from flags import rulesets

DEFAULT_RATE = "6000/m"
SYNC_SECONDS = 1.0
BATCH_FRACTION = 100
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*$")


def evaluation_rate() -> str:
    """The evaluation rate limit per key, e.g. ``"6000/m"``."""
    return str(getattr(settings, "FLAGSHIP_EVALUATION_RATE", DEFAULT_RATE))


@lru_cache(maxsize=16)
def parse_rate(rate: str) -> tuple[int, int] | None:
    """``(limit, period in seconds)`` of a rate; ``None`` for an empty or unreadable rate."""
    match = RATE.match(rate)
    if match is None:
        return None
    limit, multiplier, unit = match.groups()
    return int(limit), int(multiplier or 1) * UNITS[unit[0]]


def shared_count(key: str, amount: int, period: int) -> int | None:
    """Add ``amount`` to the shared counter ``key``; its new total, ``None`` if the cache failed."""
    if rulesets.add(key, 0, period + 1) is None:
        return None
    return rulesets.incr(key, amount)


@dataclass(slots=True)
class _Window:
    window: int
    shared: int = 0  # the shared total when this process last reported
    pending: int = 0  # counted here since then
    reported_at: float = 0.0
    blocked: bool = False


class BatchedLimiter:
    """Fixed-window counters per key, reported to the shared cache in batches (module docstring)."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def hit(self, lookup: str, rate: str) -> int | None:
        """Count one request of ``lookup``: ``None`` when allowed, else seconds until allowed."""
        parsed = parse_rate(rate)
        if parsed is None:
            return None
        limit, period = parsed
        now = time.time()
        window = int(now // period)
        retry_after = max(1, int(period - now % period))
        with self._lock:
            state = self._windows.get(lookup)
            if state is None or state.window != window:
                if len(self._windows) > 10_000:  # stale keys of old windows
                    self._windows.clear()
                state = self._windows[lookup] = _Window(window, reported_at=now)
            if state.blocked:
                return retry_after
            state.pending += 1
            batch = max(1, limit // BATCH_FRACTION)
            if (
                state.shared + state.pending + batch <= limit
                and state.pending < batch
                and now - state.reported_at < SYNC_SECONDS
            ):
                return None
            pending, state.pending, state.reported_at = state.pending, 0, now
        total = shared_count(f"evaluation-rate:{lookup}:{window}", pending, period)
        if total is None:
            return None  # the cache failed to count: fail open
        with self._lock:
            state.shared = max(state.shared, total)
            if total > limit:
                state.blocked = True
                return retry_after
        return None

    def clear(self) -> None:
        """Forget every local count (tests)."""
        with self._lock:
            self._windows.clear()


limiter = BatchedLimiter()


def allow(lookup: str) -> int | None:
    """Count a request of the key ``lookup``: ``None`` when allowed, else ``Retry-After``."""
    rate = evaluation_rate()
    if not rate:
        return None  # an empty rate turns the limit off (as for FlagShip's other rates)
    return limiter.hit(lookup, rate)


class EvaluationRateThrottle(BaseThrottle):
    """Allow ``evaluation_rate()`` requests per API key; others get 429 with ``Retry-After``."""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        """Count the request against its key; refuse it when over the limit."""
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # not a key: the permission check has already refused it
        self.retry_after = allow(key.lookup)
        return self.retry_after is None

    def wait(self) -> float | None:
        """Seconds until the key's window ends (an integer, at least 1)."""
        return self.retry_after
