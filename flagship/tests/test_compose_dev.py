"""docker-compose.dev.yml's own commands, started from the checkout with the development profile.

As in test_compose_stack.py, Compose's work is done by hand: the migrate service's command runs
(twice: a first start, then a restart) and the web service's development server starts with the
environment its container gets (the image's ``ENV``, then deploy/env/development.env.example),
on a fresh PostgreSQL database and the local Redis, on a free loopback port.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from flags.tests.cluster import request
from flagship.processes import Processes, free_port, wait_http
from flagship.tests import deploy_files as files

SERVICES: dict[str, dict[str, Any]] = files.compose(files.COMPOSE_DEV)["services"]


def development_environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    """What Compose gives the development services, on the test's database and Redis."""
    redis_url = urlsplit(str(settings.REDIS_URL))
    prefix = f"flagship-dev-{uuid.uuid4().hex[:12]}"
    profile: dict[str, str] = {}
    for entry in SERVICES["web"]["env_file"]:
        path = files.ROOT / entry["path"]
        if path.exists() or entry.get("required", True):
            profile.update(files.env_file(path))
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        **files.image_environment(),
        **profile,
        "DJANGO_ENV_FILE": str(tmp_path / "no.env"),
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_url.port or 6379}/{redis_url.path.strip('/') or 0}",
        "CACHE_KEY_PREFIX": prefix,
        "FLAGSHIP_CHANNEL_PREFIX": prefix,
    }


@pytest.mark.requires_postgres
@pytest.mark.requires_redis
def test_dev_compose__first_start_seeds_the_demo__restart_changes_nothing__admin_served(
    tmp_path: Path,
) -> None:
    processes = Processes(tmp_path)
    with files.scratch_database() as database_url:
        env = development_environment(database_url, tmp_path)
        try:
            # When the migrate service runs on the first start, and again on a restart
            first = files.run(SERVICES["migrate"]["command"], env)
            second = files.run(SERVICES["migrate"]["command"], env)

            # Then the first start created the demo and printed its generated passwords once
            assert "Created project demo (Demo shop) with its environments." in first
            assert "Generated passwords" in first
            assert "Project demo already exists." in second
            assert "Generated passwords" not in second

            # And the web service's development server serves the admin (on a loopback port)
            port = free_port()
            argv = [
                f"127.0.0.1:{port}" if part == "0.0.0.0:8000" else part
                for part in SERVICES["web"]["command"]
            ]
            processes.start("web", argv, env)
            wait_http(port, "/admin/login/", processes, "web")
            status, _headers, body = request(port, "GET", "/admin/login/")
            assert status == 200, processes.tail("web")
            assert b"/static/admin/css/base.css" in body  # development: not hashed
            assert request(port, "GET", "/static/admin/css/base.css")[0] == 200
        finally:
            processes.stop()
