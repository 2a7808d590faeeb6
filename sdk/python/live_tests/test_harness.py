"""The harness itself: a real server that stops, starts, changes flags and stores counts."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from .harness import LiveServer, wait_for


def test_live_server__serves_the_seeded_ruleset_and_survives_a_restart(
    flagship: LiveServer,
) -> None:
    ruleset = flagship.ruleset()
    assert ruleset.status == 200
    assert set(ruleset.body["flags"]) == {"new-checkout", "banner-text", "server-only"}
    port, version = flagship.port, ruleset.body["version"]

    flagship.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{flagship.base_url}/healthz", timeout=1)  # noqa: S310
    flagship.start()

    assert flagship.port == port
    assert flagship.ruleset_version() == version  # same database file


def test_management_helpers__change_the_ruleset(flagship: LiveServer) -> None:
    before = flagship.ruleset_version()

    after_toggle = flagship.toggle("new-checkout", enabled=False)
    after_default = flagship.set_default_variant("banner-text", "none")

    assert before < after_toggle < after_default
    flags = flagship.ruleset().body["flags"]
    assert flags["new-checkout"]["enabled"] is False
    assert flags["banner-text"]["default_serve"] == {"variant": "none"}


def test_proxy__forwards_then_refuses_when_severed(flagship: LiveServer) -> None:
    url = f"{flagship.proxy_url}/healthz"
    with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
        assert answer.status == 200
    proxy = flagship.proxy
    assert proxy is not None
    assert (proxy.attempts, proxy.accepted) == (1, 1)

    flagship.stop()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, timeout=2)  # noqa: S310
    assert (proxy.attempts, proxy.accepted) == (2, 1)

    proxy.sever()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)  # noqa: S310
    assert proxy.attempts == 2  # refused by the closed listener: never reached the proxy


def test_counts_endpoint__stores_in_the_sqlite_file(flagship: LiveServer) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body = {
        "counts": [
            {
                "flag": "new-checkout",
                "variant": "on",
                "hour": f"{hour:%Y-%m-%dT%H:00:00Z}",
                "count": 3,
            }
        ]
    }

    answer = flagship.request("POST", "/api/v1/sdk/evaluations", body, key=flagship.client_key)

    assert answer.status == 202, answer.body
    counts = wait_for(flagship.evaluation_counts, 5, "the count to be stored")
    assert list(counts.values()) == [3]
