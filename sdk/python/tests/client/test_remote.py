"""Remote mode (client keys): POST /api/v1/evaluate, the answer cache, the circuit breaker."""

from __future__ import annotations

import random
import threading

import pytest

from flagship_sdk import ClientStatus, FlagShipClient
from flagship_sdk.client.transport import Backoff

from .conftest import ClientFactory, status_of, wait_for
from .fake_server import (
    CLIENT_KEY,
    FakeServer,
    boolean_flag,
    free_port,
    ruleset_document,
    value_flag,
)

RULES = {
    "feature": boolean_flag(
        True,
        rules=[
            {
                "id": "nl",
                "conditions": [{"attribute": "country", "operator": "in", "values": ["NL"]}],
                "serve": {"variant": "off"},
            }
        ],
    ),
    "banner": value_flag("string", "hello"),
    "limit": value_flag("number", 3),
}


class _Ceiling(random.Random):
    """Full jitter at its ceiling: the breaker stays open for exactly the backoff."""

    def uniform(self, a: float, b: float) -> float:
        return b


def remote(make_client: ClientFactory, **options: object) -> FlagShipClient:
    return make_client(sdk_key=CLIENT_KEY, **options)


def test_auto_mode_uses_remote_for_client_keys(
    make_client: ClientFactory, server: FakeServer
) -> None:
    server.set_ruleset(ruleset_document(3, RULES))
    client = remote(make_client, remote_cache_ttl=60, stream=False)
    assert client.mode == "remote"
    assert client.wait_until_ready(5)
    assert client.data_source == "server"
    assert status_of(client) == ClientStatus.READY
    assert client.ruleset_version == 3
    assert client.is_enabled("feature", {"targetingKey": "a", "country": "DE"}) is True
    details = client.evaluate("feature", True, {"country": "NL", "targetingKey": "a"})
    assert (details.value, details.variant, details.reason, details.rule, details.version) == (
        False,
        "off",
        "TARGETING_MATCH",
        "nl",
        3,
    )
    assert client.get_string("banner", "x") == "hello"
    assert client.get_number("limit", 0) == 3
    assert client.get_json("banner", None) == "hello"
    assert client.get_string("limit", "x") == "x"
    assert client.evaluate("limit", "x", kind="string").error_code == "TYPE_MISMATCH"
    assert client.evaluate("missing", 1).error_code == "FLAG_NOT_FOUND"
    assert client.evaluate("feature", 1, context=5).error_code == "INVALID_CONTEXT"  # type: ignore[arg-type]
    assert client.evaluate("feature", 1, {"x": object()}).error_code == "INVALID_CONTEXT"
    everything = client.evaluate_all({"targetingKey": "a"})
    assert sorted(everything) == ["banner", "feature", "limit"]
    assert everything["feature"].value is True
    assert client.evaluate_all(5) == {}  # type: ignore[arg-type]
    assert client.evaluate_all({"x": float("nan")}) == {}
    # The probe (empty context) and three distinct contexts: the cache answered the rest.
    assert server.request_count("/api/v1/evaluate") == 4
    assert server.contexts[1] == {"country": "DE", "targetingKey": "a"}


def test_cache_ttl(make_client: ClientFactory, server: FakeServer) -> None:
    client = remote(make_client, remote_cache_ttl=0.05, stream=False)
    assert client.wait_until_ready(5)
    context = {"targetingKey": "a"}
    client.is_enabled("feature", context)
    client.is_enabled("feature", context)
    first = server.request_count("/api/v1/evaluate")
    assert threading.Event().wait(0.1) is False  # let the answer expire
    client.is_enabled("feature", context)
    assert server.request_count("/api/v1/evaluate") == first + 1


def test_circuit_breaker(make_client: ClientFactory, server: FakeServer) -> None:
    client = remote(make_client, remote_cache_ttl=0, stream=False, max_backoff=60)
    assert client.wait_until_ready(5)
    client._breaker_backoff = Backoff(60, 60, _Ceiling())
    known = {"targetingKey": "known"}
    assert client.is_enabled("feature", known) is True
    server.evaluate_mode = "500"
    before = server.request_count("/api/v1/evaluate")
    assert client.is_enabled("feature", known) is True  # the failure serves the last answer
    assert status_of(client) == ClientStatus.STALE
    for _ in range(100):
        assert client.is_enabled("feature", known) is True
        details = client.evaluate("feature", "d", {"targetingKey": "new"})
        assert (details.value, details.error_code) == ("d", "GENERAL")
    assert client.evaluate_all({"targetingKey": "new"}) == {}
    assert server.request_count("/api/v1/evaluate") == before + 1  # the breaker is open
    server.evaluate_mode = "ok"
    assert client.refresh() is True  # closes the breaker
    assert status_of(client) == ClientStatus.READY
    assert client.evaluate("feature", "d", {"targetingKey": "new"}).value is True


@pytest.mark.parametrize("mode", ["malformed", "reset"])
def test_bad_remote_answers(make_client: ClientFactory, server: FakeServer, mode: str) -> None:
    client = remote(make_client, stream=False)
    assert client.wait_until_ready(5)
    server.evaluate_mode = mode
    client._breaker_backoff = Backoff(60, 60, _Ceiling())
    assert client.refresh() is False
    details = client.evaluate("feature", "d", {"targetingKey": "z"})
    assert (details.value, details.error_code) == ("d", "GENERAL")


def test_remote_server_down_at_start(make_client: ClientFactory) -> None:
    down = FakeServer(free_port())
    client = remote(make_client, base_url=down.url)
    assert client.wait_until_ready(0.05) is False
    assert client.evaluate("feature", "d").error_code == "GENERAL"
    down.start()
    try:
        assert client.wait_until_ready(5)
    finally:
        down.stop()


def test_stream_invalidates_the_cache(make_client: ClientFactory, server: FakeServer) -> None:
    client = remote(make_client, remote_cache_ttl=60)
    assert client.wait_until_ready(5)
    assert server.wait_streams(1)
    context = {"targetingKey": "a"}
    assert client.is_enabled("feature", context) is True
    server.set_ruleset(ruleset_document(2, {"feature": boolean_flag(False)}))
    assert wait_for(lambda: client.is_enabled("feature", context) is False)
    assert client.ruleset_version == 2


def test_error_codes_from_the_server(make_client: ClientFactory, server: FakeServer) -> None:
    client = remote(make_client, remote_cache_ttl=60, stream=False)
    assert client.wait_until_ready(5)
    served = {"value": None, "variant": None, "reason": "ERROR", "error_code": "GENERAL"}
    details = client._remote_flag("k", "d", served, 1, None)
    assert (details.value, details.error_code) == ("d", "GENERAL")
    odd = client._remote_flag("k", "d", {"value": 1, "variant": 2, "rule": 3}, None, None)
    assert (odd.value, odd.variant, odd.rule, odd.reason) == (1, None, None, "DEFAULT")
