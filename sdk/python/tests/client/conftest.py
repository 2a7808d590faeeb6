"""Fixtures of the client's tests: a fake server, fast timings, clients closed after each test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flagship_sdk import ClientStatus, FlagShipClient
from flagship_sdk.client import client as client_module
from flagship_sdk.client import sse

from .fake_server import SERVER_KEY, FakeServer

ClientFactory = Callable[..., FlagShipClient]


@pytest.fixture(autouse=True)
def fast_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short backoff and a short stream silence limit, so failures heal within milliseconds."""
    monkeypatch.setattr(client_module, "BASE_BACKOFF", 0.02)
    monkeypatch.setattr(sse, "SILENCE_LIMIT", 2.0)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def make_client(server: FakeServer) -> Iterator[ClientFactory]:
    clients: list[FlagShipClient] = []

    def make(**options: Any) -> FlagShipClient:
        settings: dict[str, Any] = {
            "timeout": 0.5,
            "max_backoff": 0.1,
            "send_evaluation_counts": False,
        }
        settings.update(options)
        base_url = settings.pop("base_url", server.url)
        sdk_key = settings.pop("sdk_key", SERVER_KEY)
        created = FlagShipClient(base_url, sdk_key, **settings)
        clients.append(created)
        return created

    yield make
    for created in clients:
        created.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        pause.wait(0.005)


def sdk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("flagship-sdk-")]


def status_of(client: FlagShipClient) -> ClientStatus:
    """The client's status (a call, so that type checkers do not narrow it between reads)."""
    return client.status
