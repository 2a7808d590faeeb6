"""Circuit breakers for PostgreSQL and Redis: after the first failure, nothing waits on them.

A breaker is *closed* while its dependency answers. The first failure a caller reports opens it;
from then on callers ask :meth:`Breaker.available` (an attribute read) and skip the dependency at
once, serving what the process holds in memory (compiled rulesets, versions, key essentials) or
answering 503. No request waits for a connection, a pool or a socket timeout while a breaker is
open. One daemon thread per open breaker probes the dependency in the background (a fresh
connection with a short timeout, every ``PROBE_SECONDS`` with jitter, backing off to
``MAX_PROBE_SECONDS``); its first success closes the breaker and runs the recovery hooks
(versions reconciled, subscriptions re-read), so recovery needs no restart and no request.

Breakers are per process (each gunicorn worker learns of an outage from its own first failure)
and survive a fork: a child that inherits an open breaker starts its own probe.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable

import redis
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from flags import conf
from flagship.middleware import HookMiddleware

logger = logging.getLogger(__name__)

PROBE_SECONDS = 0.25
MAX_PROBE_SECONDS = 2.0
# A probe connection gives up after this long: a dependency that does not answer within it is
# down as far as evaluation is concerned.
PROBE_TIMEOUT = 1.0


class Breaker:
    """One dependency's breaker: ``available`` until :meth:`failed`, probed back to health."""

    def __init__(self, name: str, probe: Callable[[], None]) -> None:
        self.name = name
        self._probe = probe
        self._lock = threading.Lock()
        self._open = False
        self._opened_at = 0.0
        self._prober_pid = 0
        self._recovery: list[Callable[[], None]] = []
        self.last_error = ""
        self.opened = 0  # how many times it opened (tests, metrics)

    # --- Reading ---------------------------------------------------------------------------------
    def available(self) -> bool:
        """Whether the dependency may be used now (``False`` while the breaker is open)."""
        if not self._open:
            return True
        if self._prober_pid != os.getpid():
            self._start_probe()  # inherited open across a fork: this process probes for itself
        return False

    @property
    def is_open(self) -> bool:
        """Whether the breaker is open (the dependency is skipped)."""
        return self._open

    def outage_seconds(self) -> float:
        """How long the breaker has been open (0 when closed)."""
        return time.monotonic() - self._opened_at if self._open else 0.0

    # --- Reporting -------------------------------------------------------------------------------
    def failed(self, error: BaseException | str) -> None:
        """A call to the dependency failed for want of the dependency: open the breaker."""
        with self._lock:
            if self._open:
                return
            self._open = True
            self._opened_at = time.monotonic()
            self.last_error = error if isinstance(error, str) else repr(error)
            self.opened += 1
        logger.warning("breaker.opened", extra={"dependency": self.name, "error": self.last_error})
        self._start_probe()

    def on_recovery(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (in the probe's thread) each time the breaker closes after an outage."""
        if hook not in self._recovery:
            self._recovery.append(hook)

    def reset(self) -> None:
        """Close the breaker without probing or recovery hooks (tests, configuration changes)."""
        with self._lock:
            self._open = False
            self._prober_pid = 0

    def probe_now(self) -> bool:
        """Probe once in this thread; close the breaker on success. Whether it answered."""
        try:
            self._probe()
        except Exception as error:  # any failure means "still down"
            self.last_error = repr(error)
            return False
        self._close()
        return True

    # --- The probe -------------------------------------------------------------------------------
    def _start_probe(self) -> None:
        with self._lock:
            if not self._open or self._prober_pid == os.getpid():
                return
            self._prober_pid = os.getpid()
        threading.Thread(
            target=self._probe_until_closed, name=f"flagship-breaker-{self.name}", daemon=True
        ).start()

    def _probe_until_closed(self) -> None:
        delay = PROBE_SECONDS
        while self._probing():
            time.sleep(random.uniform(delay / 2, delay))  # noqa: S311  # jitter, not crypto
            if not self._probing() or self.probe_now():
                return
            delay = min(delay * 2, MAX_PROBE_SECONDS)

    def _probing(self) -> bool:
        """Whether this process's probe should go on (open, and not reset meanwhile)."""
        return self._open and self._prober_pid == os.getpid()

    def _close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._prober_pid = 0
            outage = time.monotonic() - self._opened_at
        logger.info(
            "breaker.closed", extra={"dependency": self.name, "outage_seconds": round(outage, 3)}
        )
        for hook in list(self._recovery):
            try:
                hook()
            except Exception:  # a recovery hook must not stop the others
                logger.exception("breaker.recovery_failed", extra={"dependency": self.name})


def _probe_database() -> None:
    from flagship.db.postgresql import base  # noqa: PLC0415  # the backend imports this module

    base.probe()


def _probe_redis() -> None:
    url = conf.redis_url()
    if not url:
        return
    client = redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


database = Breaker("database", _probe_database)
redis_breaker = Breaker("redis", _probe_redis)
ALL = (database, redis_breaker)


def degraded() -> str:
    """The dependencies whose breakers are open, comma-separated (``""`` when none)."""
    if not (database.is_open or redis_breaker.is_open):
        return ""
    return ",".join(breaker.name for breaker in ALL if breaker.is_open)


def reset() -> None:
    """Close every breaker (tests)."""
    for breaker in ALL:
        breaker.reset()


HEADER = "FlagShip-Degraded"


class DegradedHeaderMiddleware(HookMiddleware):
    """Mark every response served while a breaker is open: ``FlagShip-Degraded: database,redis``.

    Such a response came from what the process holds in memory (the last ruleset it compiled, the
    versions and keys it last saw), not from a fresh look at the dependencies, so an operator (or a
    client) can tell. Costs two attribute reads per request when nothing is down.
    """

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Add the header when a dependency is down."""
        down = degraded()
        if down:
            response[HEADER] = down
        return response
