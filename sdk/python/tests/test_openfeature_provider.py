"""FlagShipProvider through the real OpenFeature SDK: types, reasons, errors, readiness, events.

Most tests use a client loaded offline from a bootstrap document; readiness and change events use
a small HTTP server on the loopback interface that serves ``GET /api/v1/ruleset`` like FlagShip.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import Reason
from openfeature.hook import Hook
from openfeature.provider import ProviderStatus

from flagship_sdk import ClientEvent, EvaluationDetails, FlagShipClient
from flagship_sdk.engine import Ruleset
from flagship_sdk.openfeature import _MISMATCH, FlagShipProvider, _client_context, _describe, _float

from .conftest import boolean_flag, document

SERVER_KEY = "fss_test_openfeature"
UNUSED_URL = "http://127.0.0.1:9"  # never contacted: offline clients make no request
WAIT = 5.0  # seconds a test waits for something asynchronous before failing


def string_flag(**overrides: Any) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "kind": "string",
        "variants": {"hello": "Hello", "hi": "Hi"},
        "enabled": True,
        "off_variant": "hi",
        "default_serve": {"variant": "hello"},
    }
    flag.update(overrides)
    return flag


def number_flag(value: int | float) -> dict[str, Any]:
    return {
        "kind": "number",
        "variants": {"value": value, "zero": 0},
        "enabled": True,
        "off_variant": "zero",
        "default_serve": {"variant": "value"},
    }


def json_flag(value: Any) -> dict[str, Any]:
    return {
        "kind": "json",
        "variants": {"value": value},
        "enabled": True,
        "off_variant": "value",
        "default_serve": {"variant": "value"},
    }


FLAGS: dict[str, Any] = {
    "static": boolean_flag(),
    "targeted": boolean_flag(
        rules=[
            {
                "id": "beta",
                "conditions": [
                    {"attribute": "email", "operator": "str_ends_with", "values": ["@example.com"]}
                ],
                "serve": {"variant": "on"},
            }
        ],
        default_serve={"variant": "off"},
    ),
    "by-user": boolean_flag(
        rules=[
            {
                "id": "user-1",
                "conditions": [
                    {"attribute": "targetingKey", "operator": "in", "values": ["user-1"]}
                ],
                "serve": {"variant": "on"},
            }
        ],
        default_serve={"variant": "off"},
    ),
    "admins": boolean_flag(
        rules=[
            {
                "id": "admins",
                "conditions": [{"attribute": "roles", "operator": "in", "values": ["admin"]}],
                "serve": {"variant": "on"},
            }
        ],
        default_serve={"variant": "off"},
    ),
    "launch": boolean_flag(
        rules=[
            {
                "id": "after-launch",
                "conditions": [
                    {
                        "attribute": "signup",
                        "operator": "date_after",
                        "values": ["2026-01-01T00:00:00Z"],
                    }
                ],
                "serve": {"variant": "on"},
            }
        ],
        default_serve={"variant": "off"},
    ),
    "disabled": boolean_flag(enabled=False),
    "child": boolean_flag(prerequisites=[{"flag": "disabled", "variants": ["on"]}]),
    "banner": string_flag(),
    "experiment": string_flag(
        default_serve={
            "split": [{"variant": "hello", "weight": 50_000}, {"variant": "hi", "weight": 50_000}]
        }
    ),
    "limit": number_flag(10),
    "ratio": number_flag(0.25),
    "settings": json_flag({"theme": "dark", "sizes": [1, 2]}),
    "steps": json_flag([1, 2, 3]),
    "json-text": json_flag("text"),
    "json-true": json_flag(True),
}
DOCUMENT = document(FLAGS, version=7)

_domains = itertools.count()


# Helpers ----------------------------------------------------------------------------------


def offline_client(doc: dict[str, Any] | None = None) -> FlagShipClient:
    return FlagShipClient(
        UNUSED_URL,
        SERVER_KEY,
        offline=True,
        bootstrap=doc if doc is not None else DOCUMENT,
        send_evaluation_counts=False,
    )


def register(provider: FlagShipProvider) -> OpenFeatureClient:
    """Register ``provider`` under a new domain with ``api.set_provider``; its client when set."""
    domain = f"flagship-test-{next(_domains)}"
    api.set_provider(provider, domain)
    client = api.get_client(domain)
    wait_for(lambda: client.get_provider_status() != ProviderStatus.NOT_READY)
    return client


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for a condition")
        time.sleep(0.005)


class Events:
    """Collects the provider events an OpenFeature client hears (handlers run on a pool)."""

    def __init__(self, client: OpenFeatureClient, *events: ProviderEvent) -> None:
        self.received: queue.Queue[tuple[ProviderEvent, EventDetails]] = queue.Queue()
        for event in events:
            client.add_handler(event, self._handler(event))

    def _handler(self, event: ProviderEvent) -> Callable[[EventDetails], None]:
        return lambda details: self.received.put((event, details))

    def next(self, timeout: float = WAIT) -> tuple[ProviderEvent, EventDetails]:
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("no provider event arrived")

    def none_within(self, seconds: float) -> bool:
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


class FakeFlagShip:
    """``GET /api/v1/ruleset`` (ETag, 304) and ``POST /api/v1/sdk/evaluations`` on 127.0.0.1."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = DOCUMENT
        self.status = 200
        self.requests: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with fake._lock:
                    fake.requests.append(f"GET {self.path}")
                    status, doc = fake.status, fake.document
                if self.headers.get("X-API-Key") != SERVER_KEY:
                    self._answer(401, b'{"code": "invalid_api_key"}')
                elif self.path != "/api/v1/ruleset":
                    self._answer(404, b'{"code": "not_found"}')
                elif status != 200:
                    self._answer(status, b'{"code": "internal_error"}')
                else:
                    etag = f'"{doc["version"]}"'
                    if self.headers.get("If-None-Match") == etag:
                        self._answer(304, b"", etag)
                    else:
                        self._answer(200, json.dumps(doc).encode(), etag)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with fake._lock:
                    fake.requests.append(f"POST {self.path}")
                self._answer(202, b'{"accepted": 0, "ignored": 0}')

            def _answer(self, status: int, body: bytes, etag: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if etag is not None:
                    self.send_header("ETag", etag)
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="fake-flagship", daemon=True
        )
        self._thread.start()

    def set(self, *, status: int | None = None, doc: dict[str, Any] | None = None) -> None:
        with self._lock:
            if status is not None:
                self.status = status
            if doc is not None:
                self.document = doc

    def client(self, **options: Any) -> FlagShipClient:
        return FlagShipClient(
            self.url,
            SERVER_KEY,
            stream=False,
            poll_interval=3600.0,
            send_evaluation_counts=False,
            timeout=2.0,
            max_backoff=0.5,
            **options,
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(WAIT)


# Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset_openfeature() -> Iterator[None]:
    yield
    api.clear_providers()


@pytest.fixture(scope="module")
def flagship() -> Iterator[FlagShipClient]:
    client = offline_client()
    assert client.ready
    yield client
    client.close()


@pytest.fixture
def of_client(flagship: FlagShipClient) -> OpenFeatureClient:
    return register(FlagShipProvider(flagship))


@pytest.fixture
def fake_server() -> Iterator[FakeFlagShip]:
    server = FakeFlagShip()
    yield server
    server.close()


# Packaging --------------------------------------------------------------------------------


def test_import_flagship_sdk__does_not_import_openfeature() -> None:
    code = (
        "import sys, flagship_sdk\n"
        "from flagship_sdk import FlagShipClient\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'openfeature'], 'imported'\n"
        "import flagship_sdk.openfeature\n"
        "assert 'openfeature' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603


def test_metadata_and_hooks__given__are_reported(flagship: FlagShipClient) -> None:
    hook = Hook()
    provider = FlagShipProvider(flagship, hooks=[hook])
    assert provider.get_metadata().name == "FlagShip"
    assert provider.get_provider_hooks() == [hook]
    assert provider.client is flagship
    assert api.get_provider_metadata() is not None


def test_constructor__client_and_options__is_refused(flagship: FlagShipClient) -> None:
    with pytest.raises(TypeError, match="not both"):
        FlagShipProvider(flagship, base_url=UNUSED_URL, sdk_key=SERVER_KEY)
    with pytest.raises(TypeError, match="base_url and sdk_key"):
        FlagShipProvider()


# Types and values -------------------------------------------------------------------------


def test_boolean__static_flag__true_with_reason_static(of_client: OpenFeatureClient) -> None:
    details = of_client.get_boolean_details("static", False)
    assert details.value is True
    assert details.reason == Reason.STATIC
    assert details.variant == "on"
    assert details.error_code is None
    assert details.flag_metadata["version"] == 7


def test_string__flag__value_and_variant(of_client: OpenFeatureClient) -> None:
    details = of_client.get_string_details("banner", "fallback")
    assert (details.value, details.variant, details.reason) == ("Hello", "hello", Reason.STATIC)
    assert of_client.get_string_value("banner", "fallback") == "Hello"


def test_integer__integer_flag__integer(of_client: OpenFeatureClient) -> None:
    details = of_client.get_integer_details("limit", 1)
    assert details.value == 10
    assert type(details.value) is int
    assert details.variant == "value"


def test_float__float_flag__float(of_client: OpenFeatureClient) -> None:
    details = of_client.get_float_details("ratio", 1.0)
    assert details.value == 0.25
    assert details.error_code is None


def test_float__integer_flag__converted_to_float(of_client: OpenFeatureClient) -> None:
    details = of_client.get_float_details("limit", 1.5)
    assert details.value == 10.0
    assert type(details.value) is float
    assert details.reason == Reason.STATIC
    assert details.error_code is None


def test_integer__float_flag__type_mismatch_and_default(of_client: OpenFeatureClient) -> None:
    details = of_client.get_integer_details("ratio", 3)
    assert details.value == 3
    assert details.reason == Reason.ERROR
    assert details.error_code == ErrorCode.TYPE_MISMATCH
    assert details.error_message is not None
    assert "float" in details.error_message


@pytest.mark.parametrize("kind", ["integer", "float"])
def test_number__boolean_flag__type_mismatch(of_client: OpenFeatureClient, kind: str) -> None:
    if kind == "integer":
        details: Any = of_client.get_integer_details("static", 5)
        assert details.value == 5
    else:
        details = of_client.get_float_details("static", 5.5)
        assert details.value == 5.5
    assert details.error_code == ErrorCode.TYPE_MISMATCH
    assert details.reason == Reason.ERROR


def test_boolean__string_flag__type_mismatch(of_client: OpenFeatureClient) -> None:
    details = of_client.get_boolean_details("banner", False)
    assert (details.value, details.error_code) == (False, ErrorCode.TYPE_MISMATCH)


def test_string__number_flag__type_mismatch(of_client: OpenFeatureClient) -> None:
    details = of_client.get_string_details("limit", "x")
    assert (details.value, details.error_code) == ("x", ErrorCode.TYPE_MISMATCH)


def test_object__json_object_and_array__returned(of_client: OpenFeatureClient) -> None:
    settings = of_client.get_object_details("settings", {})
    assert settings.value == {"theme": "dark", "sizes": [1, 2]}
    assert settings.reason == Reason.STATIC
    steps = of_client.get_object_details("steps", [])
    assert steps.value == [1, 2, 3]


def test_object__returned_value_changed__flag_unchanged(of_client: OpenFeatureClient) -> None:
    first = of_client.get_object_value("settings", {})
    assert isinstance(first, dict)
    first["theme"] = "light"
    first["sizes"].append(3)
    assert of_client.get_object_value("settings", {}) == {"theme": "dark", "sizes": [1, 2]}


@pytest.mark.parametrize("key", ["json-text", "json-true", "static", "limit"])
def test_object__not_an_object_or_array__type_mismatch(
    of_client: OpenFeatureClient, key: str
) -> None:
    details = of_client.get_object_details(key, {"default": True})
    assert details.value == {"default": True}
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_boolean__json_flag_holding_boolean__value(of_client: OpenFeatureClient) -> None:
    assert of_client.get_boolean_details("json-true", False).value is True


def test_async_resolution__boolean__same_answer(of_client: OpenFeatureClient) -> None:
    details = asyncio.run(of_client.get_boolean_details_async("static", False))
    assert details.value is True


# Reasons, variants, context ---------------------------------------------------------------


def test_boolean__attribute_matches_rule__targeting_match_with_rule(
    of_client: OpenFeatureClient,
) -> None:
    context = EvaluationContext("user-9", {"email": "ada@example.com"})
    details = of_client.get_boolean_details("targeted", False, context)
    assert (details.value, details.variant, details.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert details.flag_metadata["rule"] == "beta"


def test_boolean__no_rule_matches__default(of_client: OpenFeatureClient) -> None:
    details = of_client.get_boolean_details("targeted", True, EvaluationContext("user-9"))
    assert (details.value, details.variant, details.reason) == (False, "off", Reason.DEFAULT)
    assert "rule" not in details.flag_metadata


def test_boolean__disabled_flag__off_variant_disabled(of_client: OpenFeatureClient) -> None:
    details = of_client.get_boolean_details("disabled", True)
    assert (details.value, details.variant, details.reason) == (False, "off", Reason.DISABLED)


def test_boolean__prerequisite_failed__default_with_metadata(
    of_client: OpenFeatureClient,
) -> None:
    details = of_client.get_boolean_details("child", True)
    assert (details.value, details.variant, details.reason) == (False, "off", Reason.DEFAULT)
    assert details.flag_metadata["prerequisiteFailed"] is True
    assert details.error_code is None


def test_string__split__variant_of_the_targeting_key(of_client: OpenFeatureClient) -> None:
    ruleset = Ruleset.from_dict(DOCUMENT)
    variants = set()
    for user in ("user-1", "user-2", "user-3", "user-4", "user-5", "user-6"):
        expected = ruleset.evaluate("experiment", {"targetingKey": user})
        details = of_client.get_string_details("experiment", "x", EvaluationContext(user))
        assert details.reason == Reason.SPLIT
        assert (details.variant, details.value) == (expected.variant, expected.value)
        variants.add(details.variant)
    assert variants == {"hello", "hi"}


def test_context__targeting_key__is_the_targeting_key_attribute(
    of_client: OpenFeatureClient,
) -> None:
    assert of_client.get_boolean_value("by-user", False, EvaluationContext("user-1")) is True
    assert of_client.get_boolean_value("by-user", True, EvaluationContext("user-2")) is False
    # The targeting key wins over an attribute of the same name.
    context = EvaluationContext("user-1", {"targetingKey": "user-2"})
    assert of_client.get_boolean_value("by-user", False, context) is True


def test_context__attributes_of_client_and_invocation__merged(
    of_client: OpenFeatureClient,
) -> None:
    of_client.context = EvaluationContext(attributes={"email": "ada@example.com"})
    details = of_client.get_boolean_details("targeted", False, EvaluationContext("user-1"))
    assert details.reason == Reason.TARGETING_MATCH


def test_context__list_attribute__any_element_matches(of_client: OpenFeatureClient) -> None:
    context = EvaluationContext("u", {"roles": ["dev", "admin"]})
    assert of_client.get_boolean_value("admins", False, context) is True
    context = EvaluationContext("u", {"roles": ("dev",)})
    assert of_client.get_boolean_value("admins", True, context) is False


@pytest.mark.parametrize(
    ("signup", "expected"),
    [
        (datetime(2026, 3, 1, tzinfo=UTC), True),
        (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), False),
        (datetime(2026, 3, 1), True),  # noqa: DTZ001  # naive: taken as UTC
        (datetime(2025, 12, 31, 23, 59), False),  # noqa: DTZ001
    ],
)
def test_context__datetime_attribute__compared_as_instant(
    of_client: OpenFeatureClient, signup: datetime, expected: bool
) -> None:
    context = EvaluationContext("u", {"signup": signup})
    assert of_client.get_boolean_value("launch", not expected, context) is expected


# Errors -----------------------------------------------------------------------------------


def test_unknown_flag__flag_not_found_and_default(of_client: OpenFeatureClient) -> None:
    details = of_client.get_boolean_details("no-such-flag", True)
    assert details.value is True
    assert details.reason == Reason.ERROR
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert details.variant is None


def test_context__targeting_key_not_a_string__invalid_context(
    of_client: OpenFeatureClient,
) -> None:
    context = EvaluationContext(42)  # type: ignore[arg-type]
    details = of_client.get_string_details("banner", "fallback", context)
    assert (details.value, details.error_code) == ("fallback", ErrorCode.INVALID_CONTEXT)


def test_context__attribute_name_not_a_string__invalid_context(
    of_client: OpenFeatureClient,
) -> None:
    context = EvaluationContext("u", {1: "one"})  # type: ignore[dict-item]
    details = of_client.get_boolean_details("static", False, context)
    assert (details.value, details.error_code) == (False, ErrorCode.INVALID_CONTEXT)


def test_provider__attributes_not_a_mapping__invalid_context(flagship: FlagShipClient) -> None:
    provider = FlagShipProvider(flagship)
    context = EvaluationContext("u", ["not", "a", "mapping"])  # type: ignore[arg-type]
    details = provider.resolve_boolean_details("static", False, context)
    assert (details.value, details.error_code) == (False, ErrorCode.INVALID_CONTEXT)
    assert details.reason == Reason.ERROR


def test_provider__client_raising__general_error(
    flagship: FlagShipClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = FlagShipProvider(flagship)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(flagship, "evaluate", broken)
    details = provider.resolve_string_details("banner", "fallback")
    assert (details.value, details.error_code) == ("fallback", ErrorCode.GENERAL)


# Readiness --------------------------------------------------------------------------------


def test_initialize__offline_bootstrap__ready_at_once(flagship: FlagShipClient) -> None:
    domain = f"flagship-test-{next(_domains)}"
    api.set_provider_and_wait(FlagShipProvider(flagship), domain)
    assert api.get_client(domain).get_provider_status() == ProviderStatus.READY


def test_provider_built_from_options__evaluates_and_closes_its_client() -> None:
    provider = FlagShipProvider(
        base_url=UNUSED_URL,
        sdk_key=SERVER_KEY,
        offline=True,
        bootstrap=DOCUMENT,
        send_evaluation_counts=False,
    )
    client = register(provider)
    assert client.get_string_value("banner", "x") == "Hello"
    api.clear_providers()
    assert provider.client.status == "CLOSED"


def test_shutdown__client_given__left_open(flagship: FlagShipClient) -> None:
    provider = FlagShipProvider(flagship)
    register(provider)
    api.clear_providers()
    assert flagship.status == "READY"
    assert flagship.get_string("banner", "x") == "Hello"


def test_initialize__closed_client__fatal() -> None:
    client = offline_client()
    client.close()
    domain = f"flagship-test-{next(_domains)}"
    with pytest.raises(Exception, match="closed"):
        api.set_provider_and_wait(FlagShipProvider(client), domain)
    of_client = api.get_client(domain)
    assert of_client.get_provider_status() == ProviderStatus.FATAL
    details = of_client.get_boolean_details("static", False)
    assert (details.value, details.error_code) == (False, ErrorCode.PROVIDER_FATAL)


def test_not_ready__server_failing__error_status_then_ready_when_data_arrives(
    fake_server: FakeFlagShip,
) -> None:
    fake_server.set(status=503)
    client = fake_server.client()
    try:
        provider = FlagShipProvider(client, init_timeout=0.2)
        domain = f"flagship-test-{next(_domains)}"
        started = time.monotonic()
        with pytest.raises(ProviderNotReadyError):
            api.set_provider_and_wait(provider, domain)
        assert time.monotonic() - started < 2.0  # bounded by init_timeout
        of_client = api.get_client(domain)
        assert of_client.get_provider_status() == ProviderStatus.ERROR
        events = Events(of_client, ProviderEvent.PROVIDER_READY)

        details = of_client.get_boolean_details("static", False)
        assert (details.value, details.reason) == (False, Reason.ERROR)
        assert details.error_code == ErrorCode.PROVIDER_NOT_READY

        fake_server.set(status=200)
        assert client.refresh(timeout=WAIT)
        event, _ = events.next()
        assert event == ProviderEvent.PROVIDER_READY
        wait_for(lambda: of_client.get_provider_status() == ProviderStatus.READY)
        assert of_client.get_boolean_details("static", False).value is True
    finally:
        client.close()


def test_not_ready__before_initialize_finishes__provider_not_ready(
    fake_server: FakeFlagShip,
) -> None:
    fake_server.set(status=503)
    client = fake_server.client()
    try:
        provider = FlagShipProvider(client, init_timeout=WAIT)
        domain = f"flagship-test-{next(_domains)}"
        api.set_provider(provider, domain)  # initialize() runs in OpenFeature's thread
        of_client = api.get_client(domain)
        assert of_client.get_provider_status() == ProviderStatus.NOT_READY
        details = of_client.get_integer_details("limit", 1)
        assert (details.value, details.error_code) == (1, ErrorCode.PROVIDER_NOT_READY)

        events = Events(of_client, ProviderEvent.PROVIDER_READY)
        fake_server.set(status=200)
        assert client.refresh(timeout=WAIT)
        event, _ = events.next()
        assert event == ProviderEvent.PROVIDER_READY
        assert events.none_within(0.2)  # one READY: initialize() reports it, not the listener too
        assert of_client.get_integer_value("limit", 1) == 10
    finally:
        client.close()


# Events -----------------------------------------------------------------------------------


def test_events__ruleset_changes__configuration_changed_with_flags_changed(
    fake_server: FakeFlagShip,
) -> None:
    client = fake_server.client()
    try:
        of_client = register(FlagShipProvider(client))
        assert of_client.get_provider_status() == ProviderStatus.READY
        assert of_client.get_string_value("banner", "x") == "Hello"
        events = Events(of_client, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)

        changed = dict(FLAGS, banner=string_flag(default_serve={"variant": "hi"}))
        fake_server.set(doc=document(changed, version=8))
        assert client.refresh(timeout=WAIT)

        event, details = events.next()
        assert event == ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
        assert details.flags_changed == ["banner"]
        assert details.metadata.get("version") == 8
        assert details.provider_name == "FlagShip"
        assert of_client.get_string_value("banner", "x") == "Hi"
    finally:
        client.close()


def test_events__client_listener__removed_on_shutdown(fake_server: FakeFlagShip) -> None:
    client = fake_server.client()
    try:
        provider = FlagShipProvider(client)
        of_client = register(provider)
        events = Events(of_client, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        provider.shutdown()
        assert client.status != "CLOSED"  # not the provider's to close
        fake_server.set(doc=document(FLAGS, version=9, project="changed"))
        assert client.refresh(timeout=WAIT)
        assert events.none_within(0.2)
    finally:
        client.close()


def test_events__sync_fails_after_ready__stale_then_ready_again(
    fake_server: FakeFlagShip,
) -> None:
    client = fake_server.client()
    try:
        of_client = register(FlagShipProvider(client))
        events = Events(of_client, ProviderEvent.PROVIDER_STALE, ProviderEvent.PROVIDER_READY)
        assert events.next()[0] == ProviderEvent.PROVIDER_READY  # handler added while READY

        fake_server.set(status=500)
        assert not client.refresh(timeout=WAIT)
        assert events.next()[0] == ProviderEvent.PROVIDER_STALE
        wait_for(lambda: of_client.get_provider_status() == ProviderStatus.STALE)
        # Still evaluating with the data it has.
        assert of_client.get_boolean_details("static", False).value is True

        fake_server.set(status=200, doc=document(FLAGS, version=10))
        assert client.refresh(timeout=WAIT)
        wait_for(lambda: of_client.get_provider_status() == ProviderStatus.READY)
    finally:
        client.close()


def listened(client: FlagShipClient, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The listeners the provider registers on ``client`` (to replay client events exactly)."""
    callbacks: list[Any] = []
    add_listener = client.add_listener

    def spy(callback: Any) -> Callable[[], None]:
        callbacks.append(callback)
        return add_listener(callback)

    monkeypatch.setattr(client, "add_listener", spy)
    return callbacks


def test_events__client_notices__mapped_to_provider_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = offline_client()
    callbacks = listened(client, monkeypatch)
    of_client = register(FlagShipProvider(client))
    events = Events(
        of_client,
        ProviderEvent.PROVIDER_READY,
        ProviderEvent.PROVIDER_STALE,
        ProviderEvent.PROVIDER_ERROR,
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
    )
    assert events.next()[0] == ProviderEvent.PROVIDER_READY  # handler added while READY
    (notify,) = callbacks

    # The client's own first "ready" may land after initialize() returned: not repeated.
    notify(ClientEvent("ready", 7))
    assert events.none_within(0.2)

    notify(ClientEvent("stale", 7, "GET /api/v1/ruleset: status 500"))
    event, details = events.next()
    assert event == ProviderEvent.PROVIDER_STALE
    assert details.message == "GET /api/v1/ruleset: status 500"
    assert details.metadata == {"version": 7}

    # An error while the client still has data: it evaluates, so STALE rather than ERROR.
    notify(ClientEvent("error", 7, "timeout"))
    assert events.next()[0] == ProviderEvent.PROVIDER_STALE

    notify(ClientEvent("ready", 7))
    assert events.next()[0] == ProviderEvent.PROVIDER_READY

    notify(ClientEvent("changed", 8, None, None))
    event, details = events.next()
    assert event == ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
    assert details.flags_changed is None  # not known (e.g. a segment changed)
    assert events.none_within(0.1)
    client.close()


def test_events__error_without_data__provider_error(
    fake_server: FakeFlagShip, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_server.set(status=503)
    client = fake_server.client()
    try:
        callbacks = listened(client, monkeypatch)
        provider = FlagShipProvider(client, init_timeout=0.05)
        domain = f"flagship-test-{next(_domains)}"
        with pytest.raises(ProviderNotReadyError):
            api.set_provider_and_wait(provider, domain)
        of_client = api.get_client(domain)
        events = Events(of_client, ProviderEvent.PROVIDER_ERROR)
        assert events.next()[0] == ProviderEvent.PROVIDER_ERROR  # handler added while ERROR
        callbacks[0](ClientEvent("error", None, "GET /api/v1/ruleset: status 503"))
        event, details = events.next()
        assert event == ProviderEvent.PROVIDER_ERROR
        assert details.error_code == ErrorCode.GENERAL
        assert details.message == "GET /api/v1/ruleset: status 503"
    finally:
        client.close()


# Conversions ------------------------------------------------------------------------------


def test_context__nested_values__converted_recursively() -> None:
    when = datetime(2026, 5, 1, 12, 0)  # noqa: DTZ001  # naive: taken as UTC
    context = EvaluationContext(
        "u",
        {"profile": {"signup": when, "tags": ("a", "b")}, "raw": b"bytes", "n": None},  # type: ignore[dict-item]
    )
    assert _client_context(context) == {
        "targetingKey": "u",
        "profile": {"signup": "2026-05-01T12:00:00+00:00", "tags": ["a", "b"]},
        "raw": b"bytes",
        "n": None,
    }
    assert _client_context(None) == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (0.5, 0.5), (True, None), (10**400, None), ("1", None), (None, None)],
)
def test_float__values__converted_or_refused(value: Any, expected: float | None) -> None:
    converted = _float(value)
    assert converted == expected if expected is not None else converted is _MISMATCH


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (True, "a boolean"),
        (1, "an integer"),
        (1.5, "a float"),
        ("s", "a string"),
        ({}, "a JSON object"),
        ([], "a JSON array"),
        (None, "null"),
        (b"", "a bytes"),
    ],
)
def test_describe__values__named_in_messages(value: Any, described: str) -> None:
    assert _describe(value) == described


def test_initialize__twice__one_listener(flagship: FlagShipClient) -> None:
    provider = FlagShipProvider(flagship)
    provider.initialize(EvaluationContext())
    provider.initialize(EvaluationContext())
    assert provider._unsubscribe is not None
    provider.shutdown()
    provider.shutdown()  # idempotent
    assert provider._unsubscribe is None


def test_prerequisite__parent_reported_by_client__in_metadata(
    flagship: FlagShipClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = EvaluationDetails(
        key="child",
        value=False,
        variant="off",
        reason="PREREQUISITE_FAILED",
        version=7,
        prerequisite="disabled",
    )
    monkeypatch.setattr(flagship, "evaluate", lambda *args, **kwargs: answer)
    details = FlagShipProvider(flagship).resolve_boolean_details("child", True)
    assert details.reason == Reason.DEFAULT
    expected = {"version": 7, "prerequisiteFailed": True, "prerequisite": "disabled"}
    assert details.flag_metadata == expected


def test_unknown_operator__resolved__reason_kept_and_problem_in_metadata() -> None:
    # Given a client holding a ruleset whose first rule uses an operator this SDK does not know
    rules = [
        {
            "id": "r-glob",
            "conditions": [{"attribute": "email", "operator": "str_glob", "values": ["*"]}],
            "serve": {"variant": "on"},
        }
    ]
    doc = document({"glob": boolean_flag(rules=rules, default_serve={"variant": "off"})})
    client = offline_client(doc)
    try:
        # When the flag is resolved through the provider
        details = FlagShipProvider(client).resolve_boolean_details("glob", True)
    finally:
        client.close()
    # Then it answers like a rule that did not match, and the metadata names the problem
    assert (details.value, details.reason, details.error_code) == (False, Reason.DEFAULT, None)
    assert details.flag_metadata == {
        "version": 1,
        "problem": "unknown_operator",
        "problemPath": 'flags["glob"].rules[0].conditions[0].operator',
    }
