"""GET /api/v1/stream: Server-Sent Events from a real ASGI server (uvicorn, in a thread).

The server runs the project's ASGI application on 127.0.0.1 against the test database
(``transactional_db``, so it sees what the test commits); a raw-socket client reads the stream.
Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal, cast

import pytest
import redis
import uvicorn
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import ApiKey, User
from flags import services
from flags.delivery import pubsub
from flags.models import Environment, Flag, FlagState, Project
from flags.stream import subscriptions
from flagship.asgi import application

from .evaluation_data import issue, issue_admin

STREAM = "/api/v1/stream"
WAIT = 5.0  # the most any step may take before the test fails
PROPAGATION = 1.0  # a committed change reaches a stream within this


class LiveServer:
    """uvicorn serving the ASGI application on a free loopback port, in a daemon thread."""

    def __init__(self, http: Literal["h11", "httptools"] = "h11", app: Any = application) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            loop="asyncio",
            http=http,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + WAIT
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert self.thread.is_alive(), "uvicorn stopped"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT)
        self.socket.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"


class SseClient:
    """A minimal HTTP/1.1 client reading one Server-Sent Events response (chunked) from a socket."""

    def __init__(self, port: int, path: str = STREAM, headers: dict[str, str] | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.text = ""
        head = self._read_until(b"\r\n\r\n", time.monotonic() + WAIT)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines)
        }

    def close(self) -> None:
        self.sock.close()

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError from None
        if not data:
            raise ConnectionError("the server closed the stream")
        self.raw += data

    def _read_until(self, marker: bytes, deadline: float) -> bytes:
        while marker not in self.raw:
            self._fill(deadline)
        head, _, self.raw = self.raw.partition(marker)
        return head

    def _read_chunk(self, deadline: float) -> None:
        size = int(self._read_until(b"\r\n", deadline), 16)
        if size == 0:
            raise ConnectionError("the stream ended")
        while len(self.raw) < size + 2:
            self._fill(deadline)
        self.text += self.raw[:size].decode()
        self.raw = self.raw[size + 2 :]

    def next_block(self, timeout: float = WAIT) -> str:
        """The next SSE block (an event, a comment or a retry field), without its blank line."""
        deadline = time.monotonic() + timeout
        while "\n\n" not in self.text:
            self._read_chunk(deadline)
        block, _, self.text = self.text.partition("\n\n")
        return block

    def next_event(self, timeout: float = WAIT) -> dict[str, Any]:
        """The next event (comments and ``retry:`` skipped): its fields, ``data`` parsed."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(max(0.0, deadline - time.monotonic()))
            fields = dict(line.split(": ", 1) for line in block.split("\n") if line[:1] != ":")
            if "data" in fields:
                fields["data"] = json.loads(fields["data"])
                return fields

    def expect_no_event(self, within: float) -> None:
        """Assert that only heartbeats or nothing arrive for ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            try:
                block = self.next_block(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return
            assert block.startswith((":", "retry:")), f"unexpected event: {block!r}"


@pytest.fixture
def live(transactional_db: None) -> Iterator[LiveServer]:
    with override_settings(FLAGSHIP_STREAM_HEARTBEAT=15), LiveServer() as server:
        yield server


@pytest.fixture
def live_httptools(transactional_db: None) -> Iterator[LiveServer]:
    """uvicorn's default HTTP/1.1 server: events are written directly (flags.stream.direct)."""
    with override_settings(FLAGSHIP_STREAM_HEARTBEAT=15), LiveServer("httptools") as server:
        yield server


@pytest.fixture
def project(transactional_db: None) -> Project:
    return services.project_create(key="demo", name="Demo")


@pytest.fixture
def staging(project: Project) -> Environment:
    return project.environments.get(key="staging")


@pytest.fixture
def production(project: Project) -> Environment:
    return project.environments.get(key="production")


@pytest.fixture
def flag(project: Project) -> Flag:
    return services.flag_create(project=project, key="new-checkout", name="New checkout")


