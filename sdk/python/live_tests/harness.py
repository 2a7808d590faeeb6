"""A real FlagShip process for the SDK's live tests: uvicorn, its own SQLite file, a fault proxy.

``LiveServer`` runs ``uvicorn flagship.asgi:application`` (the API and the SSE stream in one
process) on a free loopback port, against a copy of a migrated and seeded SQLite template, with
rate limits off and a 1 s stream heartbeat. ``stop()`` kills it (the port and the database file
stay), ``start()`` brings it back on the same port. A ``CountingProxy`` (``flagship.faults``)
can sit in front: tests point the SDK at ``proxy_url``, cut connections and count them.

Everything waits with deadlines (``wait_for``), never with bare sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flagship.faults import FaultProxy, _close

REPOSITORY = Path(__file__).resolve().parents[3]
PROJECT = "live"
ENVIRONMENT = "staging"
START_TIMEOUT = 30.0  # seconds for uvicorn + Django to answer /healthz
STOP_TIMEOUT = 5.0
HEARTBEAT = 1.0  # FLAGSHIP_STREAM_HEARTBEAT of the live server (seconds)


def wait_for[T](
    probe: Callable[[], T | None], timeout: float, message: str, interval: float = 0.02
) -> T:
    """Poll ``probe`` until it returns neither ``None`` nor ``False``; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s: {message}")
        time.sleep(interval)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(database: Path) -> dict[str, str]:
    """The environment of the server (and of migrate/seed): SQLite file, no Redis, no limits."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        and not key.startswith(("FLAGSHIP_", "DJANGO_", "COV_CORE_"))
    }
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "flagship.settings",
            "DJANGO_ENV": "development",  # the shared caches on, as in production
            "DJANGO_DEBUG": "false",
            "DJANGO_ENV_FILE": str(database.parent / "no.env"),  # never the developer's .env
            "DJANGO_LOG_LEVEL": "WARNING",
            "SQLITE_PATH": str(database),
            "FLAGSHIP_STREAM_HEARTBEAT": str(HEARTBEAT),
            "FLAGSHIP_AUTH_RATE": "",
            "FLAGSHIP_ADMIN_LOGIN_RATE": "",
            "FLAGSHIP_MANAGEMENT_RATE": "",
            "FLAGSHIP_EVALUATION_RATE": "",
            "PYTHONPATH": os.pathsep.join(
                [
                    str(REPOSITORY),
                    str(REPOSITORY / "sdk" / "python"),
                    os.environ.get("PYTHONPATH", ""),
                ]
            ),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return environment


def build_template(database: Path) -> dict[str, str]:
    """Migrate ``database`` and seed it; return the seeded secrets (admin token, keys)."""
    _run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], database)
    secrets: dict[str, str] = json.loads(_run([sys.executable, "-m", "live_tests.seed"], database))
    return secrets


def _run(command: list[str], database: Path) -> str:
    """Run a set-up command like the server (cwd, environment); its stdout, or fail with stderr."""
    done = subprocess.run(  # noqa: S603  # our own interpreter and scripts
        command,
        cwd=REPOSITORY,
        env=server_environment(database),
        timeout=120,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise AssertionError(f"{' '.join(command[1:])} failed ({done.returncode}):\n{tail}")
    return done.stdout


class CountingProxy(FaultProxy):
    """A ``FaultProxy`` that also counts every connection it accepts (``attempts``).

    ``accepted`` counts only connections forwarded to a live upstream; ``attempts`` also those
    refused because the server is down, so a test can bound the SDK's reconnects to a dead server.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.attempts = 0

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # the listener was closed (severed or stopped)
            with self._lock:
                self.attempts += 1
            try:
                upstream = socket.create_connection(self.target, timeout=2)
                upstream.settimeout(None)
            except OSError:
                _close(client)  # the server is down: the SDK sees the connection reset
                continue
            with self._lock:
                if self._severed:
                    _close(client)
                    _close(upstream)
                    continue
                self._sockets.update((client, upstream))
                self.accepted += 1
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()


@dataclass
class Response:
    """A management API answer."""

    status: int
    headers: dict[str, str]
    body: Any


