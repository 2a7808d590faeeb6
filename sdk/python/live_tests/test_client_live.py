"""The real SDK client against a real FlagShip process: outages, cut streams, changes, counts.

Each test gets its own server (uvicorn on a copy of the seeded SQLite template). Staging serves
``new-checkout`` = ``on`` (true), ``banner-text`` = ``sale`` ("Winter sale!"), and
``server-only`` (hidden from client keys) is off. Waits poll with deadlines (``wait_for``).
Malformed answers, 5xx and timeouts are covered by the SDK's unit tests; here the server is real.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flagship_sdk import ClientEvent, ClientStatus, FlagShipClient

from .harness import LiveServer, wait_for

CONTEXT = {"targetingKey": "user-1"}
SALE = "Winter sale!"


def client_for(server_url: str, key: str, **options: Any) -> FlagShipClient:
    """A client with test-sized timings: quick retries, no periodic count flushes."""
    settings: dict[str, Any] = {
        "timeout": 2.0,
        "max_backoff": 0.5,
        "poll_interval": 60.0,
        "counts_interval": 60.0,
    }
    settings.update(options)
    return FlagShipClient(server_url, key, **settings)


def _state(client: FlagShipClient) -> tuple[ClientStatus, str]:
    return client.status, client.data_source


def test_server_down_at_start__defaults_and_not_ready__then_ready_once_it_starts(
    stopped_flagship: LiveServer,
) -> None:
    """Given no server, then defaults, not ready; when the server starts, the client catches on."""
    with client_for(stopped_flagship.base_url, stopped_flagship.server_key) as client:
        assert client.wait_until_ready(timeout=0.5) is False
        assert client.ready is False
        assert client.status == ClientStatus.NOT_READY
        assert client.data_source == "none"
        assert client.is_enabled("new-checkout", CONTEXT, default=False) is False
        assert client.get_string("banner-text", "fallback", CONTEXT) == "fallback"
        details = client.evaluate("new-checkout", False, CONTEXT)
        assert (details.value, details.error_code) == (False, "PROVIDER_NOT_READY")

        stopped_flagship.start()

        assert client.wait_until_ready(timeout=10) is True
        assert client.is_enabled("new-checkout", CONTEXT) is True
        assert client.get_string("banner-text", "fallback", CONTEXT) == SALE
        # Properties: they changed since the checks above (read afresh, not narrowed).
        status, source = _state(client)
        assert (status, source) == (ClientStatus.READY, "server")
        assert client.ruleset_version == stopped_flagship.ruleset_version()


def test_server_down_later__last_known_good_keeps_serving(flagship: LiveServer) -> None:
    """Given a ready client, when the server dies, then it goes STALE and serves what it had."""
    events: list[ClientEvent] = []
    with client_for(flagship.base_url, flagship.server_key, poll_interval=0.2) as client:
        client.add_listener(events.append)
        assert client.wait_until_ready(timeout=10)
        version = client.ruleset_version

        flagship.stop()

        wait_for(lambda: client.status == ClientStatus.STALE, 10, "the client to go STALE")
        assert any(event.type == "stale" for event in events)
        for _ in range(100):
            assert client.is_enabled("new-checkout", CONTEXT) is True
            assert client.get_string("banner-text", "fallback", CONTEXT) == SALE
        assert client.ready is True
        assert client.ruleset_version == version
        assert client.data_source == "server"

        flagship.start()  # and back: READY again, same data
        wait_for(lambda: client.status == ClientStatus.READY, 10, "the client to recover")
        assert client.is_enabled("new-checkout", CONTEXT) is True


def test_stream_cut__reconnects_and_catches_up_on_a_change_made_while_cut(
    flagship: LiveServer,
) -> None:
    """Given a client streaming through the proxy, when the proxy cuts it and a flag changes,
    then once the proxy is back the client reconnects (Last-Event-ID) and serves the change.

    Polling is every 60 s: only the stream can bring the change within the deadline.
    """
    with client_for(flagship.proxy_url, flagship.server_key) as client:
        assert client.wait_until_ready(timeout=10)
        proxy = flagship.proxy
        assert proxy is not None
        # A first change through the stream: once the client serves it, the start-up downloads
        # are over and nothing is scheduled (the stream is up), so only the stream is left.
        flagship.set_default_variant("banner-text", "none")
        wait_for(
            lambda: client.get_string("banner-text", "fallback", CONTEXT) == "",
            10,
            "the first change to arrive through the stream",
        )
        assert client.is_enabled("new-checkout", CONTEXT) is True

        proxy.sever()
        version = flagship.toggle("new-checkout", enabled=False)  # directly, not via the proxy
        assert client.is_enabled("new-checkout", CONTEXT) is True  # cannot know yet
        connected = proxy.accepted
        proxy.restore()

        wait_for(
            lambda: client.is_enabled("new-checkout", CONTEXT) is False,
            10,
            "the change made while cut to reach the client",
        )
        assert client.ruleset_version == version
        assert proxy.accepted > connected  # it reconnected


def test_change_through_management_api__reaches_the_client_within_seconds(
    flagship: LiveServer,
) -> None:
    """Given a streaming client, when a flag's default changes, then it serves it in < 5 s."""
    changes: list[ClientEvent] = []
    with client_for(flagship.base_url, flagship.server_key) as client:
        assert client.wait_until_ready(timeout=10)
        client.add_listener(
            lambda event: changes.append(event) if event.type == "changed" else None
        )
        wait_for(lambda: client.status == ClientStatus.READY, 5, "READY")

        started = time.monotonic()
        version = flagship.set_default_variant("banner-text", "none")
        wait_for(
            lambda: client.get_string("banner-text", "fallback", CONTEXT) == "",
            10,
            "the new default to reach the client",
        )
        elapsed = time.monotonic() - started

        print(f"management API change -> client: {elapsed * 1000:.0f} ms")  # noqa: T201
        assert elapsed < 5
        assert client.ruleset_version == version
        wait_for(lambda: changes, 5, "a changed event")
        assert changes[-1].flags_changed is None or "banner-text" in changes[-1].flags_changed


