"""Rate limits of evaluation and of new stream connections, counted in batches.

What is counted (rates from ``flags.conf``, defaults and sizing in docs/operations.md):

- evaluation (evaluation API, evaluation counts, OFREP) per server key
  (``FLAGSHIP_SERVER_KEY_RATE``), per client key (``FLAGSHIP_CLIENT_KEY_RATE``) and per client key
  and client address (``FLAGSHIP_CLIENT_ADDRESS_RATE``): a client key is public, so one address
  must not use up the key of every browser;
- new stream connections per key (``FLAGSHIP_STREAM_KEY_RATE``) and per client key and client
  address (``FLAGSHIP_STREAM_ADDRESS_RATE``).

Server keys are not limited per address: they are secret, and a customer's backends often leave
through one NAT address.

Windows are fixed and shared by every process through the shared cache
(``flags.delivery.shared_cache``): counter ``<name>:<window>``, e.g.
``evaluation-rate:<lookup>:<window>``. Counting every request in Redis costs a round trip per
request, as much as the rest of a warm evaluation. Instead each process counts locally and adds its
count to the shared counter in batches: when it has counted ``limit / 100`` requests since its last
report, on *every* request once the shared count plus its own is within a batch of the limit, and,
for a key's counters, after a second. Far from the limit a process talks to Redis about once a
second per key; near it, on every request, so the limit is exact where it matters. The overshoot is
bounded by one batch per process (1 % of the limit each). An address's counter is not reported on
time alone: a browser asks a few times a minute, so a timed report would cost nearly every request
of a popular client key a round trip. A process that learns a counter is over its limit refuses it
locally until the window ends (``Retry-After``: the seconds left).

When the cache cannot count (Redis down) requests are allowed: serving flags matters more than
limiting them.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey
from flags import conf
from flags.delivery import shared_cache
from flagship.errors import problem_response

SYNC_SECONDS = 1.0
BATCH_FRACTION = 100
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*$")
CLIENT = str(ApiKey.Kind.CLIENT)
# Local counters kept per process: past this, those of ended windows are dropped.
MAX_COUNTERS = 50_000
# REMOTE_ADDR in these networks is a reverse proxy, a load balancer or a private network: it may
# stand for many clients, so it is not limited per address (its key still is). FlagShip trusts no
# X-Forwarded-For header itself: a server that rewrites REMOTE_ADDR from its trusted proxy
# (uvicorn --proxy-headers) gives the client's address instead.
SHARED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


@lru_cache(maxsize=16)
def parse_rate(rate: str) -> tuple[int, int] | None:
    """``(limit, period in seconds)`` of a rate; ``None`` for an empty or unreadable rate."""
    match = RATE.match(rate)
    if match is None:
        return None
    limit, multiplier, unit = match.groups()
    return int(limit), int(multiplier or 1) * UNITS[unit[0]]


@lru_cache(maxsize=4096)
def _own_address(address: str) -> str | None:
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if any(parsed in network for network in SHARED_NETWORKS):
        return None
    return str(parsed)


def client_address(request: HttpRequest | Request) -> str | None:
    """The address to count a client key's requests under; ``None`` when it stands for many.

    ``REMOTE_ADDR`` as the server set it, unless it is a proxy's, a load balancer's or a private
    network's (``SHARED_NETWORKS``): counting those per address would limit every client behind
    them together.
    """
    address = request.META.get("REMOTE_ADDR")
    return _own_address(address) if isinstance(address, str) and address else None


def shared_count(key: str, amount: int, period: int) -> int | None:
    """Add ``amount`` to the shared counter ``key``; its new total, ``None`` if the cache failed."""
    if shared_cache.add(key, 0, period + 1) is None:
        return None
    return shared_cache.incr(key, amount)


class Counter(NamedTuple):
    """One limit a request counts against."""

    name: str  # the shared counter's name, before ``:<window>``
    rate: str
    timed: bool = True  # also reported once a second (a key), or only per batch (an address)


@dataclass(slots=True)
class _Window:
    window: int
    period: int
    shared: int = 0  # the shared total when this process last reported
    pending: int = 0  # counted here since then
    reported_at: float = 0.0
    blocked: bool = False


def _retry_after(now: float, period: int) -> int:
    return max(1, int(period - now % period))


class BatchedLimiter:
    """Fixed-window counters, reported to the shared cache in batches (module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # wall-clock time: every process must agree on the windows
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def hit(self, counters: Iterable[Counter]) -> int | None:
        """Count one request against ``counters``: ``None`` when allowed, else ``Retry-After``.

        A counter already over its limit refuses the request before any counter counts it (only
        the request that takes a counter over its limit is also counted by the others).
        """
        now = self._clock()
        counted: list[tuple[Counter, int, _Window]] = []
        with self._lock:
            for counter in counters:
                parsed = parse_rate(counter.rate)
                if parsed is None:
                    continue  # this limit is off
                state = self._state(counter.name, parsed[1], now)
                if state.blocked:
                    return _retry_after(now, state.period)
                counted.append((counter, parsed[0], state))
            reports: list[tuple[str, int, _Window, int]] = []
            for counter, limit, state in counted:
                state.pending += 1
                batch = max(1, limit // BATCH_FRACTION)
                if (
                    state.shared + state.pending + batch <= limit
                    and state.pending < batch
                    and not (counter.timed and now - state.reported_at >= SYNC_SECONDS)
                ):
                    continue
                reports.append((counter.name, limit, state, state.pending))
                state.pending, state.reported_at = 0, now
        refused: int | None = None
        for name, limit, state, pending in reports:
            total = shared_count(f"{name}:{state.window}", pending, state.period)
            if total is None:
                continue  # the cache failed to count: fail open
            with self._lock:
                state.shared = max(state.shared, total)
                if total > limit:
                    state.blocked = True
                    refused = max(refused or 0, _retry_after(now, state.period))
        return refused

    def _state(self, name: str, period: int, now: float) -> _Window:
        window = int(now // period)
        state = self._windows.get(name)
        if state is None or state.window != window or state.period != period:
            if len(self._windows) >= MAX_COUNTERS:
                self._forget_ended(now)
            state = self._windows[name] = _Window(window, period, reported_at=now)
        return state

    def _forget_ended(self, now: float) -> None:
        current = {
            name: state
            for name, state in self._windows.items()
            if state.window == int(now // state.period)
        }
        # Still full: drop everything (each counter loses less than a batch).
        self._windows = current if len(current) < MAX_COUNTERS // 2 else {}

    def clear(self) -> None:
        """Forget every local count (tests)."""
        with self._lock:
            self._windows.clear()


limiter = BatchedLimiter()


def evaluation_counters(lookup: str, kind: str, address: str | None) -> tuple[Counter, ...]:
    """The limits an evaluation by the key ``lookup`` (of ``kind``) from ``address`` counts in."""
    if kind != CLIENT:
        return _counters("evaluation", lookup, conf.rate(conf.SERVER_KEY_RATE), None, "")
    return _counters(
        "evaluation",
        lookup,
        conf.rate(conf.CLIENT_KEY_RATE),
        address,
        conf.rate(conf.CLIENT_ADDRESS_RATE),
    )


def stream_counters(lookup: str, kind: str, address: str | None) -> tuple[Counter, ...]:
    """The limits a new stream connection of the key ``lookup`` from ``address`` counts against."""
    address_rate = conf.rate(conf.STREAM_ADDRESS_RATE) if kind == CLIENT else ""
    return _counters("stream", lookup, conf.rate(conf.STREAM_KEY_RATE), address, address_rate)


@lru_cache(maxsize=4096)  # built once per key (and address) and rates, not on every request
def _counters(
    what: str, lookup: str, key_rate: str, address: str | None, address_rate: str
) -> tuple[Counter, ...]:
    key = Counter(f"{what}-rate:{lookup}", key_rate)
    if address is None or not address_rate:
        return (key,)
    return key, Counter(f"{what}-address-rate:{lookup}:{address}", address_rate, timed=False)


def allow(lookup: str, kind: str, address: str | None) -> int | None:
    """Count an evaluation request: ``None`` when allowed, else ``Retry-After`` in seconds."""
    return limiter.hit(evaluation_counters(lookup, kind, address))


def allow_stream(lookup: str, kind: str, address: str | None) -> int | None:
    """Count a new stream connection: ``None`` when allowed, else ``Retry-After`` in seconds."""
    return limiter.hit(stream_counters(lookup, kind, address))


def rate_limited(request: HttpRequest, retry_after: int) -> HttpResponse:
    """429 problem details with ``Retry-After``, as DRF's throttles answer (``rate_limited``)."""
    return problem_response(
        request,
        status=429,
        code="rate_limited",
        detail=str(Throttled(wait=retry_after).detail),
        headers={"Retry-After": str(retry_after)},
    )


class EvaluationRateThrottle(BaseThrottle):
    """Evaluation limits per key and per client address; over one, 429 with ``Retry-After``."""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        """Count the request against its key (and address); refuse it when over a limit."""
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # not a key: the permission check has already refused it
        self.retry_after = allow(key.lookup, key.kind, client_address(request))
        return self.retry_after is None

    def wait(self) -> float | None:
        """Seconds until the window ends (an integer, at least 1)."""
        return self.retry_after
