"""The required_services plugin: tests that need a missing service are skipped loudly, or fail
when required.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection

from flagship.tests import required_services as testing

ROOT = Path(__file__).resolve().parents[2]


def absent() -> str | None:
    return "it is not installed"


def present() -> str | None:
    return None


GADGET = testing.Service("requires_gadget", "Gadget", "install the gadget", absent)


def test_need__service_present__test_goes_on() -> None:
    service = testing.Service("requires_here", "Here", "nothing", present)

    testing.need(service, pytest.Stash(), "x.py::test")  # no skip, no failure


def test_need__service_missing__skipped_with_reason_and_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(testing.REQUIRE_VARIABLE, raising=False)

    with pytest.raises(pytest.skip.Exception, match="needs Gadget: it is not installed") as raised:
        testing.need(GADGET, pytest.Stash(), "x.py::test_one")

    assert "install the gadget" in str(raised.value)


def test_need__service_missing_but_required__fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(testing.REQUIRE_VARIABLE, "1")

    with pytest.raises(pytest.fail.Exception, match="Gadget is required"):
        testing.need(GADGET, pytest.Stash(), "x.py::test_one")


def test_postgres_missing__matches_the_test_database() -> None:
    reason = testing.postgres_missing()

    assert (reason is None) == (connection.vendor == "postgresql")


def test_redis_missing__unset_or_unreachable__says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert testing.redis_missing() == "REDIS_URL is not set"

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reason = testing.redis_missing()
    assert reason is not None
    assert reason.startswith("Redis at 127.0.0.1:1 does not answer")


@pytest.mark.requires_redis
def test_redis_missing__configured_redis__answers() -> None:
    assert testing.redis_missing() is None


def test_chromium_path__configured__used_when_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(testing.CHROMIUM_VARIABLE, sys.executable)
    assert testing.chromium_path() == sys.executable
    assert testing.chromium_missing() is None

    monkeypatch.setenv(testing.CHROMIUM_VARIABLE, "/no/such/chromium")
    assert testing.chromium_path() is None
    assert (
        testing.chromium_missing()
        == f"{testing.CHROMIUM_VARIABLE}=/no/such/chromium is not an executable"
    )


def test_chromium_path__nothing_on_path__missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(testing.CHROMIUM_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")

    assert testing.chromium_path() is None
    assert testing.chromium_missing() == "no chromium executable on PATH"


def test_newman_missing__no_node__says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    assert testing.newman_missing() == "no node executable on PATH"


def test_newman_missing__not_installed__names_the_missing_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given Node.js (any executable named node) but no npm ci in tools/postman
    (tmp_path / "node").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(testing, "NEWMAN", testing.REPOSITORY / "no" / "such" / "newman")

    assert testing.newman_missing() == "newman is not installed (no/such/newman is missing)"


def run_pytest(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run pytest with the plugin on a small suite needing a browser that is not there."""
    (tmp_path / "test_needs.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.requires_browser
            def test_marked():
                pass

            def test_fixture(chromium_executable):
                pass

            def test_plain():
                pass
            """
        )
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "flagship.settings",
        "DJANGO_ENV": "test",
        testing.CHROMIUM_VARIABLE: "/no/such/chromium",
        **variables,
    }
    environment.pop(testing.REQUIRE_VARIABLE, None)
    environment.update(variables)
    return subprocess.run(  # noqa: S603  # our own interpreter running pytest
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "flagship.tests.required_services",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "-q",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plugin__browser_missing__skipped_and_listed_loudly(tmp_path: Path) -> None:
    result = run_pytest(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 2 skipped" in result.stdout
    assert "2 tests NOT RUN: services missing" in result.stdout
    assert "Chromium: 2 tests skipped because FLAGSHIP_CHROMIUM=/no/such/chromium" in result.stdout
    assert "test_needs.py::test_marked" in result.stdout


def test_plugin__browser_missing_but_required__fails(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, FLAGSHIP_REQUIRE_SERVICES="1")

    assert result.returncode == 1
    assert "1 passed, 2 errors" in result.stdout
    assert "Chromium is required (FLAGSHIP_REQUIRE_SERVICES=1)" in result.stdout
    assert "NOT RUN" not in result.stdout