class LiveServer:
    """One FlagShip process (uvicorn) on a fixed port and SQLite file; stop() and start() it."""

    def __init__(self, database: Path, secrets: dict[str, str], log: Path) -> None:
        self.database = database
        self.log = log
        self.port = free_port()
        self.admin_token = secrets["admin_token"]
        self.server_key = secrets["server_key"]
        self.client_key = secrets["client_key"]
        self._process: subprocess.Popen[bytes] | None = None
        self._environment = server_environment(database)
        self.proxy: CountingProxy | None = None

    # --- Lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The server itself."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def proxy_url(self) -> str:
        """The fault proxy in front of the server (started on first use)."""
        proxy = self.proxy
        if proxy is None:
            proxy = self.proxy = CountingProxy("127.0.0.1", self.port)
            proxy.start()
        return f"http://127.0.0.1:{proxy.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start uvicorn (same port, same database) and wait until /healthz answers 200."""
        if self.running:
            return
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603  # our own interpreter and app
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "flagship.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    "--timeout-graceful-shutdown",
                    "1",
                ],
                cwd=REPOSITORY,
                env=self._environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one
            )
        wait_for(self._healthy, timeout, f"FlagShip to answer /healthz\n{self.log_tail()}")

    def _healthy(self) -> bool:
        if not self.running:
            raise AssertionError(f"FlagShip exited at start-up:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as answer:  # noqa: S310  # loopback http
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the process (its whole group) and wait for it; the port is free afterwards."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        wait_for(self._port_closed, STOP_TIMEOUT, f"port {self.port} to close")

    def _port_closed(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", self.port)) != 0

    def close(self) -> None:
        """Stop the server and the proxy (teardown)."""
        try:
            self.stop()
        finally:
            if self.proxy is not None:
                self.proxy.stop()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output (for failure messages)."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- HTTP ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Call the server directly (admin token unless ``key``); JSON in and out."""
        data = None if body is None else json.dumps(body).encode()
        sent = {"X-API-Key": key or self.admin_token, "Accept": "application/json"}
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        request = urllib.request.Request(  # noqa: S310  # loopback http
            f"{self.base_url}{path}", data=data, method=method, headers=sent
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return _response(answer.status, _lowered(answer.headers.items()), answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return _response(error.code, _lowered(error.headers.items()), error.read())

    def state_url(self, flag: str, environment: str = ENVIRONMENT) -> str:
        """The management API path of a flag's state in an environment."""
        return f"/api/v1/projects/{PROJECT}/flags/{flag}/environments/{environment}/"

    def toggle(self, flag: str, enabled: bool, environment: str = ENVIRONMENT) -> int:
        """Switch a flag on or off through the management API; return the new ruleset version."""
        answer = self.request(
            "POST", self.state_url(flag, environment) + "toggle/", {"enabled": enabled}
        )
        assert answer.status == 200, answer.body  # noqa: S101  # harness precondition
        return self.ruleset_version()

    def set_default_variant(self, flag: str, variant: str, environment: str = ENVIRONMENT) -> int:
        """Serve ``variant`` by default (PATCH with If-Match); return the new ruleset version."""
        url = self.state_url(flag, environment)
        read = self.request("GET", url)
        assert read.status == 200, read.body  # noqa: S101
        answer = self.request(
            "PATCH",
            url,
            {"default_serve": {"variant": variant}},
            headers={"If-Match": read.headers["etag"]},
        )
        assert answer.status == 200, answer.body  # noqa: S101
        return self.ruleset_version()

    def ruleset(self) -> Response:
        """``GET /api/v1/ruleset`` with the server key."""
        return self.request("GET", "/api/v1/ruleset", key=self.server_key)

    def ruleset_version(self) -> int:
        """The environment's current ruleset version, as the server hands it out."""
        answer = self.ruleset()
        assert answer.status == 200, answer.body  # noqa: S101
        return int(answer.body["version"])

    # --- The database -------------------------------------------------------------------------
    def evaluation_counts(self) -> dict[tuple[str, str, str], int]:
        """Stored evaluation counts: ``{(flag key, variant or "", hour): count}`` (SQLite file)."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
        ) as database:
            rows = database.execute(
                "SELECT flag.key, counts.variant, counts.hour, counts.count "
                "FROM flags_flagevaluationcount AS counts "
                "JOIN flags_flag AS flag ON flag.id = counts.flag_id"
            ).fetchall()
        return {
            (str(flag), str(variant), str(hour)): int(count) for flag, variant, hour, count in rows
        }


def _lowered(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers by lower-case name (servers differ in the case they send)."""
    return {name.lower(): value for name, value in items}


def _response(status: int, headers: dict[str, str], raw: bytes) -> Response:
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", errors="replace")
    return Response(status=status, headers=headers, body=body)
