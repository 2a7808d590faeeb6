"""The public API: typed getters, error codes, listeners, close, thread safety, bad input."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from flagship_sdk import ClientEvent, ClientStatus, EvaluationDetails, FlagShipClient
from flagship_sdk.client import client as client_module

from .conftest import ClientFactory, sdk_threads, status_of, wait_for
from .fake_server import FakeServer, boolean_flag, free_port, ruleset_document, value_flag

FLAGS = {
    "on": boolean_flag(True),
    "text": value_flag("string", "hello"),
    "int": value_flag("number", 3),
    "float": value_flag("number", 2.5),
    "object": value_flag("json", {"a": [1]}),
    "json-text": value_flag("json", "raw"),
    "off": {**boolean_flag(True), "enabled": False},
}


@pytest.fixture
def local(make_client: ClientFactory) -> FlagShipClient:
    return make_client(offline=True, bootstrap=ruleset_document(9, FLAGS))


def test_typed_getters(local: FlagShipClient) -> None:
    assert local.is_enabled("on") is True
    assert local.is_enabled("off", default=True) is False
    assert local.get_string("text", "d") == "hello"
    assert local.get_number("int", 0) == 3
    assert local.get_number("float", 0) == 2.5
    assert local.get_json("object", None) == {"a": [1]}
    assert local.get_json("json-text", None) == "raw"


@pytest.mark.parametrize(
    ("getter", "key", "default"),
    [
        ("is_enabled", "text", True),
        ("get_string", "on", "d"),
        ("get_number", "on", 7),  # a boolean is not a number
        ("get_number", "text", 7),
        ("get_json", "text", {"d": 1}),
        ("get_string", "json-text", "d"),  # json kind, str value: the value's type decides
    ],
)
def test_type_mismatch_returns_the_default(
    local: FlagShipClient, getter: str, key: str, default: Any
) -> None:
    if getter == "is_enabled":
        assert local.is_enabled(key, None, default) is default
        return
    value = getattr(local, getter)(key, default)
    if key == "json-text":
        assert value == "raw"
        return
    assert value == default


@pytest.mark.parametrize(
    ("kind", "key", "error"),
    [
        ("boolean", "on", None),
        ("boolean", "text", "TYPE_MISMATCH"),
        ("string", "int", "TYPE_MISMATCH"),
        ("number", "on", "TYPE_MISMATCH"),
        ("number", "float", None),
        ("json", "text", "TYPE_MISMATCH"),
        ("json", "json-text", None),
    ],
)
def test_evaluate_with_a_kind(
    local: FlagShipClient, kind: client_module.Kind, key: str, error: str | None
) -> None:
    details = local.evaluate(key, "default", kind=kind)
    assert details.error_code == error
    if error is not None:
        assert (details.value, details.reason, details.variant) == ("default", "ERROR", None)
        assert details.error_message
        assert details.version == 9


def test_error_codes(local: FlagShipClient) -> None:
    missing = local.evaluate("missing", "d")
    assert (missing.value, missing.reason, missing.error_code) == ("d", "ERROR", "FLAG_NOT_FOUND")
    bad_context = local.evaluate("on", "d", context=[1])  # type: ignore[arg-type]
    assert (bad_context.value, bad_context.error_code) == ("d", "INVALID_CONTEXT")
    # A static flag does not read the context: is_enabled serves it whatever the context is.
    assert local.is_enabled("on", context=5) is True  # type: ignore[arg-type]
    unhashable = local.evaluate(["x"], "d")  # type: ignore[arg-type]
    assert (unhashable.key, unhashable.error_code) == ("['x']", "FLAG_NOT_FOUND")
    everything = local.evaluate_all(context=5)  # type: ignore[arg-type]
    assert {d.error_code for d in everything.values()} == {"INVALID_CONTEXT"}
    details = local.evaluate_all({"targetingKey": "u"})
    assert details["off"] == EvaluationDetails(
        key="off", value=False, variant="off", reason="DISABLED", version=9
    )
    assert local.evaluate("off", True) is local.evaluate("off", True)  # cached details


def test_broken_engine_never_raises(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(offline=True, bootstrap=ruleset_document(1, FLAGS))

    class Broken:
        version = 1

        def evaluate(self, *args: Any) -> Any:
            raise RuntimeError("boom")

        evaluate_all = evaluate

    client._ruleset = Broken()  # type: ignore[assignment]
    assert client.is_enabled("on", default=True) is True
    assert client.get_string("text", "d") == "d"
    assert client.get_number("int", 1) == 1
    assert client.get_json("object", None) is None
    details = client.evaluate("on", "d")
    assert (details.value, details.error_code) == ("d", "GENERAL")
    assert client.evaluate_all() == {}
    assert "evaluation_failed" in caplog.text


def test_listeners(
    make_client: ClientFactory, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    assert client.wait_until_ready(5)
    assert server.wait_streams(1)
    received: list[ClientEvent] = []

    def failing(event: ClientEvent) -> None:
        raise ValueError("listener bug")

    client.add_listener(failing)
    unsubscribe = client.add_listener(received.append)
    server.set_ruleset(ruleset_document(2))
    assert wait_for(lambda: any(e.type == "changed" for e in received))
    assert received[-1] == ClientEvent("changed", 2, None, ())
    assert "listener_failed" in caplog.text
    unsubscribe()
    unsubscribe()  # twice is fine
    server.set_ruleset(ruleset_document(3))
    assert wait_for(lambda: client.ruleset_version == 3)
    assert [e.version for e in received] == [2]


def test_segment_change_reports_unknown_flags(
    make_client: ClientFactory, server: FakeServer
) -> None:
    client = make_client()
    changes: list[ClientEvent] = []
    client.add_listener(lambda e: changes.append(e) if e.type == "changed" else None)
    assert client.wait_until_ready(5)
    document = ruleset_document(2)
    document["segments"] = {"s": {"conditions": []}}
    server.set_ruleset(document, push=False)
    assert client.refresh()
    assert changes[-1].flags_changed is None
    assert changes[-1].version == 2


def test_close_is_idempotent_and_joins_threads(
    make_client: ClientFactory, server: FakeServer
) -> None:
    before = set(sdk_threads())
    client = make_client(send_evaluation_counts=True)
    assert client.wait_until_ready(5)
    assert server.wait_streams(1)
    started = set(sdk_threads()) - before
    assert {t.name for t in started} == {
        "flagship-sdk-sync",
        "flagship-sdk-stream",
        "flagship-sdk-counts",
    }
    assert all(t.daemon for t in started)
    client.close()
    client.close()
    assert not any(t.is_alive() for t in started)
    assert status_of(client) == ClientStatus.CLOSED
    assert client.is_enabled("on") is False  # still answers from memory
    assert client.is_enabled("feature") is True
    assert client.refresh() is False


def test_context_manager_and_wait_after_close(make_client: ClientFactory) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with make_client(base_url=url) as client:
        assert client.status == ClientStatus.NOT_READY
    assert client.wait_until_ready() is False  # closed: returns at once
    assert status_of(client) == ClientStatus.CLOSED


def test_bad_settings_never_raise(
    make_client: ClientFactory, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(base_url="ftp://nowhere")
    assert client.wait_until_ready(0) is False
    assert client.refresh() is False
    client = make_client(sdk_key=None)
    assert client.mode == "local"
    client = make_client(mode="sideways", stream=False)
    assert client.mode == "local"
    assert client.wait_until_ready(5)
    assert "invalid_mode" in caplog.text
    assert "invalid_base_url" in caplog.text
    assert not make_client(base_url=123).ready
    remote_bootstrap = make_client(mode="remote", bootstrap=ruleset_document(1), stream=False)
    assert remote_bootstrap.mode == "remote"
    assert "bootstrap_ignored" in caplog.text


def test_many_threads_evaluate_during_swaps(make_client: ClientFactory, server: FakeServer) -> None:
    client = make_client(stream=False, send_evaluation_counts=True, counts_interval=60)
    assert client.wait_until_ready(5)
    errors: list[BaseException] = []
    stop = threading.Event()
    seen: set[Any] = set()

    def evaluate() -> None:
        try:
            while not stop.is_set():
                for _ in range(20):
                    seen.add(client.is_enabled("feature"))
                    details = client.evaluate("feature", None)
                    assert details.error_code is None
                assert isinstance(client.evaluate_all()["feature"].value, bool)
                stop.wait(0.0005)  # leave the swapping thread some room
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=evaluate) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        for version in range(2, 22):
            document = ruleset_document(version, {"feature": boolean_flag(version % 2 == 0)})
            server.set_ruleset(document, push=False)
            assert client.refresh(timeout=5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert seen == {True, False}
    assert client.ruleset_version == 21


def test_logger_can_be_given(make_client: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("my.flags")
    client = make_client(offline=True, logger=logger)
    assert not client.ready
    assert any(r.name == "my.flags" for r in caplog.records)


def test_start_failure_is_logged(
    make_client: ClientFactory,
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(client_module, "StreamFollower", refuse)
    client = make_client()
    assert "start_failed" in caplog.text
    assert client.wait_until_ready(5)  # the synchronisation thread did start
