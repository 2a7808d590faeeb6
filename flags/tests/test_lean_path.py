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

import json
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
from flagship import lean
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
    ("get", "/api/v1/ruleset", None, {"Origin": "https://elsewhere.example.org"}),
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
@pytest.mark.parametrize(("method", "path", "body", "headers"), LEAN + FALLBACK)
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
    assert lean_answer == full_answer
    names = [name for name, _value in lean_answer[1]]
    assert "X-Request-ID" in names
    assert ("Server-Timing", "app;dur=N, db;dur=N") in lean_answer[1]
    if path.startswith("/api/v1/"):
        assert ("API-Version", "v1") in lean_answer[1]


@pytest.mark.parametrize(("method", "path", "body", "headers"), LEAN)
def test_warm_requests_never_reach_the_rest_of_the_stack(
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
    call(application, environ(method, path, secret, body, headers))  # cold: fills the caches
    rest_calls.clear()
    answer = call(application, environ(method, path, secret, body, headers))
    assert answer[0].startswith("200")
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
    elif "?" in path or "Access-Control-Request-Method" in headers:
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
