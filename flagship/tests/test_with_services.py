""".ci/with-services: given URLs are used, throwaway services are started and always stopped."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "with-services"
# What the script reacts to: each test sets its own.
CONTROLS = ("DATABASE_URL", "REDIS_URL", "FLAGSHIP_REQUIRE_SERVICES", "FLAGSHIP_START_SERVICES")
SHOW = "import os; print(os.environ.get('DATABASE_URL', '-'), os.environ.get('REDIS_URL', '-'))"


def with_services(*command: str, **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name not in CONTROLS}
    environment.update(variables)
    return subprocess.run(  # noqa: S603  # the repository's own script
        [str(SCRIPT), *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listening(url: str) -> bool:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return False
    return True


def test_with_services__urls_given__used_as_they_are() -> None:
    result = with_services(
        sys.executable,
        "-c",
        SHOW,
        DATABASE_URL="postgres://someone@db.invalid:5432/x",
        REDIS_URL="redis://cache.invalid:6379/0",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "postgres://someone@db.invalid:5432/x",
        "redis://cache.invalid:6379/0",
    ]
    assert "PostgreSQL: using DATABASE_URL" in result.stderr


def test_with_services__nothing_available__runs_on_defaults_and_says_so() -> None:
    result = with_services(
        sys.executable, "-c", SHOW + "; raise SystemExit(3)", FLAGSHIP_START_SERVICES="0"
    )

    assert result.returncode == 3  # the command's own status
    assert result.stdout.split() == ["-", "-"]
    assert "the tests that need them will be SKIPPED" in result.stderr
    assert "PostgreSQL (no DATABASE_URL" in result.stderr
    assert "Redis (no REDIS_URL" in result.stderr


def test_with_services__nothing_available_but_required__refuses() -> None:
    result = with_services(
        sys.executable,
        "-c",
        "print('ran')",
        FLAGSHIP_START_SERVICES="0",
        FLAGSHIP_REQUIRE_SERVICES="1",
    )

    assert result.returncode == 1
    assert "ran" not in result.stdout
    assert "FLAGSHIP_REQUIRE_SERVICES=1 but these are missing" in result.stderr


def test_with_services__no_command__usage() -> None:
    result = with_services()

    assert result.returncode == 2
    assert "usage:" in result.stderr


@pytest.mark.skipif(
    not (glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"))
    or not shutil.which("redis-server"),
    reason="PostgreSQL and Redis server binaries are not installed",
)
def test_with_services__servers_installed__throwaway_instances_started_and_stopped() -> None:
    # When a command runs that uses both services and then fails
    check = (
        "import os, psycopg, redis; "
        "psycopg.connect(os.environ['DATABASE_URL']).execute('select 1'); "
        "redis.Redis.from_url(os.environ['REDIS_URL']).ping(); " + SHOW + "; raise SystemExit(4)"
    )
    result = with_services(sys.executable, "-c", check)

    # Then it could use both, its status is kept, and both are gone afterwards
    assert result.returncode == 4, result.stderr
    database_url, redis_url = result.stdout.split()
    assert database_url.startswith("postgres://postgres@127.0.0.1:")
    assert redis_url.startswith("redis://127.0.0.1:")
    assert "stopped the throwaway PostgreSQL" in result.stderr
    assert "stopped the throwaway Redis" in result.stderr
    assert not listening(database_url)
    assert not listening(redis_url)