def test_backup_file__written_from_the_server__loaded_when_the_server_is_down(
    flagship: LiveServer, tmp_path: Path
) -> None:
    """Given a client that saved a backup, when a new client starts with the server down, then
    it is ready from the backup (STALE, data_source backup) with the server's values."""
    backup = tmp_path / "flagship-backup.json"
    served = flagship.ruleset()
    with client_for(flagship.base_url, flagship.server_key, backup_path=backup) as client:
        assert client.wait_until_ready(timeout=10)
        wait_for(backup.exists, 5, "the backup file")
    saved = json.loads(backup.read_text(encoding="utf-8"))
    assert saved["ruleset"] == served.body
    assert saved["version"] == served.body["version"]
    assert saved["etag"] == served.headers["etag"]
    assert "saved_at" in saved

    flagship.stop()
    with client_for(flagship.base_url, flagship.server_key, backup_path=backup) as client:
        assert client.wait_until_ready(timeout=5) is True
        assert client.data_source == "backup"
        assert client.status == ClientStatus.STALE
        assert client.ruleset_version == served.body["version"]
        assert client.is_enabled("new-checkout", CONTEXT) is True
        assert client.get_string("banner-text", "fallback", CONTEXT) == SALE


def test_bootstrap_file__offline_no_network__online_until_the_server_answers(
    stopped_flagship: LiveServer, tmp_path: Path
) -> None:
    """Given the real server's ruleset as a bootstrap file, offline: ready at once, no request;
    online with the server down: bootstrap data until the server answers, then the server's."""
    stopped_flagship.start()
    document = stopped_flagship.ruleset().body
    version = document["version"]
    stopped_flagship.toggle("new-checkout", enabled=False)  # the server moves on
    stopped_flagship.stop()
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(json.dumps(document), encoding="utf-8")
    proxy_url = stopped_flagship.proxy_url
    proxy = stopped_flagship.proxy
    assert proxy is not None

    with client_for(
        proxy_url, stopped_flagship.server_key, offline=True, bootstrap=bootstrap
    ) as offline:
        assert offline.ready is True
        assert offline.data_source == "bootstrap"
        assert offline.ruleset_version == version
        assert offline.is_enabled("new-checkout", CONTEXT) is True
        assert offline.get_string("banner-text", "fallback", CONTEXT) == SALE
    assert proxy.attempts == 0  # offline: not one connection

    with client_for(proxy_url, stopped_flagship.server_key, bootstrap=bootstrap) as online:
        assert online.wait_until_ready(timeout=0) is True
        assert online.data_source == "bootstrap"
        assert online.is_enabled("new-checkout", CONTEXT) is True
        wait_for(lambda: proxy.attempts >= 1, 5, "the client to try the server")

        stopped_flagship.start()

        wait_for(lambda: online.data_source == "server", 10, "the server's data")
        assert online.is_enabled("new-checkout", CONTEXT) is False  # the server's, newer
        assert online.ruleset_version == stopped_flagship.ruleset_version()