@pytest.fixture
def clients() -> Iterator[list[SseClient]]:
    opened: list[SseClient] = []
    yield opened
    for client in opened:
        client.close()


def connect(live: LiveServer, clients: list[SseClient], **kwargs: Any) -> SseClient:
    client = SseClient(live.port, **kwargs)
    clients.append(client)
    return client


def version_of(environment: Environment) -> int:
    environment.refresh_from_db()
    return environment.ruleset_version


def toggle(flag: Flag, environment: Environment, enabled: bool) -> None:
    state = FlagState.objects.get(flag=flag, environment=environment)
    services.flag_toggle(state=state, enabled=enabled, actor=None)


def test_initial_event_then_one_event_per_change(
    live: LiveServer, clients: list[SseClient], staging: Environment, flag: Flag
) -> None:
    secret = issue(staging, ApiKey.Kind.SERVER)
    client = connect(live, clients, headers={"X-API-Key": secret})
    assert client.status == 200
    assert client.headers["content-type"].startswith("text/event-stream")
    assert client.headers["cache-control"] == "no-cache"
    assert client.headers["x-accel-buffering"] == "no"
    current = version_of(staging)
    first = client.next_event()
    assert first == {
        "id": str(current),
        "event": "ruleset",
        "data": {"version": current, "etag": f'"{current}"'},
    }

    started = time.monotonic()
    toggle(flag, staging, True)
    changed = client.next_event(PROPAGATION)
    assert time.monotonic() - started < PROPAGATION
    assert changed["data"] == {"version": current + 1, "etag": f'"{current + 1}"'}
    assert changed["id"] == str(current + 1)

    toggle(flag, staging, False)
    assert client.next_event(PROPAGATION)["data"]["version"] == current + 2

    # A client that goes away leaves nothing behind.
    assert subscriptions.broker.count() == 1
    client.close()
    deadline = time.monotonic() + WAIT
    while subscriptions.broker.count():
        assert time.monotonic() < deadline, "the stream was not released"
        time.sleep(0.01)


def test_heartbeats_are_comments(
    live: LiveServer, clients: list[SseClient], staging: Environment
) -> None:
    secret = issue(staging, ApiKey.Kind.SERVER)
    with override_settings(FLAGSHIP_STREAM_HEARTBEAT=0.2):
        client = connect(live, clients, headers={"Authorization": f"Bearer {secret}"})
        client.next_event()
        started = time.monotonic()
        assert client.next_block(1.0) == ": ping"
        assert client.next_block(1.0) == ": ping"
        assert time.monotonic() - started < 1.0


def test_last_event_id_resume(
    live: LiveServer, clients: list[SseClient], staging: Environment, flag: Flag
) -> None:
    secret = issue(staging, ApiKey.Kind.SERVER)
    current = version_of(staging)
    with override_settings(FLAGSHIP_STREAM_HEARTBEAT=0.2):
        behind = connect(
            live, clients, headers={"X-API-Key": secret, "Last-Event-ID": str(current - 1)}
        )
        assert behind.next_event(PROPAGATION)["data"]["version"] == current

        up_to_date = connect(
            live, clients, headers={"X-API-Key": secret, "Last-Event-ID": str(current)}
        )
        up_to_date.expect_no_event(0.5)
        toggle(flag, staging, True)
        assert up_to_date.next_event(PROPAGATION)["data"]["version"] == current + 1


def test_client_key_in_the_query_string(
    live: LiveServer, clients: list[SseClient], staging: Environment
) -> None:
    secret = issue(staging, ApiKey.Kind.CLIENT)
    client = connect(live, clients, path=f"{STREAM}?key={secret}")
    assert client.status == 200
    assert client.next_event()["data"]["version"] == version_of(staging)


