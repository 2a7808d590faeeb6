"""The change stream's own chain (flagship/asgi.py) answers exactly what the full stack answers.

Each request goes, over real HTTP, to a uvicorn serving the stream server's application and to one
serving the same handler with the full middleware stack only (``FullStack``); status and every
header must be the same (sorted, repeated ones as often; ``Date`` dropped and the durations in
``Server-Timing`` masked; both requests carry the same ``X-Request-ID``). Each request is also
checked to have been answered by the layer expected: the stream's chain for a stream whose key
this process vouches for from memory, the full stack for anything else.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.test.utils import override_settings

from accounts.models import ApiKey
from flags import services
from flags.models import Environment
from flagship.asgi import StreamingASGIHandler

from .caching import caching
from .evaluation_data import issue
from .test_stream import WAIT, LiveServer, SseClient

ORIGIN = "https://shop.example.com"
_DURATION = re.compile(r"dur=[0-9.]+")
Head = tuple[int, list[tuple[str, str]]]


class FullStack(StreamingASGIHandler):
    """The stream server's handler with every request on Django's full stack (as before)."""

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await ASGIHandler.get_response_async(self, request)


@pytest.fixture(autouse=True)
def _caches_on() -> Iterator[None]:
    with caching(), override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN]):
        yield


@pytest.fixture
def lean_app() -> StreamingASGIHandler:
    return StreamingASGIHandler()


@pytest.fixture
def chain_calls(lean_app: StreamingASGIHandler, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the stream's own chain answered."""
    calls: list[str] = []
    chain = lean_app._stream_chain

    async def spy(request: HttpRequest) -> HttpResponseBase:
        calls.append(request.get_full_path())
        return await chain(request)

    monkeypatch.setattr(lean_app, "_stream_chain", spy)
    return calls


@pytest.fixture
def servers(
    transactional_db: None, lean_app: StreamingASGIHandler
) -> Iterator[tuple[LiveServer, LiveServer]]:
    with (
        override_settings(FLAGSHIP_STREAM_HEARTBEAT=15),
        LiveServer("httptools", lean_app) as lean,
        LiveServer("httptools", FullStack()) as full,
    ):
        yield lean, full


@pytest.fixture
def staging(transactional_db: None) -> Environment:
    project = services.project_create(key="demo", name="Demo")
    environment: Environment = project.environments.get(key="staging")
    return environment


def head(
    port: int, path: str, headers: dict[str, str], method: str = "GET", body: bytes = b""
) -> Head:
    """Status and headers of one request (the connection closed after the head)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "X-Request-ID: compare-1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        raw = b""
        deadline = time.monotonic() + WAIT
        while b"\r\n\r\n" not in raw:
            assert time.monotonic() < deadline, "no response head"
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            raw += data
    finally:
        sock.close()
    status_line, *header_lines = raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    found = []
    for line in header_lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "date":
            continue
        if name == "server-timing":
            value = _DURATION.sub("dur=*", value)
        found.append((name, value))
    return int(status_line.split()[1]), sorted(found)


def warm(lean: LiveServer, secret: str) -> None:
    """One stream through the full stack: the key's essentials are in this process afterwards."""
    client = SseClient(lean.port, headers={"X-API-Key": secret})
    try:
        assert client.status == 200
        client.next_event()
    finally:
        client.close()


def compare(
    servers: tuple[LiveServer, LiveServer], path: str, headers: dict[str, str], **kwargs: Any
) -> Head:
    lean, full = servers
    on_lean = head(lean.port, path, headers, **kwargs)
    on_full = head(full.port, path, headers, **kwargs)
    assert on_lean == on_full
    return on_lean


def test_vouched_streams__answered_by_the_streams_chain__as_the_full_stack(
    servers: tuple[LiveServer, LiveServer], staging: Environment, chain_calls: list[str]
) -> None:
    server_key = issue(staging, ApiKey.Kind.SERVER)
    client_key = issue(staging, ApiKey.Kind.CLIENT)
    warm(servers[0], server_key)
    warm(servers[0], client_key)
    assert chain_calls == []  # not yet vouched for: the full stack answered both
    cases: list[tuple[str, dict[str, str]]] = [
        ("/api/v1/stream", {"X-API-Key": server_key}),
        ("/api/v1/stream/", {"Authorization": f"Bearer {client_key}", "Origin": ORIGIN}),
        (f"/api/v1/stream?key={client_key}&format=ofrep", {"Origin": ORIGIN}),
        ("/api/v1/stream", {"X-API-Key": server_key, "Origin": "https://elsewhere.example.org"}),
        ("/api/v1/stream?format=nonsense", {"X-API-Key": server_key}),
        ("/api/v1/stream", {"X-API-Key": server_key, "Last-Event-ID": "999999"}),
    ]
    statuses = []
    for path, headers in cases:
        status, found = compare(servers, path, headers)
        statuses.append(status)
        assert ("x-request-id", "compare-1") in found
    assert statuses == [200, 200, 200, 200, 400, 200]
    assert chain_calls == [path for path, _ in cases]


