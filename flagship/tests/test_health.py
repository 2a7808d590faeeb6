"""/healthz, /readyz and `manage.py wait_for_db` (backoff; severed and restored database)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from flagship import db_wait, health
from flagship.faults import FaultProxy


@pytest.fixture(autouse=True)
def _forget_migrated() -> Iterator[None]:
    health._migrated = False
    yield
    health._migrated = False


def test_healthz__always_alive_without_touching_dependencies(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "check_database", lambda: pytest.fail("healthz checked the DB"))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz__ready_with_the_database_and_migrations(client: Client, db: None) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"


def test_readyz__pending_migrations_are_not_ready(
    client: Client, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("m", False)])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "pending: 1 migration(s)"


def test_readyz__unreachable_database_is_not_ready(
    client: Client, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "check_database", lambda: "unavailable: OperationalError")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "unavailable: OperationalError"
    assert body["checks"]["migrations"] == "unknown"


def test_probes_are_get_only(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


def test_wait_for_database__backs_off_exponentially_with_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures = iter([OSError("refused")] * 5)

    def connect(alias: str) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    monkeypatch.setattr(db_wait, "try_connect", connect)
    pauses: list[float] = []
    attempts = db_wait.wait_for_database(
        timeout=60, initial_delay=0.1, max_delay=0.8, sleep=pauses.append
    )
    assert attempts == 6
    ceilings = [0.1, 0.2, 0.4, 0.8, 0.8]
    assert all(c / 2 <= p <= c for p, c in zip(pauses, ceilings, strict=True))


def test_wait_for_database__times_out_with_the_last_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def connect(alias: str) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(db_wait, "try_connect", connect)
    with pytest.raises(db_wait.DatabaseWaitTimeoutError, match="connection refused"):
        db_wait.wait_for_database(timeout=0.2, initial_delay=0.05)


@pytest.fixture
def proxied_alias(django_db_blocker: Any) -> Iterator[tuple[str, FaultProxy]]:
    """A database alias ``faulty`` reaching the PostgreSQL server through a fault proxy."""
    default = connections["default"].settings_dict
    with FaultProxy(default.get("HOST") or "127.0.0.1", int(default.get("PORT") or 5432)) as proxy:
        settings = {
            **default,
            "HOST": proxy.host,
            "PORT": str(proxy.port),
            "NAME": "postgres",
            "OPTIONS": {k: v for k, v in default.get("OPTIONS", {}).items() if k != "pool"},
        }
        connections.settings["faulty"] = settings
        try:
            with django_db_blocker.unblock():
                yield "faulty", proxy
        finally:
            connections["faulty"].close()
            del connections["faulty"]
            del connections.settings["faulty"]


@pytest.mark.requires_postgres
def test_wait_for_db__severed_times_out_then_restored_succeeds(
    proxied_alias: tuple[str, FaultProxy],
) -> None:
    alias, proxy = proxied_alias
    proxy.sever()
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"did not answer within 0\.5 s after \d+ attempts"):
        call_command("wait_for_db", "--timeout", "0.5", "--database", alias, stderr=err)
    assert "Database not ready (attempt 1" in err.getvalue()
    proxy.restore()
    out = io.StringIO()
    call_command("wait_for_db", "--timeout", "5", "--database", alias, stdout=out)
    assert "Database ready" in out.getvalue()
