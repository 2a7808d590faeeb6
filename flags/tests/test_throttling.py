"""The evaluation and stream rate limits, at their production defaults, on a simulated clock.

The test settings turn every default off; ``production_rates`` puts the settings back the way
production leaves them (unset, so ``flags.conf.RATE_DEFAULTS`` applies), and ``clock`` replaces
the process's limiter with one on a clock the test moves, so seconds pass without sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings

from accounts.models import ApiKey
from flags import conf
from flags.evaluation import throttling
from flags.models import Environment, Flag, Project

from .caching import caching
from .evaluation_data import build_flags, issue

START = 1_860_000_000.0  # a minute boundary, so every count below falls in one window
STREAM = "/api/v1/stream"
ONE_ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.20"


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    with caching():
        yield


@pytest.fixture
def production_rates(settings: Any) -> None:
    """Every rate setting as production leaves it: unset, with the defaults on."""
    settings.FLAGSHIP_DEFAULT_RATES_ON = True
    for name in [*conf.RATE_DEFAULTS, conf.EVALUATION_RATE]:
        setattr(settings, name, None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttling, "limiter", throttling.BatchedLimiter(clock=clock))
    return clock


def lookup() -> str:
    """A key's lookup no other test (or earlier run) has counted."""
    return uuid.uuid4().hex[:12]


def drive(
    clock: Clock, key: str, kind: str, address: str | None, *, per_second: int, seconds: float
) -> list[int | None]:
    """``per_second`` evaluations of ``key`` spread evenly over ``seconds``: each answer."""
    count = int(per_second * seconds)
    answers = []
    for index in range(count):
        clock.now = START + index / per_second
        answers.append(throttling.allow(key, kind, address))
    return answers


def test_rates__production_settings__the_defaults_table(production_rates: None) -> None:
    assert {name: conf.rate(name) for name in conf.RATE_DEFAULTS} == conf.RATE_DEFAULTS
    assert conf.rate(conf.SERVER_KEY_RATE) == "1200000/m"


def test_rates__deprecated_evaluation_rate__stands_for_unset_key_rates(
    production_rates: None, settings: Any
) -> None:
    settings.FLAGSHIP_EVALUATION_RATE = "6000/m"
    settings.FLAGSHIP_CLIENT_KEY_RATE = "50/s"

    assert conf.rate(conf.SERVER_KEY_RATE) == "6000/m"
    assert conf.rate(conf.CLIENT_KEY_RATE) == "50/s"
    assert conf.rate(conf.CLIENT_ADDRESS_RATE) == "1200/m"


def test_server_key__2000_per_second_at_the_defaults__never_refused(
    production_rates: None, clock: Clock
) -> None:
    answers = drive(clock, lookup(), "server", ONE_ADDRESS, per_second=2000, seconds=10)

    assert answers.count(None) == 20_000


def test_server_key__2000_per_second_at_the_former_default__refused(
    production_rates: None, clock: Clock, settings: Any
) -> None:
    # Issue 11 as found: 6000/m per key refused most of one backend's traffic.
    settings.FLAGSHIP_EVALUATION_RATE = "6000/m"

    answers = drive(clock, lookup(), "server", ONE_ADDRESS, per_second=2000, seconds=5)

    assert answers.count(None) == 6000  # the first 3 seconds; then refused for the minute's rest
    assert all(answer is not None and 55 <= answer <= 57 for answer in answers[6000:])


def test_client_key__one_address_over_its_rate__refused_while_another_is_served(
    production_rates: None, clock: Clock
) -> None:
    key = lookup()

    flood = drive(clock, key, "client", ONE_ADDRESS, per_second=100, seconds=15)
    other = throttling.allow(key, "client", OTHER_ADDRESS)

    assert flood[:1200] == [None] * 1200  # FLAGSHIP_CLIENT_ADDRESS_RATE, exactly
    assert all(answer is not None and 45 <= answer <= 48 for answer in flood[1200:])
    assert other is None
    clock.now = START + 60  # the next window
    assert throttling.allow(key, "client", ONE_ADDRESS) is None


def test_client_key__address_that_stands_for_many__limited_only_per_key(
    production_rates: None, clock: Clock
) -> None:
    answers = drive(clock, lookup(), "client", None, per_second=200, seconds=10)

    assert answers.count(None) == 2000


def test_client_key__sparse_addresses__no_shared_cache_round_trip_for_them(
    production_rates: None, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[str] = []

    def shared_count(name: str, amount: int, period: int) -> int:
        reported.append(name)
        return amount

    monkeypatch.setattr(throttling, "shared_count", shared_count)
    key = lookup()

    for second in range(30):  # a new address every second, each asking a few times
        clock.now = START + second
        for _ in range(3):
            assert throttling.allow(key, "client", f"203.0.113.{second}") is None

    assert [name for name in reported if "address" in name] == []
    assert 0 < len(reported) <= 30  # the key's own counter: about once a second


@pytest.mark.parametrize(
    ("remote_addr", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", None),  # the reverse proxy on the same machine
        ("10.1.2.3", None),  # a load balancer or private network
        ("192.168.1.9", None),
        ("fd00::1", None),
        ("not an address", None),
        ("", None),
    ],
)
def test_client_address__remote_addr__counted_unless_it_stands_for_many(
    remote_addr: str, counted_as: str | None
) -> None:
    class Request:
        META = {"REMOTE_ADDR": remote_addr}

    assert throttling.client_address(Request()) == counted_as  # type: ignore[arg-type]  # META only


def test_stream__server_key__not_limited_per_address(production_rates: None, clock: Clock) -> None:
    key = lookup()

    answers = [throttling.allow_stream(key, "server", ONE_ADDRESS) for _ in range(500)]

    assert answers.count(None) == 500


# --- Through HTTP ------------------------------------------------------------------------------


@pytest.fixture
def flags(project: Project, staging: Environment) -> dict[str, Flag]:
    return build_flags(project, staging)


def test_stream__connection_flood_from_one_address_at_the_defaults__429(
    client: Client, staging: Environment, production_rates: None, clock: Clock
) -> None:
    secret = issue(staging, ApiKey.Kind.CLIENT)

    def connect(address: str) -> Any:
        return client.get(f"{STREAM}?key={secret}", REMOTE_ADDR=address)

    statuses = [connect(ONE_ADDRESS).status_code for _ in range(121)]
    refused = connect(ONE_ADDRESS)
    elsewhere = connect(OTHER_ADDRESS)

    assert statuses == [200] * 120 + [429]  # FLAGSHIP_STREAM_ADDRESS_RATE: 120/m
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert refused["Retry-After"] == "60"
    assert refused.json()["code"] == "rate_limited"
    assert elsewhere.status_code == 200


@override_settings(FLAGSHIP_CLIENT_ADDRESS_RATE="3/h")
def test_evaluation__client_key_over_its_address_rate__429_problem_details(
    client: Client, flags: dict[str, Flag], staging: Environment
) -> None:
    secret = issue(staging, ApiKey.Kind.CLIENT)

    def evaluate(address: str) -> Any:
        return client.post(
            "/api/v1/evaluate",
            data="{}",
            content_type="application/json",
            headers={"X-API-Key": secret},
            REMOTE_ADDR=address,
        )

    served = [evaluate(ONE_ADDRESS).status_code for _ in range(3)]  # full path, then fast path
    limited = evaluate(ONE_ADDRESS)
    elsewhere = evaluate(OTHER_ADDRESS)

    assert served == [200, 200, 200]
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited["Retry-After"]) <= 3600
    body = limited.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert body["detail"].startswith("Request was throttled.")
    assert elsewhere.status_code == 200
