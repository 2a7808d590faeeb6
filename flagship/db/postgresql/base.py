"""Django's PostgreSQL backend behind the database circuit breaker (``flagship.breakers``).

``DATABASES["default"]["ENGINE"] = "flagship.db.postgresql"`` (set by the settings for every
``postgres://`` URL). It changes one thing: how a connection is obtained.

- While the breaker is open, asking for a connection fails at once
  (``OperationalError: database unavailable``), so no request waits on a pool or a connect timeout;
  the callers answer from memory or with 503 as they do for any database error.
- With the pool, a connection is awaited in slices of ``POOL_SLICE_SECONDS``. When a slice ends
  without a connection, one thread connects directly (``PROBE_TIMEOUT``): if that fails too, the
  database is down, the breaker opens and every waiter fails at once; if it succeeds, the pool is
  only busy and the wait goes on, up to ``DATABASE_POOL_TIMEOUT`` as before (that answer stands
  for ``CONFIRMED_SECONDS``, so a busy pool costs one direct connection a second, not one per
  waiter and slice).
- Without the pool, a failed connection opens the breaker.

The breaker's background probe connects directly too, and on success prunes the pool's dead
connections (``pool.check()``) before closing the breaker.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql import base

from flags import conf
from flagship import breakers, metrics

POOL_SLICE_SECONDS = 0.2
UNAVAILABLE = "database unavailable (circuit breaker open)"
# Connection parameters that are psycopg objects, not libpq's: a direct probe leaves them out.
NOT_CONNINFO = ("cursor_factory", "context", "prepare_threshold", "server_side_binding")

# A busy pool (every connection in use) makes each waiter's slice end empty: one direct
# connection that succeeded answers for all of them for this long.
CONFIRMED_SECONDS = 1.0
_confirm_lock = threading.Lock()
_confirmed_at = -CONFIRMED_SECONDS


def _direct_parameters(wrapper: Any) -> dict[str, Any]:
    parameters = {
        name: value
        for name, value in wrapper.get_connection_params().items()
        if name not in NOT_CONNINFO
    }
    parameters["connect_timeout"] = max(1, round(breakers.PROBE_TIMEOUT))
    return parameters


def _connect_directly(wrapper: Any) -> None:
    """Open a connection outside the pool and run ``SELECT 1``; raise when the server is down."""
    with psycopg.connect(**_direct_parameters(wrapper), autocommit=True) as connection:
        connection.execute("SELECT 1")


def probe() -> None:
    """The breaker's probe: connect directly, then drop the pool's dead connections."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    _connect_directly(wrapper)
    pool = getattr(wrapper, "pool", None)
    if pool is not None:
        pool.check()


def _unavailable() -> psycopg.OperationalError:
    return psycopg.OperationalError(UNAVAILABLE)


class DatabaseWrapper(base.DatabaseWrapper):
    """PostgreSQL whose connections are obtained through the breaker (and whose queries count)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Django's wrapper, with the statements timed while metrics are on."""
        super().__init__(*args, **kwargs)
        if conf.metrics_enabled():
            self.execute_wrappers.append(_Timed(self.alias, self.vendor))

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        """A connection, unless the breaker is open (then fail at once)."""
        try:
            return self._new_connection(conn_params)
        except psycopg.Error:
            if conf.metrics_enabled():
                metrics.db_connection_errors.labels(self.alias, self.vendor).inc()
            raise

    def _new_connection(self, conn_params: dict[str, Any]) -> Any:
        if self.alias != DEFAULT_DB_ALIAS:
            return super().get_new_connection(conn_params)
        if not breakers.database.available():
            raise _unavailable()
        pool = self.pool
        if pool is not None:
            _guard(pool, self)
        try:
            return super().get_new_connection(conn_params)
        except psycopg.OperationalError as error:
            if pool is None:
                breakers.database.failed(error)
            raise


class _Timed:
    """An execute wrapper: ``django_db_execute_total``, ``_errors_total``, ``_query_duration``."""

    def __init__(self, alias: str, vendor: str) -> None:
        self.queries = metrics.db_queries.labels(alias, vendor)
        self.duration = metrics.db_duration.labels(alias, vendor)
        self.alias, self.vendor = alias, vendor

    def __call__(
        self, execute: Any, sql: Any, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        started = time.perf_counter()
        metrics.bump(self.queries)
        try:
            return execute(sql, params, many, context)
        except Exception as error:
            metrics.bump(
                metrics.child(metrics.db_errors, self.alias, self.vendor, type(error).__name__)
            )
            raise
        finally:
            metrics.observe(self.duration, time.perf_counter() - started)


def _guard(pool: Any, wrapper: DatabaseWrapper) -> None:
    """Replace the pool's ``getconn`` (once) by the sliced wait of the module docstring."""
    if getattr(pool, "_flagship_guarded", False):
        return
    original = pool.getconn

    def getconn(timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (pool.timeout if timeout is None else timeout)
        while True:
            if not breakers.database.available():
                raise _unavailable()
            remaining = deadline - time.monotonic()
            try:
                return original(timeout=max(0.001, min(POOL_SLICE_SECONDS, remaining)))
            except psycopg.OperationalError:  # PoolTimeout is one
                if time.monotonic() >= deadline:
                    raise
            if not _reachable(wrapper):
                raise _unavailable()

    pool.getconn = getconn
    pool._flagship_guarded = True


def _reachable(wrapper: DatabaseWrapper) -> bool:
    """Whether the server accepts a direct connection; opens the breaker when it does not.

    One thread probes at a time; the others wait for its answer (the breaker) instead of each
    opening a connection of its own.
    """
    global _confirmed_at  # noqa: PLW0603  # one answer for the process, guarded by the lock
    with _confirm_lock:
        if not breakers.database.available():
            return False
        if time.monotonic() - _confirmed_at < CONFIRMED_SECONDS:
            return True  # a busy pool: the server answered a moment ago, no need to ask again
        try:
            _connect_directly(wrapper)
        except psycopg.Error as error:
            breakers.database.failed(error)
            return False
        _confirmed_at = time.monotonic()
    return True