def test_server_refusing__retries_bounded_by_backoff__evaluations_make_no_request(
    flagship: LiveServer,
) -> None:
    """Given a ready client whose server then refuses every connection, when the host evaluates
    50 000 times over 2 s, then the connections reaching the server's address stay a handful
    (backoff, max 0.5 s here), never one per evaluation."""
    with client_for(flagship.proxy_url, flagship.server_key, poll_interval=0.2) as client:
        assert client.wait_until_ready(timeout=10)
        proxy = flagship.proxy
        assert proxy is not None
        flagship.stop()  # the proxy stays: every connection is accepted, then reset
        wait_for(lambda: client.status == ClientStatus.STALE, 10, "STALE")
        before = proxy.attempts

        evaluations = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline or evaluations < 50_000:
            assert client.is_enabled("new-checkout", CONTEXT) is True
            evaluations += 1
        attempts = proxy.attempts - before

    print(f"{evaluations} evaluations, {attempts} connection attempts while refused")  # noqa: T201
    # Two loops (stream reconnects, ruleset polls) with delays ~U(0, 0.5 s): ~8 per second each.
    assert 1 <= attempts <= 60


def test_remote_mode__client_key_evaluates_on_the_server__cached__last_answer_when_down(
    flagship: LiveServer,
) -> None:
    """Given a client key, then remote evaluation through /api/v1/evaluate, cached per context;
    a hidden flag is not found; when the server dies, the last answer for a context is served,
    a new context gets the default."""
    with client_for(flagship.proxy_url, flagship.client_key, remote_cache_ttl=60.0) as cached:
        assert cached.mode == "remote"
        assert cached.is_enabled("new-checkout", CONTEXT) is True
        assert cached.wait_until_ready(timeout=5) is True
        assert cached.get_string("banner-text", "fallback", CONTEXT) == SALE
        hidden = cached.evaluate("server-only", True, CONTEXT)
        assert (hidden.value, hidden.error_code) == (True, "FLAG_NOT_FOUND")
        requests = cached.requests
        for _ in range(1000):
            assert cached.is_enabled("new-checkout", CONTEXT) is True
        assert cached.requests == requests  # answered from the cache

    # No cache (TTL 0): every evaluation asks, so the outage is met at once.
    with client_for(flagship.proxy_url, flagship.client_key, remote_cache_ttl=0.0) as client:
        assert client.is_enabled("new-checkout", CONTEXT) is True

        flagship.stop()

        assert client.is_enabled("new-checkout", CONTEXT, default=False) is True  # last answer
        other = client.evaluate("new-checkout", False, {"targetingKey": "someone-else"})
        assert other.value is False
        assert other.error_code == "GENERAL"
        requests = client.requests
        for _ in range(1000):  # the circuit breaker: no request per evaluation while down
            assert client.is_enabled("new-checkout", CONTEXT, default=False) is True
        assert client.requests - requests <= 5


def test_remote_mode__stream_invalidates_the_cache(flagship: LiveServer) -> None:
    """Given a remote client with a long cache, when the flag changes, the stream drops the
    cached answer and the next evaluation asks the server again."""
    with client_for(flagship.base_url, flagship.client_key, remote_cache_ttl=60.0) as client:
        assert client.is_enabled("new-checkout", CONTEXT) is True

        flagship.toggle("new-checkout", enabled=False)

        wait_for(
            lambda: client.is_enabled("new-checkout", CONTEXT) is False,
            10,
            "the stream to invalidate the cached answer",
        )


def test_evaluation_counts__reach_the_server_and_are_stored(flagship: LiveServer) -> None:
    """Given a local client that evaluated flags, when it closes, then its counts are stored."""
    hour = datetime.now(UTC).strftime("%Y-%m-%d %H:00:00")
    with client_for(flagship.base_url, flagship.server_key) as client:
        assert client.wait_until_ready(timeout=10)
        for _ in range(5):
            client.is_enabled("new-checkout", CONTEXT)
        for _ in range(3):
            client.get_string("banner-text", "fallback", CONTEXT)
        client.evaluate("no-such-flag", False, CONTEXT)  # counted, then ignored by the server
    # close() flushed the counts (POST /api/v1/sdk/evaluations).

    stored = flagship.evaluation_counts()
    if datetime.now(UTC).strftime("%Y-%m-%d %H:00:00") != hour:  # crossed an hour: compare sums
        assert sum(stored.values()) == 8
        return
    assert stored == {("new-checkout", "on", hour): 5, ("banner-text", "sale", hour): 3}
