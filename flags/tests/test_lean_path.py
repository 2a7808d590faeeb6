"""The lean path (flagship/lean.py) answers exactly what the full middleware stack answers.

Each request goes, as the same WSGI environ, to the lean application gunicorn serves
(``LeanWSGIHandler``) and to the full stack alone (its ``full`` handler); status, body and every
header must be the same. Both answers carry the request id the request sends, so no header is
left out; only the durations inside ``Server-Timing`` are masked. Headers are compared as a sorted
list (a repeated header must repeat as often): their order may differ on the rest of the stack,
where ``X-Frame-Options`` and ``Content-Length`` are set outside the session layer's ``Vary:
Cookie`` rather than inside it, and order carries no meaning between headers of different names.
The requests cover each evaluation route on the lean path, and the unusual requests that must fall
back to the rest of the stack (errors, refusals, other methods, CORS preflights), compared too.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.test.utils import override_settings

from accounts.models import ApiKey
from flags.models import Environment, Flag, Project
from flagship import lean, logs
from flagship.lean import LeanWSGIHandler
from flagship.logs import NO_REQUEST, current_request_id

from .caching import caching
from .evaluation_data import build_flags, issue

CONTEXT = {"context": {"targetingKey": "user-7", "country": "DE", "note": "line\u2028break"}}
ORIGIN = "https://shop.example.com"
_DURATION = re.compile(r"dur=[0-9.]+")
Answer = tuple[str, list[tuple[str, str]], bytes]

# (method, path, body, extra headers): what the lean path answers itself.
LEAN: list[tuple[str, str, Any, dict[str, str]]] = [
    ("post", "/api/v1/evaluate", CONTEXT, {}),
    ("post", "/api/v1/evaluate/", CONTEXT, {}),
    ("post", "/api/v1/evaluate", None, {}),
    ("post", "/api/v1/evaluate/new-checkout", CONTEXT, {}),
    ("post", "/api/v1/evaluate/theme", {}, {"Origin": ORIGIN}),
    ("post", "/ofrep/v1/evaluate/flags", CONTEXT, {"Origin": ORIGIN}),
    ("post", "/ofrep/v1/evaluate/flags/new-checkout", CONTEXT, {}),
    ("post", "/ofrep/v1/evaluate/flags/discount", None, {}),
    ("get", "/api/v1/ruleset", None, {}),
    ("get", "/api/v1/ruleset", None, {"If-None-Match": "*"}),
    ("get", "/api/v1/ruleset", None, {"Origin": "https://elsewhere.example.org"}),
    (
        "post",
        "/ofrep/v1/evaluate/flags/theme",
        CONTEXT,
        {"Origin": "https://elsewhere.example.org"},
    ),
    ("post", "/api/v1/evaluate/theme", CONTEXT, {"X-Request-ID": "not a sane id!"}),
    ("post", "/api/v1/evaluate", CONTEXT, {"User-Agent": "sdk/1.0", "Accept": "*/*"}),
]
# What the lean path's own fast path answers: the wire path leaves these to it.
LEAN_NOT_WIRE: list[tuple[str, str, Any, dict[str, str]]] = [
    ("post", "/api/v1/evaluate?trace=1", CONTEXT, {}),
    ("get", "/api/v1/ruleset?x=", None, {}),
]
# What the lean path hands to the rest of the stack.
FALLBACK: list[tuple[str, str, Any, dict[str, str]]] = [
    ("post", "/api/v1/evaluate/no-such-flag", CONTEXT, {}),
    ("post", "/ofrep/v1/evaluate/flags/no-such-flag", CONTEXT, {}),
    ("post", "/api/v1/evaluate", "{not json", {}),
    ("post", "/ofrep/v1/evaluate/flags", "{not json", {}),
    ("post", "/api/v1/evaluate", {"context": [1]}, {}),
    ("post", "/api/v1/evaluate", CONTEXT, {"Accept": "text/html"}),
    ("post", "/api/v1/evaluate", CONTEXT, {"X-API-Key": "fss_" + "A" * 44}),
    ("post", "/api/v1/evaluate", CONTEXT, {"X-API-Key": ""}),
    ("get", "/api/v1/evaluate", None, {}),
    ("put", "/ofrep/v1/evaluate/flags", CONTEXT, {}),
    ("options", "/api/v1/evaluate", None, {}),
    (
        "options",
        "/ofrep/v1/evaluate/flags",
        None,
        {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    ),
    ("head", "/api/v1/ruleset", None, {}),
    ("post", "/api/v1/evaluate?" + "&".join(f"p{n}=1" for n in range(1100)), CONTEXT, {}),
    ("post", "/api/v2/evaluate", CONTEXT, {}),
    ("post", "/api/v1/evaluate", CONTEXT, {"Host": "evil.example.net"}),
]


@pytest.fixture(autouse=True)
def _caches_on() -> Iterator[None]:
    with caching(), override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN]):
        lean.lean_route.cache_clear()
        yield
    lean.lean_route.cache_clear()


@pytest.fixture(autouse=True)
def _keep_the_tests_connection() -> Iterator[None]:
    """Keep the test's database connection across requests, as Django's test client does.

    The WSGI handlers are called directly here: their request signals would close the connection
    that holds the test's transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def flags(project: Project, staging: Environment) -> dict[str, Flag]:
    return build_flags(project, staging)


