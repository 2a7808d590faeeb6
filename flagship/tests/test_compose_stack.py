"""docker-compose.prod.yml's own commands, started from the checkout, answering through Caddy.

No Docker engine runs here, so the test does what Compose would: it reads the migrate, web, stream,
worker and proxy services from docker-compose.prod.yml and runs their exact commands with the
environment Compose would give them (the Dockerfile's ``ENV``, then the production profile), on
a fresh PostgreSQL database and the local Redis. Only what a container network provides is
replaced: host:port values on 127.0.0.1, the Caddyfile's path (the proxy's volume), a static
directory, the empty secrets, and DJANGO_SECURE_SSL_REDIRECT=false, since loopback has no TLS.
Heartbeats come every second instead of 15, so the test sees one while the stream stays open.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from flags.tests.cluster import request
from flagship.processes import Processes, free_port, wait_http
from flagship.tests import deploy_files as files

pytestmark = [
    pytest.mark.requires_postgres,
    pytest.mark.requires_redis,
    pytest.mark.requires_caddy,
]

SERVICES: dict[str, dict[str, Any]] = files.compose(files.COMPOSE_PROD)["services"]
PROFILE = "${FLAGSHIP_PROFILE:-production}"


def profile_environment(definition: dict[str, Any]) -> dict[str, str]:
    """A service's variables from its env files: the production profile as committed."""
    values: dict[str, str] = {}
    for entry in definition["env_file"]:
        path = entry["path"].replace(PROFILE, "production") + ".example"
        values.update(files.env_file(files.ROOT / path))
    return values


def flagship_environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    """What Compose gives the FlagShip services, with loopback addresses and generated secrets."""
    redis_url = urlsplit(str(settings.REDIS_URL))
    prefix = f"flagship-compose-{uuid.uuid4().hex[:12]}"
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        **files.image_environment(),
        **profile_environment(SERVICES["web"]),
        "DJANGO_ENV_FILE": str(tmp_path / "no.env"),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_url.port or 6379}/{redis_url.path.strip('/') or 0}",
        "CACHE_KEY_PREFIX": prefix,
        "FLAGSHIP_CHANNEL_PREFIX": prefix,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "FLAGSHIP_STREAM_HEARTBEAT": "1",
    }


def proxy_argv() -> list[str]:
    """The proxy's command, its Caddyfile taken from the checkout (the volume Compose mounts)."""
    mounts = {}
    for volume in SERVICES["proxy"]["volumes"]:
        host, container, *_mode = volume.split(":")
        mounts[container] = host
    return [
        str(files.ROOT / mounts[part].removeprefix("./")) if part in mounts else part
        for part in SERVICES["proxy"]["command"]
    ]


def read_stream(port: int, secret: str) -> tuple[str, float, bool]:
    """Open /api/v1/stream; what arrived in 8 s, when the first event came, and if still open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
    sock.sendall(
        f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {secret}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    started, received, first_event, still_open = time.monotonic(), b"", -1.0, True
    try:
        while time.monotonic() - started < 8:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                still_open = False
                break
            received += chunk
            if first_event < 0 and b"event: ruleset" in received:
                first_event = time.monotonic() - started
    finally:
        sock.close()
    return received.decode(errors="replace"), first_event, still_open


def wait_for_line(processes: Processes, name: str, text: str, timeout: float = 60) -> None:
    """Wait until a child's log contains ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in processes.tail(name, 400):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never logged {text!r}:\n{processes.tail(name)}")


def prepare(env: dict[str, str]) -> str:
    """Migrate (the migrate service), collect static files (the image's step), seed; a key."""
    files.run(SERVICES["migrate"]["command"], env)
    files.run(["sh", "-c", files.run_step("collectstatic")], env)
    files.run([sys.executable, "manage.py", "seed_demo"], {**env, "FLAGSHIP_DEMO_PASSWORD": "x"})
    return files.run(
        [
            *(sys.executable, "manage.py", "issue_api_key", "--project", "demo"),
            *("--environment", "production", "--kind", "server"),
        ],
        env,
    ).strip()


