"""``bench.server.request_profile``: own time summed by where code lives; the child's figures."""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import subprocess
import sys
from pathlib import Path

import pytest

from bench.server import request_profile

ROOT = Path(__file__).resolve().parents[2]


class RecordedStats:
    """A profile as pstats holds it (``stats.stats``), with times set by hand."""

    def __init__(self, stats: dict[object, object]) -> None:
        self.stats = stats


ENGINE = ("/x/flagship_sdk/engine/fake.py", 1, "engine")
LOGS = ("/x/flagship/logs.py", 1, "logs")
SORTED = ("~", 0, "<built-in method builtins.sorted>")


def test_shares__a_builtins_time__goes_to_its_callers_groups_in_proportion() -> None:
    # Given a profile: the engine and the access line each call sorted, which spent 8 ms for the
    # engine's 200 calls and 2 ms for the access line's 50 (own time 1 ms and 0.5 ms besides)
    stats = RecordedStats(
        {
            ENGINE: (1, 1, 0.001, 0.009, {}),
            LOGS: (1, 1, 0.0005, 0.0025, {}),
            SORTED: (
                250,
                250,
                0.010,
                0.010,
                {ENGINE: (200, 200, 0.008, 0.008), LOGS: (50, 50, 0.002, 0.002)},
            ),
        }
    )

    # When the own time is summed by group
    totals = request_profile.shares(stats)  # type: ignore[arg-type]  # pstats' table, by hand

    # Then sorted's 10 ms went to its callers' groups, in proportion to the time each spent in it
    assert totals == {
        "engine (flagship_sdk)": pytest.approx(0.009),
        "access line": pytest.approx(0.0025),
    }


def test_shares__a_real_profile__every_second_in_some_group() -> None:
    # Given a real profile of code in two groups calling the same built-in
    namespace: dict[str, object] = {}
    engine = "def engine(items):\n    for _ in range(200):\n        sorted(items)\n"
    logs = "def logs(items):\n    for _ in range(50):\n        sorted(items)\n"
    exec(compile(engine, "/x/flagship_sdk/engine/fake.py", "exec"), namespace)  # noqa: S102
    exec(compile(logs, "/x/flagship/logs.py", "exec"), namespace)  # noqa: S102
    items = list(range(2000, 0, -1))
    profiler = cProfile.Profile()
    profiler.enable()
    namespace["engine"](items)  # type: ignore[operator]
    namespace["logs"](items)  # type: ignore[operator]
    profiler.disable()

    # When the own time is summed by group
    totals = request_profile.shares(pstats.Stats(profiler))

    # Then both groups got time (their ratio is the machine's: timed, so not asserted)
    assert totals["engine (flagship_sdk)"] > 0
    assert totals["access line"] > 0


def test_group_of__first_matching_place() -> None:
    assert request_profile.group_of("/v/flagship_sdk/engine/ruleset.py") == "engine (flagship_sdk)"
    assert request_profile.group_of("<flagship-rule>") == "engine (flagship_sdk)"
    assert request_profile.group_of("/r/flags/evaluation/tally.py").startswith("counting")
    assert request_profile.group_of("/r/flags/evaluation/views.py").startswith("evaluation views")
    assert request_profile.group_of("/lib/python3.12/uuid.py") == request_profile.OTHER


def test_child__the_bare_ceiling__timed_and_profiled() -> None:
    # When the child profiles 200 requests to the bare Django ceiling
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(  # our own argv
        [
            sys.executable,
            "-m",
            "bench.server.request_profile",
            "--child",
            "GET /ceiling",
            "200",
            "no-key",
            "bare",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    # Then it printed its timings and shares that add up to the whole
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < figures["median_us"] <= figures["p99_us"] <= figures["max_us"]
    assert figures["collections"] >= 0
    assert abs(sum(figures["shares"].values()) - 1) < 1e-6
    assert figures["shares"]["Django"] > 0.3