def test_every_client_of_the_environment_receives_and_no_other(
    live: LiveServer,
    clients: list[SseClient],
    staging: Environment,
    production: Environment,
    flag: Flag,
) -> None:
    staging_key = issue(staging, ApiKey.Kind.SERVER)
    with override_settings(FLAGSHIP_STREAM_HEARTBEAT=0.2):
        first = connect(live, clients, headers={"X-API-Key": staging_key})
        second = connect(live, clients, path=f"{STREAM}?key={issue(staging, ApiKey.Kind.CLIENT)}")
        other = connect(live, clients, headers={"X-API-Key": issue(production)})
        for client in (first, second, other):
            client.next_event()
        toggle(flag, staging, True)
        expected = version_of(staging)
        assert first.next_event(PROPAGATION)["data"]["version"] == expected
        assert second.next_event(PROPAGATION)["data"]["version"] == expected
        other.expect_no_event(0.5)


def test_ofrep_format(live: LiveServer, clients: list[SseClient], staging: Environment) -> None:
    secret = issue(staging, ApiKey.Kind.CLIENT)
    client = connect(live, clients, path=f"{STREAM}?format=ofrep&key={secret}")
    current = version_of(staging)
    assert client.next_event() == {
        "id": str(current),
        "event": "message",
        "data": {"type": "refetchEvaluation", "etag": f'"{current}"', "version": current},
    }


def read_to_the_end(client: SseClient) -> None:
    for _ in range(20):
        client.next_block(1.0)


def test_a_stream_closes_after_its_maximum_age(
    live: LiveServer, clients: list[SseClient], staging: Environment
) -> None:
    secret = issue(staging, ApiKey.Kind.SERVER)
    with override_settings(FLAGSHIP_STREAM_MAX_AGE=0.3, FLAGSHIP_STREAM_HEARTBEAT=0.1):
        client = connect(live, clients, headers={"X-API-Key": secret})
        client.next_event()
        with pytest.raises(ConnectionError):
            read_to_the_end(client)


@pytest.mark.requires_redis
def test_fan_out_through_redis(
    live: LiveServer, clients: list[SseClient], staging: Environment
) -> None:
    """A notice published by another process reaches the streams; one subscription per process."""
    url = os.environ["REDIS_URL"]
    secret = issue(staging, ApiKey.Kind.SERVER)
    other_process = redis.Redis.from_url(url, socket_timeout=WAIT)
    try:
        with override_settings(REDIS_URL=url):
            first = connect(live, clients, headers={"X-API-Key": secret})
            second = connect(live, clients, headers={"X-API-Key": secret})
            current = first.next_event()["data"]["version"]
            second.next_event()
            ours = [
                entry
                for entry in other_process.client_list(_type="pubsub")
                if entry["name"] == pubsub.subscriber_name()
            ]
            assert len(ours) == 1
            notice = json.dumps({"environment": staging.pk, "version": current + 5})
            other_process.publish(pubsub.channel(pubsub.RULESET_CHANNEL), notice)
            assert first.next_event(PROPAGATION)["data"]["version"] == current + 5
            assert second.next_event(PROPAGATION)["data"]["version"] == current + 5
    finally:
        other_process.close()


@pytest.mark.requires_redis
def test_a_lost_subscription_resyncs_the_streams(
    live: LiveServer, clients: list[SseClient], staging: Environment
) -> None:
    url = os.environ["REDIS_URL"]
    secret = issue(staging, ApiKey.Kind.SERVER)
    admin = redis.Redis.from_url(url, socket_timeout=WAIT)
    try:
        with override_settings(REDIS_URL=url):
            client = connect(live, clients, headers={"X-API-Key": secret})
            current = client.next_event()["data"]["version"]
            # A change whose notice is lost while the subscription is down.
            Environment.objects.filter(pk=staging.pk).update(ruleset_version=current + 1)
            (ours,) = [
                entry
                for entry in admin.client_list(_type="pubsub")
                if entry["name"] == pubsub.subscriber_name()
            ]
            assert admin.client_kill_filter(_id=ours["id"]) == 1
            assert client.next_event(WAIT)["data"]["version"] == current + 1
    finally:
        admin.close()