def start(processes: Processes, env: dict[str, str], tmp_path: Path) -> tuple[int, int, int]:
    """web, stream and worker with their Compose commands, Caddy in front; the three ports."""
    web_port, stream_port, proxy_port = free_port(), free_port(), free_port()
    processes.start(
        "web", SERVICES["web"]["command"], {**env, "GUNICORN_BIND": f"127.0.0.1:{web_port}"}
    )
    processes.start(
        "stream",
        SERVICES["stream"]["command"],
        {**env, "UVICORN_HOST": "127.0.0.1", "UVICORN_PORT": str(stream_port)},
    )
    processes.start("worker", SERVICES["worker"]["command"], env)
    processes.start(
        "proxy",
        proxy_argv(),
        {
            "PATH": env["PATH"],
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
            "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
            **profile_environment(SERVICES["proxy"]),
            "FLAGSHIP_SITE_ADDRESS": f"http://127.0.0.1:{proxy_port}",
            "FLAGSHIP_WEB_HOST": "127.0.0.1",
            "FLAGSHIP_WEB_PORT": str(web_port),
            "FLAGSHIP_STREAM_UPSTREAM": f"127.0.0.1:{stream_port}",
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
        },
    )
    wait_http(web_port, "/healthz", processes, "web")
    wait_http(stream_port, "/healthz", processes, "stream")
    wait_http(proxy_port, "/healthz", processes, "proxy")
    return web_port, stream_port, proxy_port


def health_checks(env: dict[str, str], web_port: int, stream_port: int) -> None:
    """The image's health check passes for web, the stream's for stream; nothing there fails."""
    healthcheck = files.healthcheck_command()
    files.run(healthcheck, {**env, "GUNICORN_BIND": f"0.0.0.0:{web_port}"}, timeout=30)
    stream_check = [
        part.replace("127.0.0.1:8001", f"127.0.0.1:{stream_port}")
        for part in SERVICES["stream"]["healthcheck"]["test"][1:]
    ]
    files.run(stream_check, env, timeout=30)
    nothing = subprocess.run(  # noqa: S603  # the Dockerfile's own health check
        healthcheck,
        cwd=files.ROOT,
        env={**env, "GUNICORN_BIND": f"0.0.0.0:{free_port()}"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert nothing.returncode == 1


def test_prod_compose_commands__behind_caddy__web_stream_and_worker_serve(
    tmp_path: Path,
) -> None:
    processes = Processes(tmp_path)
    with files.scratch_database() as database_url:
        env = flagship_environment(database_url, tmp_path)
        try:
            # Given the migrations service run to its end on a fresh database, the image's
            # collectstatic step, and the demo project with a server key
            secret = prepare(env)

            # When web, stream and worker start with their Compose commands, and Caddy in front
            web_port, stream_port, proxy_port = start(processes, env, tmp_path)

            # Then /healthz answers through the proxy
            status, _headers, body = request(proxy_port, "GET", "/healthz")
            assert (status, body) == (200, b'{"status": "alive"}'), processes.tail("proxy")

            # And an evaluation is answered by web (gunicorn's log has it, the stream's not)
            status, _headers, body = request(
                proxy_port,
                "POST",
                "/api/v1/evaluate",
                {"context": {"targetingKey": "user-1"}},
                {"X-API-Key": secret},
            )
            assert status == 200, body
            assert b'"new-checkout"' in body
            wait_for_line(processes, "web", '"/api/v1/evaluate"')

            # And the stream is served by the ASGI server, its first event at once, unbuffered,
            # the connection kept open with heartbeats (WSGI would say retry: 30000 and end)
            text, first_event, still_open = read_stream(proxy_port, secret)
            head = text.split("\r\n\r\n", 1)[0].lower()
            assert head.startswith("http/1.1 200"), text
            assert "content-type: text/event-stream" in head
            assert "retry: 3000\n" in text
            assert 0 <= first_event < 5, text
            assert ": ping" in text.split("event: ruleset", 1)[1]
            assert still_open
            assert "/api/v1/stream" in processes.tail("stream", 400)
            assert "/api/v1/evaluate" not in processes.tail("stream", 400)

            # And the worker runs
            wait_for_line(processes, "worker", "worker.started")

            # And the admin's static files are served by whitenoise: hashed, compressed, cached
            status, _headers, body = request(proxy_port, "GET", "/admin/login/")
            assert status == 200
            found = re.search(rb"/static/admin/css/base\.[0-9a-f]{12}\.css", body)
            assert found, body[:2000]
            status, headers, _body = request(
                proxy_port, "GET", found.group().decode(), None, {"Accept-Encoding": "gzip"}
            )
            assert status == 200
            assert "immutable" in headers["Cache-Control"]
            assert headers["Content-Encoding"] == "gzip"

            # And /metrics is not public through the proxy
            assert request(proxy_port, "GET", "/metrics")[0] == 404

            # And the image's health checks pass for web and stream, and fail with nothing
            health_checks(env, web_port, stream_port)
        finally:
            processes.stop()
