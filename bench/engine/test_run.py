"""Smoke test of the engine benchmark: it runs and engine and baseline agree (no timing)."""

from __future__ import annotations

import pytest

from bench.engine.run import main


def test_engine_benchmark__quick_run__verifies_and_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--quick"]) == 0
    output = capsys.readouterr().out
    assert "| W4" in output
    assert "all agree" in output
