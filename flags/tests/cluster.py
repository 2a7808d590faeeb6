"""FlagShip nodes as an operator runs them, for tests: gunicorn web processes, uvicorn streams.

``Cluster`` starts each node as a child process (``flagship.processes``: its own process group,
output in a log file) in production settings against the given PostgreSQL and Redis URLs
(through fault proxies in the tests), waits until each answers ``/healthz`` and stops them all
at the end. ``Subscriber`` reads one ``GET /api/v1/stream`` connection in a thread and records
every event and heartbeat.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagship.processes import Processes, free_port, wait_http

SECRET = "cluster-" + "t3st-k3y-n0t-f0r-pr0duct10n-" * 3


def node_environment(
    database_url: str, redis_url: str, prefix: str, **extra: str
) -> dict[str, str]:
    """Production settings for a node, isolated by ``prefix`` in a shared Redis."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "flagship.settings",
        "DJANGO_ENV": "production",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ENV_FILE": "/nonexistent/flagship.env",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": prefix,
        "FLAGSHIP_CHANNEL_PREFIX": prefix,
        "FLAGSHIP_STREAM_HEARTBEAT": "0.5",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        "DJANGO_LOG_LEVEL": "INFO",
        **extra,
    }


@dataclass
class Cluster:
    """Child processes serving FlagShip; ``web`` and ``streams`` hold their ports."""

    processes: Processes
    web: list[int] = field(default_factory=list)
    streams: list[int] = field(default_factory=list)

    def start_web(self, env: dict[str, str]) -> int:
        """A gunicorn node (``gunicorn.conf.py``); its port."""
        port = free_port()
        self.processes.start(
            f"web-{port}",
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "flagship.wsgi"],
            {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        )
        self.web.append(port)
        return port

    def start_stream(self, env: dict[str, str]) -> int:
        """A uvicorn node serving ``flagship.asgi`` (the change stream); its port."""
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "flagship.asgi:application"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        self.processes.start(f"stream-{port}", argv, env)
        self.streams.append(port)
        return port

    def wait_ready(self) -> None:
        """Wait until every node answers ``/healthz``."""
        for port in self.web:
            wait_http(port, "/healthz", self.processes, f"web-{port}")
        for port in self.streams:
            wait_http(port, "/healthz", self.processes, f"stream-{port}")

    def tail(self) -> str:
        """The end of every node's log (for failure messages)."""
        names = [f"web-{port}" for port in self.web] + [f"stream-{port}" for port in self.streams]
        return "\n".join(f"--- {name}\n{self.processes.tail(name, 40)}" for name in names)


@contextmanager
def cluster(logs: Path) -> Iterator[Cluster]:
    """A :class:`Cluster` logging into ``logs``, every node stopped on exit."""
    processes = Processes(logs)
    try:
        yield Cluster(processes)
    finally:
        processes.stop()


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to a node on a new connection: status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class Subscriber:
    """One open ``GET /api/v1/stream`` connection, read in a thread."""

    def __init__(self, port: int, secret: str) -> None:
        self.versions: list[int] = []
        self.heartbeats = 0
        self.closed = False
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._sock.sendall(
            (
                f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {secret}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._line(line.strip(b"\r"))
        except OSError:
            pass
        self.closed = True

    def _line(self, line: bytes) -> None:
        if line.startswith(b": ping"):
            self.heartbeats += 1
        elif line.startswith(b"data: "):
            with suppress(ValueError, KeyError, TypeError):
                self.versions.append(int(json.loads(line[6:])["version"]))

    def close(self) -> None:
        """Close the connection."""
        with suppress(OSError):
            self._sock.close()
