"""Local mode against a real HTTP server: readiness, stream, polling, failures, backup..."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from flagship_sdk import ClientEvent, ClientStatus, FlagShipClient
from flagship_sdk.client import sse
from flagship_sdk.client.store import compile_snapshot, write_backup

from .conftest import ClientFactory, sdk_threads, status_of, wait_for
from .fake_server import SERVER_KEY, FakeServer, boolean_flag, free_port, ruleset_document


def events_of(client: FlagShipClient) -> list[ClientEvent]:
    received: list[ClientEvent] = []
    client.add_listener(received.append)
    return received


def test_ready_from_server(make_client: ClientFactory, server: FakeServer) -> None:
    client = make_client()
    assert client.wait_until_ready(5)
    assert client.ready
    assert status_of(client) == ClientStatus.READY
    assert client.data_source == "server"
    assert client.ruleset_version == 1
    assert client.is_enabled("feature") is True
    details = client.evaluate("feature", False, {"targetingKey": "u"})
    assert (details.value, details.variant, details.reason, details.version) == (
        True,
        "on",
        "STATIC",
        1,
    )
    _, _, headers = server.requests[0]
    assert headers["X-API-Key"] == SERVER_KEY
    assert headers["User-Agent"].startswith("flagship-python/")


def test_server_down_at_start_then_up(make_client: ClientFactory) -> None:
    down = FakeServer(free_port())
    client = make_client(base_url=down.url)
    received = events_of(client)
    assert client.is_enabled("feature") is False
    assert client.is_enabled("feature", default=True) is True
    details = client.evaluate("feature", "fallback")
    assert details.value == "fallback"
    assert details.error_code == "PROVIDER_NOT_READY"
    assert details.reason == "ERROR"
    assert not client.ready
    assert status_of(client) == ClientStatus.NOT_READY
    assert client.data_source == "none"
    assert client.ruleset_version is None
    assert client.evaluate_all() == {}
    assert client.wait_until_ready(0.1) is False
    assert wait_for(lambda: any(e.type == "error" for e in received))
    down.start()
    try:
        assert client.wait_until_ready(5)
        assert status_of(client) == ClientStatus.READY
        assert client.is_enabled("feature") is True
        assert any(e.type == "ready" for e in received)
    finally:
        down.stop()


def test_stream_event_downloads_new_version(make_client: ClientFactory, server: FakeServer) -> None:
    client = make_client()
    received = events_of(client)
    assert client.wait_until_ready(5)
    assert server.wait_streams(1)
    server.set_ruleset(ruleset_document(2, {"feature": boolean_flag(False), "new": boolean_flag()}))
    assert wait_for(lambda: client.ruleset_version == 2)
    assert client.is_enabled("feature") is False
    changed = [e for e in received if e.type == "changed"]
    assert changed[-1].version == 2
    assert changed[-1].flags_changed == ("feature", "new")
    # Events for a version already held, or of another type, download nothing; an event whose
    # version cannot be read downloads (a 304 here).
    before = server.request_count("/api/v1/ruleset")
    server.push_raw('id: 2\nevent: ruleset\ndata: {"version": 2}\n\n')
    server.push_raw("event: other\ndata: x\n\n")
    server.push_raw("event: ruleset\ndata: not json\n\n")
    assert wait_for(lambda: server.request_count("/api/v1/ruleset") >= before + 1)
    last = [h for _, path, h in server.requests if path == "/api/v1/ruleset"][-1]
    assert last["If-None-Match"] == '"2"'
    assert client.ruleset_version == 2


def test_server_down_later_keeps_last_ruleset(
    make_client: ClientFactory, server: FakeServer
) -> None:
    client = make_client()
    received = events_of(client)
    assert client.wait_until_ready(5)
    server.stop()
    assert client.refresh() is False
    assert status_of(client) == ClientStatus.STALE
    assert client.is_enabled("feature") is True
    assert client.ruleset_version == 1
    assert any(e.type == "stale" for e in received)
    server.start()
    assert client.refresh() is True
    assert status_of(client) == ClientStatus.READY
    assert received[-1].type == "ready"


def test_stream_cut_reconnects_and_catches_up(
    make_client: ClientFactory, server: FakeServer
) -> None:
    client = make_client()
    assert client.wait_until_ready(5)
    assert server.wait_streams(1)
    assert wait_for(lambda: client.streaming)
    server.stream_mode = "refuse"
    server.cut_streams()
    server.set_ruleset(ruleset_document(3), push=False)  # missed while the stream is down
    server.stream_mode = "ok"
    assert server.wait_connections(2)
    assert wait_for(lambda: client.ruleset_version == 3)
    # Reconnections send Last-Event-ID: the server then sends only what is newer.
    assert server.last_event_ids[1] in ("1", "3")


def test_stream_down_falls_back_to_polling(make_client: ClientFactory, server: FakeServer) -> None:
    server.stream_mode = "refuse"
    client = make_client(poll_interval=0.05)
    assert client.wait_until_ready(5)
    server.set_ruleset(ruleset_document(2), push=False)
    assert wait_for(lambda: client.ruleset_version == 2)
    assert status_of(client) == ClientStatus.READY
    assert server.request_count("/api/v1/stream") >= 1
    assert client.streaming is False


def test_an_announced_version_not_served_yet_is_asked_for_again(
    make_client: ClientFactory, server: FakeServer
) -> None:
    # A FlagShip process may apply a change milliseconds after the stream announced it: the
    # download then answers the older version, and the client must ask again.
    client = make_client()
    assert client.wait_until_ready(5)
    assert server.wait_streams(1)
    assert wait_for(lambda: client.streaming)
    before = server.request_count("/api/v1/ruleset")
    server.push_raw('id: 3\nevent: ruleset\ndata: {"version": 3, "etag": "\\"3\\""}\n\n')
    assert wait_for(lambda: server.request_count("/api/v1/ruleset") > before)
    assert client.ruleset_version == 1  # the answer was still version 1
    server.set_ruleset(ruleset_document(3), push=False)
    assert wait_for(lambda: client.ruleset_version == 3)


def test_polling_when_streaming_is_off(make_client: ClientFactory, server: FakeServer) -> None:
    client = make_client(stream=False, poll_interval=0.05)
    assert client.wait_until_ready(5)
    server.set_ruleset(ruleset_document(2), push=False)
    assert wait_for(lambda: client.ruleset_version == 2)
    assert server.request_count("/api/v1/stream") == 0


@pytest.mark.parametrize("mode", ["malformed", "uncompilable", "500", "slow", "reset"])
def test_bad_answers_keep_the_last_good_ruleset(
    make_client: ClientFactory, server: FakeServer, mode: str
) -> None:
    client = make_client(timeout=0.2)
    received = events_of(client)
    assert client.wait_until_ready(5)
    server.ruleset_mode = mode
    server.set_ruleset(ruleset_document(2, {"feature": boolean_flag(False)}))
    assert wait_for(lambda: client.status == ClientStatus.STALE)
    assert client.refresh() is False
    assert client.ruleset_version == 1
    assert client.is_enabled("feature") is True
    assert client.evaluate("feature", False).error_code is None
    assert any(e.type == "stale" for e in received)
    server.release.set()
    server.ruleset_mode = "ok"
    assert wait_for(lambda: client.ruleset_version == 2)
    assert status_of(client) == ClientStatus.READY
    assert client.is_enabled("feature") is False


def test_truncated_stream_is_survived(make_client: ClientFactory, server: FakeServer) -> None:
    server.stream_mode = "truncated"
    client = make_client()
    assert client.wait_until_ready(5)
    assert wait_for(lambda: server.request_count("/api/v1/stream") >= 3)
    assert client.ruleset_version == 1  # the half event ("id: 9") was not applied
    server.stream_mode = "ok"
    assert server.wait_streams(1)
    server.set_ruleset(ruleset_document(4))
    assert wait_for(lambda: client.ruleset_version == 4)


def test_silent_stream_is_dropped_and_reopened(
    make_client: ClientFactory, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "SILENCE_LIMIT", 0.1)
    server.stream_mode = "silent"
    client = make_client()
    assert client.wait_until_ready(5)
    assert server.wait_connections(2)


def test_stream_retry_field_spaces_reconnections(
    make_client: ClientFactory, server: FakeServer
) -> None:
    server.retry_ms = 50
    client = make_client()
    assert client.wait_until_ready(5)
    assert server.wait_streams(1)
    server.cut_streams()
    assert server.wait_connections(2)


def test_no_request_storm_while_the_server_refuses(make_client: ClientFactory) -> None:
    refusing = FakeServer().start()
    refusing.ruleset_mode = refusing.stream_mode = "reset"
    try:
        client = make_client(base_url=refusing.url, max_backoff=0.2)
        stop = threading.Event()
        evaluations = 0
        while not stop.wait(0.001) and evaluations < 2000:
            for _ in range(10):
                client.is_enabled("feature")
                client.evaluate("feature", False)
            evaluations += 10
        assert not client.ready
        # One second of failures: the backoff (up to 0.2 s, jittered) bounds the attempts.
        stop.wait(1.0)
        requests = refusing.request_count()
        assert requests <= 60, refusing.paths()
        assert refusing.request_count("/api/v1/ruleset") >= 2  # it does keep trying
    finally:
        refusing.stop()


def test_bootstrap_offline_makes_no_request(
    make_client: ClientFactory, server: FakeServer, tmp_path: Path
) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(ruleset_document(7)), encoding="utf-8")
    before = set(sdk_threads())
    client = make_client(offline=True, bootstrap=path, send_evaluation_counts=True)
    assert client.ready
    assert client.wait_until_ready(0)
    assert status_of(client) == ClientStatus.READY
    assert client.data_source == "bootstrap"
    assert client.ruleset_version == 7
    assert client.is_enabled("feature") is True
    assert client.refresh() is False
    client.close()
    assert set(sdk_threads()) == before
    assert server.requests == []


def test_offline_without_data(make_client: ClientFactory, server: FakeServer) -> None:
    client = make_client(offline=True)
    assert client.wait_until_ready(0) is False
    assert client.evaluate("feature", 1).error_code == "PROVIDER_NOT_READY"
    assert server.requests == []


def test_bootstrap_is_first_data_until_the_server_answers(
    make_client: ClientFactory, server: FakeServer
) -> None:
    server.ruleset_mode = "500"
    bootstrap = ruleset_document(0, {"feature": boolean_flag(False)})
    client = make_client(bootstrap=bootstrap)
    assert client.ready
    assert client.data_source == "bootstrap"
    assert client.is_enabled("feature") is False
    assert wait_for(lambda: client.status == ClientStatus.STALE)
    server.ruleset_mode = "ok"
    assert wait_for(lambda: client.data_source == "server")
    assert client.is_enabled("feature") is True
    first = next(h for _, path, h in server.requests if path == "/api/v1/ruleset")
    assert "If-None-Match" not in first


def test_invalid_bootstrap_is_logged(
    make_client: ClientFactory, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(offline=True, bootstrap={"format": 1, "version": -1, "flags": {}})
    assert not client.ready
    assert "bootstrap_invalid" in caplog.text
    client = make_client(offline=True, bootstrap="/nonexistent/flags.json")
    assert not client.ready


def test_backup_is_written_atomically(
    make_client: ClientFactory,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replaced: list[tuple[str, str]] = []
    synced: list[int] = []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_replace(source: Any, target: Any) -> None:
        replaced.append((str(source), str(target)))
        real_replace(source, target)

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", spy_replace)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    backup = tmp_path / "cache" / "flagship.json"
    client = make_client(backup_path=backup)
    assert client.wait_until_ready(5)
    assert wait_for(backup.exists)
    saved = json.loads(backup.read_text(encoding="utf-8"))
    assert saved["etag"] == '"1"'
    assert saved["version"] == 1
    assert saved["saved_at"].endswith("Z")
    assert saved["ruleset"] == server.document
    source, target = replaced[0]
    assert Path(source).parent == backup.parent
    assert target == str(backup)
    assert synced
    assert [p.name for p in backup.parent.iterdir()] == ["flagship.json"]


def test_backup_write_failure_is_logged(
    make_client: ClientFactory, server: FakeServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    client = make_client(backup_path=blocker / "backup.json")  # its parent is a file
    assert client.wait_until_ready(5)
    assert client.is_enabled("feature") is True


def test_backup_is_used_when_the_server_is_unreachable(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    backup = tmp_path / "flagship.json"
    write_backup(backup, compile_snapshot(ruleset_document(5), '"5"', "server"))
    down = FakeServer(free_port())
    client = make_client(base_url=down.url, backup_path=backup)
    received = events_of(client)
    assert client.wait_until_ready(5)
    assert status_of(client) == ClientStatus.STALE
    assert client.data_source == "backup"
    assert client.ruleset_version == 5
    assert client.is_enabled("feature") is True
    down.set_ruleset(ruleset_document(5), push=False)
    down.start()
    try:
        assert wait_for(lambda: client.data_source == "server")
        assert status_of(client) == ClientStatus.READY
        assert any(e.type == "ready" for e in received)
        first = next(h for _, path, h in down.requests if path == "/api/v1/ruleset")
        assert first["If-None-Match"] == '"5"'  # 304: the backup was current
    finally:
        down.stop()


def test_offline_uses_backup(make_client: ClientFactory, tmp_path: Path) -> None:
    backup = tmp_path / "flagship.json"
    write_backup(backup, compile_snapshot(ruleset_document(5), '"5"', "server"))
    client = make_client(offline=True, backup_path=backup)
    assert client.ready
    assert client.data_source == "backup"
    assert status_of(client) == ClientStatus.READY


@pytest.mark.parametrize("content", ["{not json", '{"ruleset": 3}', '{"ruleset": {"format": 9}}'])
def test_corrupt_backup_is_ignored(
    make_client: ClientFactory, tmp_path: Path, content: str
) -> None:
    backup = tmp_path / "flagship.json"
    backup.write_text(content, encoding="utf-8")
    client = make_client(offline=True, backup_path=backup)
    assert not client.ready


def test_backup_file_as_bootstrap(make_client: ClientFactory, tmp_path: Path) -> None:
    backup = tmp_path / "flagship.json"
    write_backup(backup, compile_snapshot(ruleset_document(6), '"6"', "server"))
    client = make_client(offline=True, bootstrap=backup)
    assert client.ruleset_version == 6
    assert client.data_source == "bootstrap"


def test_newer_backup_wins_over_bootstrap(make_client: ClientFactory, tmp_path: Path) -> None:
    backup = tmp_path / "flagship.json"
    write_backup(backup, compile_snapshot(ruleset_document(6), '"6"', "server"))
    down = FakeServer(free_port())
    client = make_client(base_url=down.url, backup_path=backup, bootstrap=ruleset_document(2))
    assert wait_for(lambda: client.data_source == "backup")
    assert client.ruleset_version == 6
