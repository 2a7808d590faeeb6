"""The PostgreSQL backend behind the breaker: a busy pool is waited for, a dead server is not."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connections
from psycopg_pool import PoolTimeout

from flagship import breakers
from flagship.db.postgresql import base

pytestmark = pytest.mark.requires_postgres


def test_busy_pool__server_up__waits_its_timeout__one_direct_check__breaker_closed(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the pool with every connection taken (the server answers)
    wrapper = connections["default"]
    pool = wrapper.pool  # type: ignore[attr-defined]  # the PostgreSQL backend's
    assert pool is not None
    base._guard(pool, wrapper)  # type: ignore[arg-type]  # the test's connection is ours
    checks: list[float] = []
    real = base._connect_directly

    def counted(target: Any) -> None:
        checks.append(time.monotonic())
        real(target)

    monkeypatch.setattr(base, "_connect_directly", counted)
    monkeypatch.setattr(base, "_confirmed_at", -base.CONFIRMED_SECONDS)
    taken = []
    try:
        while True:
            taken.append(pool.getconn(timeout=0.05))
    except PoolTimeout:
        pass
    try:
        # When a request waits 0.7 s for a connection
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            pool.getconn(timeout=0.7)
        waited = time.monotonic() - started
    finally:
        for connection in taken:
            pool.putconn(connection)

    # Then it waited the whole timeout, asked the server once, and the breaker stayed closed
    assert waited >= 0.65
    assert len(checks) == 1
    assert breakers.database.available()


def test_guarded_pool__breaker_open__fails_at_once(db: None) -> None:
    wrapper = connections["default"]
    pool = wrapper.pool  # type: ignore[attr-defined]  # the PostgreSQL backend's
    base._guard(pool, wrapper)  # type: ignore[arg-type]  # the test's connection is ours
    breakers.database._open = True
    breakers.database._prober_pid = -1
    try:
        started = time.monotonic()
        with pytest.raises(Exception, match="circuit breaker open"):
            pool.getconn(timeout=5)
        assert time.monotonic() - started < 0.1
    finally:
        breakers.reset()
