"""A new gunicorn worker warms itself up, and never fails to start because a dependency is down."""

from __future__ import annotations

import gc
import logging
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connections

from flagship import warmup

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """What a warm-up froze goes back to the collector: the tests after these collect it."""
    yield
    gc.unfreeze()


def test_warm_up__freezes_what_start_up_allocated(db: None) -> None:
    # Given a process whose objects the collector tracks
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    # When it warms up
    warmup.warm_up()

    # Then its objects are frozen: a full collection walks what came after them only
    frozen = gc.get_freeze_count()
    assert frozen > 10_000
    assert len(gc.get_objects(generation=2)) < frozen // 10


def test_warm_up__opens_the_database_connection(db: None) -> None:
    warmup.warm_up()  # nothing raised; the connection went back (closed or to the pool)


def test_warm_up__database_down__logged_not_raised(
    db: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse() -> None:
        raise DatabaseError("connection refused")

    with (
        monkeypatch.context() as patched,
        caplog.at_level(logging.WARNING, logger="flagship.warmup"),
    ):
        patched.setattr(connections["default"], "ensure_connection", refuse)
        warmup.warm_up()
    assert "warmup.database_unavailable" in caplog.messages


def test_gunicorn_config__post_worker_init_warms_up(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[Any] = []
    monkeypatch.setattr(warmup, "warm_up", lambda: called.append(True))
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    config["post_worker_init"](object())
    assert called == [True]
    assert config["max_requests"] >= 100_000  # recycling is rare: a recycled worker starts cold