def test_rate_limited_stream__answered_by_the_streams_chain__as_the_full_stack(
    servers: tuple[LiveServer, LiveServer], staging: Environment, chain_calls: list[str]
) -> None:
    server_key = issue(staging, ApiKey.Kind.SERVER)
    warm(servers[0], server_key)
    with override_settings(FLAGSHIP_STREAM_KEY_RATE="1/m"):
        # The lean server counts first (limit reached), then the full one: both answer 429.
        lean, full = servers
        head(lean.port, "/api/v1/stream", {"X-API-Key": server_key})
        on_lean = head(lean.port, "/api/v1/stream", {"X-API-Key": server_key})
        on_full = head(full.port, "/api/v1/stream", {"X-API-Key": server_key})
    assert on_lean[0] == 429
    # Retry-After counts the seconds left in the window: a second may pass between the two.
    lean_wait, full_wait = retry_after(on_lean), retry_after(on_full)
    assert 0 <= lean_wait - full_wait <= 1
    assert without_retry_after(on_lean) == without_retry_after(on_full)
    assert len(chain_calls) == 2


def retry_after(answer: Head) -> int:
    (value,) = [value for name, value in answer[1] if name == "retry-after"]
    assert 1 <= int(value) <= 60
    return int(value)


def without_retry_after(answer: Head) -> Head:
    return answer[0], [(name, value) for name, value in answer[1] if name != "retry-after"]


def test_other_requests__answered_by_the_full_stack(
    servers: tuple[LiveServer, LiveServer], staging: Environment, chain_calls: list[str]
) -> None:
    server_key = issue(staging, ApiKey.Kind.SERVER)
    client_key = issue(staging, ApiKey.Kind.CLIENT)
    warm(servers[0], server_key)
    warm(servers[0], client_key)
    cases: list[tuple[str, dict[str, str], str]] = [
        ("/api/v1/stream", {}, "GET"),
        ("/api/v1/stream", {"X-API-Key": "fss_" + "A" * 44}, "GET"),
        ("/api/v1/stream", {"X-API-Key": server_key, "Cookie": "sessionid=abc"}, "GET"),
        (f"/api/v1/stream?key={server_key}", {}, "GET"),
        (f"/api/v1/stream?key={client_key}", {"Authorization": "Basic eDp5"}, "GET"),
        ("/api/v1/stream", {"X-API-Key": server_key}, "POST"),
        (
            "/api/v1/stream",
            {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
            "OPTIONS",
        ),
        ("/api/v2/stream", {"X-API-Key": server_key}, "GET"),
    ]
    statuses = []
    for path, headers, method in cases:
        status, _ = compare(servers, path, headers, method=method)
        statuses.append(status)
    assert statuses == [401, 401, 200, 403, 401, 403, 200, 404]  # POST: CSRF
    assert chain_calls == []


def test_open_streams__hold_no_thread_each(
    servers: tuple[LiveServer, LiveServer], staging: Environment, chain_calls: list[str]
) -> None:
    # Given a key the stream server holds in memory
    server_key = issue(staging, ApiKey.Kind.SERVER)
    warm(servers[0], server_key)
    before = threading.active_count()

    # When 24 streams are open at once
    opened = []
    try:
        for _ in range(24):
            client = SseClient(servers[0].port, headers={"X-API-Key": server_key})
            opened.append(client)  # closed below even if a later one fails
        for client in opened:
            client.next_event()
        during = threading.active_count()
    finally:
        for client in opened:
            client.close()

    # Then they run on the event loop and the thread pool, not in a thread each
    assert len(chain_calls) == 24
    assert during - before < 12, f"{during - before} more threads for 24 open streams"
