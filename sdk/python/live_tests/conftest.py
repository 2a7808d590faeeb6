"""Fixtures of the live tests: a real FlagShip per test, from a template migrated once per session.

``flagship`` starts uvicorn on a free port against a fresh copy of the template database and
always kills it at teardown; ``proxy_url`` puts a ``CountingProxy`` in front. The SDK's stream
silence limit is lowered to a few heartbeats so a cut stream is noticed quickly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import HEARTBEAT, LiveServer, build_template

TEMPLATE = "template.sqlite3"


@pytest.fixture(scope="session")
def live_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A migrated, seeded SQLite file and its secrets (built once per session)."""
    directory = tmp_path_factory.mktemp("flagship-live")
    database = directory / TEMPLATE
    return database, build_template(database)


@pytest.fixture
def stopped_flagship(
    live_template: tuple[Path, dict[str, str]], tmp_path: Path
) -> Iterator[LiveServer]:
    """A FlagShip on its own copy of the template, not started yet (killed at teardown)."""
    template, secrets = live_template
    database = tmp_path / "flagship.sqlite3"
    shutil.copyfile(template, database)
    server = LiveServer(database, secrets, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def flagship(stopped_flagship: LiveServer) -> LiveServer:
    """A running FlagShip (see ``stopped_flagship``)."""
    stopped_flagship.start()
    return stopped_flagship


@pytest.fixture(autouse=True)
def _quick_stream_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK treats 3 heartbeats of silence as a dead stream (the server beats every 1 s)."""
    sse = pytest.importorskip("flagship_sdk.client.sse")
    monkeypatch.setattr(sse, "SILENCE_LIMIT", 3 * HEARTBEAT)