# --- Refusals (the Django test client: an error answer is not a stream) -------------------------


@pytest.fixture
def web(db: None) -> Client:
    return Client()


@pytest.fixture
def db_staging(db: None) -> Environment:
    project = services.project_create(key="demo", name="Demo")
    return project.environments.get(key="staging")


def test_missing_or_wrong_key_is_401(web: Client, db_staging: Environment) -> None:
    response = web.get(STREAM)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == 'Bearer realm="flagship"'
    assert web.get(STREAM, headers={"X-API-Key": "fss_nope"}).status_code == 401
    assert web.get(f"{STREAM}?key=fsc_nope").status_code == 401
    assert web.get(STREAM, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    secret = issue(db_staging, ApiKey.Kind.SERVER)
    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    assert web.get(STREAM, headers={"X-API-Key": wrong}).status_code == 401


def test_admin_token_and_jwt_are_403(
    web: Client, db_staging: Environment, administrator: User
) -> None:
    token = issue_admin(administrator)
    response = web.get(STREAM, headers={"X-API-Key": token})
    assert response.status_code == 403
    assert response.json()["code"] == "environment_key_required"
    access = str(AccessToken.for_user(administrator))
    assert web.get(STREAM, headers={"Authorization": f"Bearer {access}"}).status_code == 403


def test_server_key_in_the_query_string_is_refused(web: Client, db_staging: Environment) -> None:
    secret = issue(db_staging, ApiKey.Kind.SERVER)
    response = web.get(f"{STREAM}?key={secret}")
    assert response.status_code == 403
    assert response.json()["code"] == "client_key_required"
    admin_secret = f"{STREAM}?key=" + issue(db_staging, ApiKey.Kind.CLIENT)[:-1] + "!"
    assert web.get(admin_secret).status_code == 401


def test_bad_requests(web: Client, db_staging: Environment) -> None:
    secret = issue(db_staging, ApiKey.Kind.SERVER)
    assert web.post(STREAM, headers={"X-API-Key": secret}).status_code == 405
    assert web.get("/api/v2/stream", headers={"X-API-Key": secret}).status_code == 404
    bad_format = web.get(f"{STREAM}?format=xml", headers={"X-API-Key": secret})
    assert bad_format.status_code == 400


@override_settings(FLAGSHIP_STREAM_ADDRESS_RATE="2/h")
def test_new_connections_of_a_client_key_are_rate_limited_per_address(
    web: Client, db_staging: Environment
) -> None:
    secret = issue(db_staging, ApiKey.Kind.CLIENT)

    def connect(address: str) -> Any:
        return web.get(f"{STREAM}?key={secret}", REMOTE_ADDR=address)

    statuses = [connect("203.0.113.7").status_code for _ in range(2)]
    limited = connect("203.0.113.7")
    other_address = connect("198.51.100.20")

    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited["Retry-After"]) <= 3600
    assert limited.json()["code"] == "rate_limited"
    assert other_address.status_code == 200


@override_settings(FLAGSHIP_STREAM_KEY_RATE="2/h")
def test_new_connections_are_rate_limited_per_key(web: Client, db_staging: Environment) -> None:
    secret = issue(db_staging, ApiKey.Kind.SERVER)

    def connect(key: str, address: str) -> int:
        return web.get(STREAM, headers={"X-API-Key": key}, REMOTE_ADDR=address).status_code

    statuses = [connect(secret, address) for address in ("203.0.113.7", "198.51.100.20")]
    limited = connect(secret, "198.51.100.21")
    another_key = connect(issue(db_staging, ApiKey.Kind.SERVER), "198.51.100.21")

    assert statuses == [200, 200]
    assert limited == 429
    assert another_key == 200


