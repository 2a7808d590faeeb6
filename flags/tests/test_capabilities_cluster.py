"""Done when (issue 15): turning the stream off with its flag in the system project makes
``/api/v1/stream`` answer 503 with a problem body within a second, on every process, with no
restart.

The processes run as an operator runs them (a uvicorn stream node and a gunicorn web node,
production settings) against the test's PostgreSQL and the real Redis; the flag is switched in
this process through the service, as an administrator does in the admin.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from accounts.models import ApiKey, User
from flags import capabilities, services
from flagship.faults import wait_until

from .caching import cache_config, caching
from .cluster import cluster, node_environment
from .evaluation_data import issue
from .system_project import ensure_system_project, switch

pytestmark = [pytest.mark.requires_postgres, pytest.mark.requires_redis]

STREAM = "/api/v1/stream"
WITHIN = 1.0  # seconds: the issue's bound


class OpenStream:
    """One ``GET /api/v1/stream`` read in a thread: whether an event came, and whether it ended.

    A stream the server ends is over when its chunked body's last chunk arrives (the connection
    itself may stay open for keep-alive) or the connection closes.
    """

    def __init__(self, port: int, secret: str) -> None:
        self.raw = b""
        self.ended = False
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._sock.sendall(
            (
                f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {secret}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()
        )
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def events(self) -> int:
        """How many events (``data:`` lines) arrived."""
        return self.raw.count(b"\ndata: ")

    def _read(self) -> None:
        with suppress(OSError):
            while not self.ended:
                data = self._sock.recv(65536)
                self.raw += data
                if not data or b"\r\n0\r\n\r\n" in self.raw:
                    break
        self.ended = True

    def close(self) -> None:
        """Close the connection."""
        with suppress(OSError):
            self._sock.close()


def stream_status(port: int, secret: str) -> tuple[int, str, dict[str, Any] | None]:
    """A new stream request's status, content type and (for an error) problem body.

    The headers are read and the connection closed: a 200 from the ASGI node never ends.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", STREAM, headers={"X-API-Key": secret})
        response = connection.getresponse()
        kind = response.getheader("Content-Type") or ""
        body = json.loads(response.read()) if response.status >= 400 else None
        return response.status, kind, body
    finally:
        connection.close()


def wait_for(ports: list[int], secret: str, status: int) -> float:
    """Seconds until a new stream request to every node answers ``status`` (at most 5 s)."""
    started = time.monotonic()
    pending = set(ports)
    while pending and time.monotonic() - started < 5:
        pending = {port for port in pending if stream_status(port, secret)[0] != status}
        if pending:
            time.sleep(0.02)
    assert not pending, f"nodes {sorted(pending)} never answered {status}"
    return time.monotonic() - started


def test_stream_flag_off__every_process_503_within_a_second__on_again__streams(
    transactional_db: None, tmp_path: Path
) -> None:
    # Given FlagShip's own project, an administrator, and a product's server key (committed)
    ensure_system_project()
    root = User.objects.create_superuser("root", "root@example.com", "x-not-used-x")
    project = services.project_create(key="demo", name="Demo")
    secret = issue(project.environments.get(key="staging"), ApiKey.Kind.SERVER)
    # Given a uvicorn stream node and a gunicorn web node on the test database and Redis, and
    # this process writing to the same Redis namespace and channels as they do
    database = connections["default"].settings_dict
    user = database.get("USER") or "postgres"
    host, port = database.get("HOST") or "127.0.0.1", database.get("PORT") or 5432
    redis_url = str(settings.REDIS_URL)
    prefix = f"flagship-capabilities-{uuid.uuid4().hex[:12]}"
    env = node_environment(f"postgres://{user}@{host}:{port}/{database['NAME']}", redis_url, prefix)
    caches = cache_config(redis_url)
    for alias in caches.values():
        alias["KEY_PREFIX"] = prefix
    with (
        caching(redis_url, CACHES=caches, FLAGSHIP_CHANNEL_PREFIX=prefix),
        cluster(tmp_path) as nodes,
    ):
        stream_node = nodes.start_stream(env)
        web_node = nodes.start_web(env)
        nodes.wait_ready()
        ports = [stream_node, web_node]
        try:
            # Given streams that work on every node, and one stream open on the ASGI node
            assert [stream_status(p, secret)[:2] for p in ports] == [
                (200, "text/event-stream"),
                (200, "text/event-stream"),
            ]
            subscriber = OpenStream(stream_node, secret)
            assert wait_until(lambda: subscriber.events > 0, timeout=5)
            time.sleep(0.5)  # the nodes' subscriptions are confirmed (pushed versions trusted)

            # When an administrator switches the stream off
            switch(capabilities.STREAM, on=False, actor=root)
            elapsed = wait_for(ports, secret, 503)
            # Then within a second every node answers 503 with the problem body
            assert elapsed < WITHIN, elapsed
            for node in ports:
                status, kind, body = stream_status(node, secret)
                assert (status, kind) == (503, "application/problem+json")
                assert body is not None
                assert (body["status"], body["code"]) == (503, "capability_disabled")
            # Then the open stream was closed too
            assert wait_until(lambda: subscriber.ended, timeout=WITHIN)
            subscriber.close()

            # When it is switched on again
            switch(capabilities.STREAM, on=True, actor=root)
            elapsed = wait_for(ports, secret, 200)
            # Then within a second streams work again on every node, with no restart
            assert elapsed < WITHIN, elapsed
            again = OpenStream(stream_node, secret)
            assert wait_until(lambda: again.events > 0, timeout=5)
            again.close()
        except BaseException:
            print(nodes.tail())  # noqa: T201  # shown with the failure
            raise