@pytest.fixture
def application() -> LeanWSGIHandler:
    return LeanWSGIHandler()


@pytest.fixture
def rest_calls(application: LeanWSGIHandler, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the lean path handed to the rest of the stack."""
    calls: list[str] = []
    rest = application._rest

    def spy(request: Any) -> Any:
        calls.append(request.path)
        return rest(request)

    monkeypatch.setattr(application, "_rest", spy)
    return calls


@pytest.fixture
def full_calls(application: LeanWSGIHandler, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the lean application passed straight to the full stack."""
    calls: list[str] = []
    full = application.full

    class Spy:
        def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
            calls.append(environ["PATH_INFO"])
            return full(environ, start_response)

    monkeypatch.setattr(application, "full", Spy())
    return calls


@pytest.fixture
def lean_calls(application: LeanWSGIHandler, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request that reached the lean middleware chain (the wire path did not answer it)."""
    calls: list[str] = []
    chain = application._middleware_chain

    def spy(request: Any) -> Any:
        calls.append(request.path)
        return chain(request)

    monkeypatch.setattr(application, "_middleware_chain", spy)
    return calls


def environ(method: str, path: str, secret: str, body: Any, headers: dict[str, str]) -> Any:
    """The WSGI environ of a request, as a server would build it."""
    factory = RequestFactory()
    headers = {"X-API-Key": secret, "X-Request-ID": "lean-path-test", **headers}
    if not headers["X-API-Key"]:
        del headers["X-API-Key"]
    data = "" if body is None else body if isinstance(body, str) else json.dumps(body)
    request = factory.generic(
        method.upper(), path, data=data, content_type="application/json", headers=headers
    )
    return request.environ


def call(app: Any, environ: dict[str, Any]) -> Answer:
    """Status, headers (sorted, durations masked) and body of ``app``'s answer to ``environ``."""
    started: list[Any] = []
    chunks = app(dict(environ), lambda status, headers, *_: started.append((status, headers)))
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):  # a response; a direct answer is a list of its bytes
            chunks.close()
    status, headers = started[0]
    return status, sorted((name, _DURATION.sub("dur=N", value)) for name, value in headers), body


def both(
    application: LeanWSGIHandler,
    method: str,
    path: str,
    secret: str,
    body: Any,
    headers: dict[str, str],
) -> tuple[Answer, Answer]:
    """The lean application's answer and the full stack's, to the same request."""
    request = environ(method, path, secret, body, headers)
    lean_answer = call(application, request)
    full_answer = call(application.full, environ(method, path, secret, body, headers))
    return lean_answer, full_answer


@pytest.mark.parametrize("kind", [ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT])
@pytest.mark.parametrize(("method", "path", "body", "headers"), LEAN + LEAN_NOT_WIRE + FALLBACK)
def test_lean_and_full_stack_answer_the_same_to_the_last_header(
    application: LeanWSGIHandler,
    *,
    flags: dict[str, Flag],
    staging: Environment,
    kind: str,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    secret = issue(staging, kind)
    call(application.full, environ("post", "/api/v1/evaluate", secret, CONTEXT, {}))  # warm
    lean_answer, full_answer = both(application, method, path, secret, body, headers)
    if "X-Request-ID" in headers:  # not a sane id: each answer has an id of its own
        lean_answer, full_answer = _new_id(lean_answer), _new_id(full_answer)
    assert lean_answer == full_answer
    names = [name for name, _value in lean_answer[1]]
    assert "X-Request-ID" in names
    assert ("Server-Timing", "app;dur=N, db;dur=N") in lean_answer[1]
    if path.startswith("/api/v1/"):
        assert ("API-Version", "v1") in lean_answer[1]


def _new_id(answer: Answer) -> Answer:
    """``answer`` with its new request id (32 hex digits) masked."""
    status, headers, body = answer
    ids = [value for name, value in headers if name == "X-Request-ID"]
    assert len(ids) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", ids[0])
    return status, [(n, "new" if n == "X-Request-ID" else v) for n, v in headers], body


def warm_answer(
    application: LeanWSGIHandler,
    staging: Environment,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    rest_calls: list[str],
    lean_calls: list[str],
) -> Answer:
    """The answer to a request asked a second time, the spies emptied after the first (cold)."""
    secret = issue(staging, ApiKey.Kind.SERVER)
    call(application, environ(method, path, secret, body, headers))  # cold: fills the caches
    rest_calls.clear()
    lean_calls.clear()
    return call(application, environ(method, path, secret, body, headers))


@pytest.mark.parametrize(("method", "path", "body", "headers"), LEAN)
def test_warm_requests_are_answered_on_the_wire(
    application: LeanWSGIHandler,
    rest_calls: list[str],
    full_calls: list[str],
    lean_calls: list[str],
    *,
    flags: dict[str, Flag],
    staging: Environment,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    answer = warm_answer(application, staging, method, path, body, headers, rest_calls, lean_calls)
    assert answer[0][:3] == ("304" if "If-None-Match" in headers else "200")
    # The wire path answered: no middleware chain, not the rest of the stack, not the full stack
    assert lean_calls == []
    assert rest_calls == []
    assert full_calls == []


@pytest.mark.parametrize(("method", "path", "body", "headers"), LEAN_NOT_WIRE)
def test_unusual_warm_requests_are_answered_by_the_lean_chain(
    application: LeanWSGIHandler,
    rest_calls: list[str],
    full_calls: list[str],
    lean_calls: list[str],
    *,
    flags: dict[str, Flag],
    staging: Environment,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    answer = warm_answer(application, staging, method, path, body, headers, rest_calls, lean_calls)
    assert answer[0].startswith("200")
    assert lean_calls == [path.split("?", 1)[0]]  # the lean chain's fast path answered
    assert rest_calls == []
    assert full_calls == []


@pytest.mark.parametrize(("method", "path", "body", "headers"), FALLBACK)
def test_unusual_requests_get_the_rest_of_the_stack(
    application: LeanWSGIHandler,
    rest_calls: list[str],
    full_calls: list[str],
    *,
    flags: dict[str, Flag],
    staging: Environment,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    secret = issue(staging, ApiKey.Kind.SERVER)
    call(application, environ("post", "/api/v1/evaluate", secret, CONTEXT, {}))  # warm
    rest_calls.clear()
    answer = call(application, environ(method, path, secret, body, headers))
    assert not answer[0].startswith("200") or method in ("head", "options")
    # Each is answered by exactly one of: a lean layer (the CORS preflight, too many query
    # parameters), the full stack (not a lean route: another API version), or the rest of the
    # stack (everything else); never by the fast path.
    route = path.split("?", 1)[0]
    if route.startswith("/api/v2/"):
        assert (full_calls, rest_calls) == ([route], [])
    elif "?" in path or "Access-Control-Request-Method" in headers or "Host" in headers:
        assert (full_calls, rest_calls) == ([], [])
    else:
        assert (full_calls, rest_calls) == ([], [route])


def test_other_routes_go_straight_to_the_full_stack(
    application: LeanWSGIHandler,
    rest_calls: list[str],
    full_calls: list[str],
    staging: Environment,
) -> None:
    secret = issue(staging, ApiKey.Kind.SERVER)
    for path in ("/api/v1/projects/", "/admin/", "/health/live", "/ofrep/v1/other"):
        call(application, environ("get", path, secret, None, {}))
    assert full_calls == ["/api/v1/projects/", "/admin/", "/health/live", "/ofrep/v1/other"]
    assert rest_calls == []


@override_settings(FLAGSHIP_EVALUATION_RATE="3/h")
def test_the_rate_limit_holds_on_the_lean_path(
    application: LeanWSGIHandler, flags: dict[str, Flag], staging: Environment
) -> None:
    secret = issue(staging)
    statuses = [
        call(application, environ("post", "/api/v1/evaluate", secret, CONTEXT, {}))[0][:3]
        for _ in range(5)
    ]
    assert statuses == ["200", "200", "200", "429", "429"]


def test_an_oversized_body_is_refused_before_the_view(
    application: LeanWSGIHandler,
    rest_calls: list[str],
    flags: dict[str, Flag],
    staging: Environment,
) -> None:
    secret = issue(staging)
    big = {"context": {"targetingKey": "u", "blob": "x" * 3_000_000}}
    lean_answer, full_answer = both(application, "post", "/api/v1/evaluate", secret, big, {})
    assert lean_answer == full_answer
    assert lean_answer[0].startswith("413")
    assert rest_calls == []


def test_the_lean_path_can_be_turned_off() -> None:
    from django.core.handlers.wsgi import WSGIHandler  # noqa: PLC0415

    with override_settings(FLAGSHIP_LEAN_PATH=False):
        assert type(lean.application()) is WSGIHandler
    assert isinstance(lean.application(), LeanWSGIHandler)


def test_gunicorns_application_is_the_lean_one() -> None:
    from flagship import wsgi  # noqa: PLC0415

    assert isinstance(wsgi.application, LeanWSGIHandler)


def test_a_direct_answer_is_its_bytes_and_sends_no_request_signals(
    application: LeanWSGIHandler,
    flags: dict[str, Flag],
    staging: Environment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a warm key, and no database connection open after the answer (as in a server's
    # thread: the test's own transaction holds one here)
    secret = issue(staging)
    call(application, environ("post", "/api/v1/evaluate", secret, CONTEXT, {}))
    monkeypatch.setattr(lean, "_database_used", lambda: False)
    sent: list[str] = []

    def started(sender: Any, **kwargs: Any) -> None:
        sent.append("started")

    def finished(sender: Any, **kwargs: Any) -> None:
        sent.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        # When the fast path answers, then when a request goes on to the rest of the stack
        direct = application(
            environ("post", "/api/v1/evaluate", secret, CONTEXT, {}), lambda *args: None
        )
        after_direct = list(sent)
        request_id_after = current_request_id()
        rest = application(
            environ("post", "/api/v1/evaluate/no-such-flag", secret, CONTEXT, {}),
            lambda *args: None,
        )
        b"".join(rest)
        rest.close()
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    # Then the direct answer is its bytes, with no signal, and the log's request id is reset
    assert isinstance(direct, list)
    assert json.loads(b"".join(direct))["flags"]
    assert after_direct == []
    assert request_id_after == NO_REQUEST
    # and the other request got both signals, as on the full stack
    assert sent == ["started", "finished"]


def test_database_use_is_seen_on_any_open_connection(staging: Environment) -> None:
    from django.db import connection  # noqa: PLC0415

    connection.ensure_connection()
    assert lean._database_used()


# --- The wire path's own settings, metrics and access log ----------------------------------------
@pytest.mark.parametrize(
    ("overrides", "extra", "wire"),
    [
        # HSTS on a secure request (the scheme, or the proxy's header)
        ({"SECURE_HSTS_SECONDS": 60, "SECURE_HSTS_PRELOAD": True}, {"secure": True}, True),
        (
            {
                "SECURE_HSTS_SECONDS": 60,
                "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
            },
            {"headers": {"X-Forwarded-Proto": "https"}},
            True,
        ),
        # an insecure request SecurityMiddleware redirects
        ({"SECURE_SSL_REDIRECT": True}, {}, False),
        # CORS: every origin, credentials; a private network request where it is allowed
        ({"CORS_ALLOW_ALL_ORIGINS": True, "CORS_ALLOW_CREDENTIALS": True}, {"origin": 1}, True),
        ({"CORS_ALLOW_ALL_ORIGINS": True}, {"origin": 1}, True),
        (
            {"CORS_ALLOW_PRIVATE_NETWORK": True},
            {"origin": 1, "headers": {"Access-Control-Request-Private-Network": "true"}},
            False,
        ),
        # a user agent rule, a forwarded host
        (
            {"DISALLOWED_USER_AGENTS": [re.compile("bot")]},
            {"headers": {"User-Agent": "bot"}},
            False,
        ),
        ({"USE_X_FORWARDED_HOST": True}, {"headers": {"X-Forwarded-Host": "testserver"}}, False),
        ({"X_FRAME_OPTIONS": "sameorigin", "SECURE_REFERRER_POLICY": "no-referrer"}, {}, True),
    ],
)
def test_settings_shape_the_wire_answer_as_they_shape_the_full_stacks(
    flags: dict[str, Flag],
    staging: Environment,
    overrides: dict[str, Any],
    extra: dict[str, Any],
    wire: bool,
) -> None:
    secret = issue(staging, ApiKey.Kind.CLIENT)
    headers = dict(extra.get("headers", {}))
    if extra.get("origin"):
        headers["Origin"] = "https://any.example.org"
    path = "/ofrep/v1/evaluate/flags"
    with override_settings(**overrides):
        application = LeanWSGIHandler()  # some middleware read their settings when built
        lean_calls: list[str] = []
        chain = application._middleware_chain

        def spy(request: Any) -> Any:
            lean_calls.append(request.path)
            return chain(request)

        application._middleware_chain = spy
        call(application, _environ(path, secret, headers, extra))  # warm
        lean_calls.clear()
        lean_answer = call(application, _environ(path, secret, headers, extra))
        full_answer = call(application.full, _environ(path, secret, headers, extra))
    assert lean_answer == full_answer
    assert lean_calls == ([] if wire else [path])
    if overrides.get("SECURE_HSTS_SECONDS") and wire:
        assert any(name == "Strict-Transport-Security" for name, _ in lean_answer[1])


def _environ(path: str, secret: str, headers: dict[str, str], extra: dict[str, Any]) -> Any:
    factory = RequestFactory()
    request = factory.post(
        path,
        data=json.dumps(CONTEXT),
        content_type="application/json",
        secure=bool(extra.get("secure")),
        headers={"X-API-Key": secret, "X-Request-ID": "wire-test", **headers},
    )
    return request.environ


def test_the_wire_path_counts_in_metrics_and_logs_as_the_lean_chain(
    application: LeanWSGIHandler,
    lean_calls: list[str],
    flags: dict[str, Flag],
    staging: Environment,
) -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    from flagship import metrics  # noqa: PLC0415

    secret = issue(staging)
    path = "/ofrep/v1/evaluate/flags/new-checkout"
    labels = {"status": "200", "view": "ofrep-flag", "method": "POST"}
    name = "django_http_responses_total_by_status_view_method_total"
    call(application, environ("post", path, secret, CONTEXT, {}))  # warm
    metrics.flush()
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(logs.JSON))
    handler.addFilter(logs.RequestIdFilter())
    access = logging.getLogger("flagship.access")
    access.addHandler(handler)
    try:
        lean_calls.clear()
        call(application, environ("post", path, secret, CONTEXT, {"X-Request-ID": "wire-1"}))
        assert lean_calls == []  # the wire path answered
        # the same request through the lean chain: the wire path is bypassed
        application._wire = False
        call(application, environ("post", path, secret, CONTEXT, {"X-Request-ID": "lean-1"}))
        assert lean_calls == [path]
    finally:
        access.removeHandler(handler)
    metrics.flush()
    assert REGISTRY.get_sample_value(name, labels) == before + 2
    wire_line, lean_line = (json.loads(line) for line in stream.getvalue().splitlines())
    assert wire_line["request_id"] == "wire-1"
    assert lean_line["request_id"] == "lean-1"
    assert wire_line["api_key_id"] is not None
    masked = ("timestamp", "duration_ms", "request_id")
    assert {k: v for k, v in wire_line.items() if k not in masked} == {
        k: v for k, v in lean_line.items() if k not in masked
    }
    assert list(wire_line) == list(lean_line)  # the same keys, in the same order
