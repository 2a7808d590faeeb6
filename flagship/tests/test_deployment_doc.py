"""docs/deployment.md's tested blocks, run as written, so the guide cannot drift from the code.

A block marked ``<!-- tested: NAME -->`` runs in bash, in a copy of the checkout's ``deploy/``
(everything else linked), with ``docker`` standing for :mod:`flagship.tests.compose_run`: the
service's command runs here with the environment its container would have.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connections

from flagship.tests import deploy_files as files

GUIDE = files.ROOT / "docs" / "deployment.md"
MARKED = re.compile(r"<!-- tested: ([a-z-]+) -->\n```sh\n(.*?)```", re.DOTALL)


def blocks() -> dict[str, str]:
    """The guide's tested blocks by name."""
    return dict(MARKED.findall(GUIDE.read_text()))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout to run blocks in: its own deploy/ (no env file of ours), the rest linked."""
    root = tmp_path / "checkout"
    root.mkdir()
    for entry in files.ROOT.iterdir():
        if entry.name not in {"deploy", ".git", ".env"}:
            (root / entry.name).symlink_to(entry)
    shutil.copytree(files.ROOT / "deploy", root / "deploy", ignore=shutil.ignore_patterns("*.env"))
    return root


def run_block(name: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run one tested block with ``docker`` emulated; its result."""
    prelude = (
        "set -euo pipefail\n"
        f'docker() {{ "{sys.executable}" -m flagship.tests.compose_run "$@"; }}\n'
    )
    environment = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(cwd.parent),
        **variables,
    }
    return subprocess.run(  # noqa: S603  # bash running the guide's own block
        ["bash", "-c", prelude + blocks()[name]],  # noqa: S607
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_guide__tested_blocks__present() -> None:
    assert set(blocks()) == {"configure", "check-deploy", "backup", "restore"}


def test_configure__secrets_generated__check_deploy_clean(checkout: Path) -> None:
    # When the operator configures the production profile as the guide says
    configured = run_block("configure", checkout)
    assert configured.returncode == 0, configured.stderr

    # Then the env file has generated secrets, one database password in both places, only for them
    env_file = checkout / "deploy" / "env" / "production.env"
    values = files.env_file(env_file)
    assert len(values["DJANGO_SECRET_KEY"]) >= 64
    assert len(values["FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS"]) == 44
    assert re.fullmatch(r"[0-9a-f]{48}", values["POSTGRES_PASSWORD"])
    assert values["DATABASE_URL"] == (
        f"postgres://flagship:{values['POSTGRES_PASSWORD']}@postgres:5432/flagship"
    )
    assert values["DJANGO_ALLOWED_HOSTS"] == values["FLAGSHIP_SITE_ADDRESS"] == "flags.example.com"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    # And Django's deployment check passes with that profile
    checked = run_block("check-deploy", checkout)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout


@pytest.fixture
def scratch_database() -> Iterator[tuple[str, dict[str, Any]]]:
    """A new database with a few rows on the test's PostgreSQL; its name and server settings."""
    server = connections["default"].settings_dict
    name = f"flagship_backup_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(files.postgres_url(server, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(files.postgres_url(server, name), autocommit=True) as database:
            database.execute("CREATE TABLE flags (key text PRIMARY KEY, enabled boolean)")
            database.execute(
                "INSERT INTO flags VALUES ('new-checkout', true), ('dark-mode', false)"
            )
        yield name, server
    finally:
        with psycopg.connect(files.postgres_url(server, "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.requires_postgres
def test_backup_then_restore__rows_deleted_after_the_backup__back(
    checkout: Path, scratch_database: tuple[str, dict[str, Any]]
) -> None:
    # Given the production profile naming the scratch database (the postgres container's user and
    # database), and the server's address in place of the container's socket
    name, server = scratch_database
    profile = files.env_file(files.PROFILES / "production.env.example")
    profile.update(POSTGRES_USER=server.get("USER") or "postgres", POSTGRES_DB=name)
    (checkout / "deploy" / "env" / "production.env").write_text(
        "".join(f"{key}={value}\n" for key, value in profile.items())
    )
    address = {
        "COMPOSE_RUN_PGHOST": str(server.get("HOST") or "127.0.0.1"),
        "COMPOSE_RUN_PGPORT": str(server.get("PORT") or 5432),
        "COMPOSE_RUN_PGPASSWORD": str(server.get("PASSWORD") or ""),
    }

    # When the guide's backup runs, the rows change, and the guide's restore runs
    backup = run_block("backup", checkout, **address)
    assert backup.returncode == 0, backup.stderr
    assert (checkout / "flagship.dump").read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    with psycopg.connect(files.postgres_url(server, name), autocommit=True) as database:
        database.execute("DELETE FROM flags WHERE key = 'new-checkout'")
        database.execute("INSERT INTO flags VALUES ('added-later', true)")
    restore = run_block("restore", checkout, **address)
    assert restore.returncode == 0, restore.stderr

    # Then the database is exactly as it was backed up
    with psycopg.connect(files.postgres_url(server, name)) as database:
        rows = database.execute("SELECT key, enabled FROM flags ORDER BY key").fetchall()
    assert rows == [("dark-mode", False), ("new-checkout", True)]