def test_outside_asgi_the_current_state_is_answered_once(
    web: Client, db_staging: Environment
) -> None:
    """Misrouted to a WSGI worker, the stream must not hold the worker: one answer, then polling."""
    secret = issue(db_staging, ApiKey.Kind.SERVER)
    current = version_of(db_staging)
    response = web.get(STREAM, headers={"X-API-Key": secret})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    streamed = cast(StreamingHttpResponse, response)
    assert streamed.streaming
    body = b"".join(cast(Iterator[bytes], streamed.streaming_content)).decode()
    assert body == (
        "retry: 30000\n\n"
        f"id: {current}\nevent: ruleset\n"
        f'data: {{"version": {current}, "etag": "\\"{current}\\""}}\n\n'
    )
    resumed = web.get(STREAM, headers={"X-API-Key": secret, "Last-Event-ID": str(current)})
    content = cast(StreamingHttpResponse, resumed).streaming_content
    assert b"".join(cast(Iterator[bytes], content)) == b"retry: 30000\n\n"


def test_ofrep_bulk_advertises_the_stream_when_deployed(
    web: Client, db_staging: Environment
) -> None:
    client_secret = issue(db_staging, ApiKey.Kind.CLIENT)
    server_secret = issue(db_staging, ApiKey.Kind.SERVER)
    bulk = "/ofrep/v1/evaluate/flags"

    def post(secret: str) -> Any:
        return web.post(
            bulk, data="{}", content_type="application/json", headers={"X-API-Key": secret}
        )

    with override_settings(FLAGSHIP_STREAM_URL=""):
        assert "eventStreams" not in post(server_secret).json()
    with override_settings(FLAGSHIP_STREAM_URL="/api/v1/stream"):
        assert post(server_secret).json()["eventStreams"] == [
            {"type": "sse", "url": "http://testserver/api/v1/stream?format=ofrep"}
        ]
        assert post(client_secret).json()["eventStreams"] == [
            {
                "type": "sse",
                "url": f"http://testserver/api/v1/stream?format=ofrep&key={client_secret}",
            }
        ]
    with override_settings(FLAGSHIP_STREAM_URL="https://stream.example.com/api/v1/stream"):
        (advertised,) = post(server_secret).json()["eventStreams"]
        assert advertised["url"] == "https://stream.example.com/api/v1/stream?format=ofrep"


def test_direct_writes__httptools__every_change_in_order_in_both_formats(
    live_httptools: LiveServer, clients: list[SseClient], staging: Environment, flag: Flag
) -> None:
    # Given two streams on uvicorn's httptools server, one of each format
    secret = issue(staging, ApiKey.Kind.SERVER)
    plain = connect(live_httptools, clients, headers={"X-API-Key": secret})
    ofrep = connect(
        live_httptools, clients, path=f"{STREAM}?format=ofrep", headers={"X-API-Key": secret}
    )
    current = version_of(staging)
    assert plain.next_event()["data"]["version"] == current
    assert ofrep.next_event()["data"]["version"] == current

    # When two changes commit
    toggle(flag, staging, True)
    toggle(flag, staging, False)

    # Then each stream receives both, in order and framed as through ASGI, written directly
    for expected in (current + 1, current + 2):
        assert plain.next_event(PROPAGATION) == {
            "id": str(expected),
            "event": "ruleset",
            "data": {"version": expected, "etag": f'"{expected}"'},
        }
        assert ofrep.next_event(PROPAGATION) == {
            "id": str(expected),
            "event": "message",
            "data": {"type": "refetchEvaluation", "etag": f'"{expected}"', "version": expected},
        }
    with subscriptions.broker._lock:  # which path delivered them
        opened = [s for group in subscriptions.broker._subscriptions.values() for s in group]
    assert len(opened) == 2
    assert all(s.deliver_now is not None for s in opened)

    # And a client that goes away leaves nothing behind
    plain.close()
    ofrep.close()
    deadline = time.monotonic() + WAIT
    while subscriptions.broker.count():
        assert time.monotonic() < deadline, "the streams were not released"
        time.sleep(0.01)
