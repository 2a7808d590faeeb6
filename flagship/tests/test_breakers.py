"""Circuit breakers: opened by the first failure, closed by the background probe, then hooks."""

from __future__ import annotations

import threading

import pytest
from django.test import Client

from flagship import breakers
from flagship.faults import wait_until


class Dependency:
    """A fake dependency's probe: fails while ``down``; counts the probes."""

    def __init__(self) -> None:
        self.down = True
        self.probes = 0

    def probe(self) -> None:
        self.probes += 1
        if self.down:
            raise ConnectionRefusedError("down")


def test_breaker__first_failure_opens__probe_closes__recovery_hooks_run() -> None:
    dependency = Dependency()
    breaker = breakers.Breaker("fake", dependency.probe)
    recovered = threading.Event()
    breaker.on_recovery(recovered.set)
    assert breaker.available()

    breaker.failed(ConnectionRefusedError("refused"))

    assert not breaker.available()
    assert breaker.opened == 1
    assert "refused" in breaker.last_error
    assert wait_until(lambda: dependency.probes >= 2)  # probed in the background while down
    assert not breaker.available()
    breaker.failed(ConnectionRefusedError("again"))  # already open: nothing new
    assert breaker.opened == 1

    dependency.down = False
    assert recovered.wait(5)
    assert breaker.available()
    assert breaker.outage_seconds() == 0.0


def test_breaker__a_failing_recovery_hook_does_not_stop_the_others() -> None:
    dependency = Dependency()
    dependency.down = False
    breaker = breakers.Breaker("fake", dependency.probe)
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("hook failed")

    breaker.on_recovery(broken)
    breaker.on_recovery(lambda: ran.append("second"))
    breaker.failed("refused")
    assert wait_until(lambda: ran == ["second"])


def test_breaker__inherited_open_across_a_fork__the_child_probes_for_itself() -> None:
    dependency = Dependency()
    breaker = breakers.Breaker("fake", dependency.probe)
    breaker.failed("refused")
    assert wait_until(lambda: dependency.probes >= 1)
    breaker._prober_pid = -1  # as seen from a child: the parent's probe thread did not survive
    probes = dependency.probes

    assert not breaker.available()  # starts this process's probe

    assert wait_until(lambda: dependency.probes > probes)
    dependency.down = False
    assert wait_until(breaker.available)


@pytest.mark.parametrize(
    ("database", "redis", "expected"),
    [
        (False, False, ""),
        (True, False, "database"),
        (False, True, "redis"),
        (True, True, "database,redis"),
    ],
)
def test_degraded__names_the_open_breakers(
    monkeypatch: pytest.MonkeyPatch, database: bool, redis: bool, expected: str
) -> None:
    monkeypatch.setattr(breakers.database, "_open", database)
    monkeypatch.setattr(breakers.redis_breaker, "_open", redis)
    monkeypatch.setattr(breakers.database, "_prober_pid", -1)
    monkeypatch.setattr(breakers.redis_breaker, "_prober_pid", -1)
    monkeypatch.setattr(breakers.Breaker, "_start_probe", lambda self: None)

    assert breakers.degraded() == expected


def test_degraded_header__on_every_response_while_a_breaker_is_open(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "FlagShip-Degraded" not in client.get("/healthz")
    monkeypatch.setattr(breakers.redis_breaker, "_open", True)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["FlagShip-Degraded"] == "redis"
