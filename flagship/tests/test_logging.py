"""Structured logs (flagship/logs.py) and the access log with its timing (flagship/access.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path

from accounts import roles
from accounts.models import User
from accounts.tests.factories import PASSWORD, make_user
from flags import services
from flags.tests.caching import caching, call
from flags.tests.evaluation_data import issue
from flagship import logs

pytestmark = pytest.mark.urls("flagship.tests.test_logging")
logger = logging.getLogger("flagship.tests.logging")
ROOT = Path(__file__).resolve().parents[2]
# Shaped like an API key (accounts.keys): it must never reach a log line, not even in a traceback.
KEY_LIKE = "fss_" + "A1b2C3d4E5f6" + "x" * 32


def threads_view(request: HttpRequest, version: str) -> HttpResponse:
    """Log from the request, from a thread acting for it, and from a thread that is not."""
    logger.info("test.in_view")
    acting = threading.Thread(target=logs.in_current_context(logger.info), args=("test.in_thread",))
    unrelated = threading.Thread(target=logger.info, args=("test.in_unrelated_thread",))
    for thread in (acting, unrelated):
        thread.start()
        thread.join()
    return HttpResponse("ok")


def failing_view(request: HttpRequest, version: str) -> HttpResponse:
    """A bug, whose message holds something shaped like a secret."""
    raise RuntimeError(f"broken while holding {KEY_LIKE}")


urlpatterns: list[URLPattern | URLResolver] = [
    path("api/<version>/test/threads/", threads_view),
    path("api/<version>/test/fail/", failing_view),
    path("", include("flagship.urls")),
]


class Captured:
    """Every line logged anywhere, rendered as production renders it."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        """All the output."""
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Each line, parsed (every one must be a JSON object)."""
        return [json.loads(line) for line in self.text.splitlines()]

    def events(self, name: str) -> list[dict[str, Any]]:
        """The lines of one event."""
        return [line for line in self.lines() if line["event"] == name]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Capture every logger at DEBUG, SQL included, through the JSON formatter of LOGGING."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(logs.JSON))
    handler.addFilter(logs.RequestIdFilter())
    root = logging.getLogger()
    sql = logging.getLogger("django.db.backends")
    levels = (root.level, sql.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sql.setLevel(logging.DEBUG)
    debug_cursor = connection.force_debug_cursor
    connection.force_debug_cursor = True  # Django logs each query (with parameters) at DEBUG
    try:
        yield Captured(stream)
    finally:
        connection.force_debug_cursor = debug_cursor
        root.removeHandler(handler)
        root.setLevel(levels[0])
        sql.setLevel(levels[1])


# --- The request id -----------------------------------------------------------------------------
def test_request_id__given_in_x_request_id__on_response_and_every_line_of_the_request(
    client: Client, captured: Captured
) -> None:
    # When a request with its own id logs from its thread and from a thread acting for it
    response = client.get("/api/v1/test/threads/", headers={"X-Request-ID": "trace-42"})

    # Then the response and every line of that request carry the id; a thread started without
    # the request's context does not pretend to act for it
    assert response["X-Request-ID"] == "trace-42"
    ids = {line["event"]: line["request_id"] for line in captured.lines()}
    assert ids["test.in_view"] == "trace-42"
    assert ids["test.in_thread"] == "trace-42"
    assert ids["request.finished"] == "trace-42"
    assert ids["test.in_unrelated_thread"] == logs.NO_REQUEST


def test_request_id__readiness_checks_in_their_threads__log_with_the_request_id(
    db: None, client: Client, captured: Captured, settings: Any
) -> None:
    # Given the readiness checks, which query the database in threads of their own
    # (flagship.health), with every thread's queries logged
    settings.DEBUG = True

    # When /readyz is asked
    client.get("/readyz", headers={"X-Request-ID": "probe-7"})

    # Then the queries those threads ran are logged with the probe's request id
    queries = [line for line in captured.lines() if line["logger"] == "django.db.backends"]
    assert any("django_migrations" in line["event"] for line in queries)
    assert {line["request_id"] for line in queries} == {"probe-7"}


# --- Format -------------------------------------------------------------------------------------
def test_json_line__event_level_logger_time_request_id_and_extras_as_keys() -> None:
    # Given the JSON formatter
    formatter = logs.formatter(logs.JSON)
    record = logging.LogRecord(
        "flags.services", logging.INFO, __file__, 1, "schedule.step_ran", (), None
    )
    record.schedule = 3
    record.step = 2
    record.event = "shadowing"  # an extra named like one of the line's own keys

    # When a stdlib record with extras is formatted
    line = json.loads(formatter.format(record))

    # Then it is one JSON object with the extras as keys, the clashing one kept aside
    assert line["event"] == "schedule.step_ran"
    assert (line["level"], line["logger"], line["request_id"]) == ("info", "flags.services", "-")
    assert (line["schedule"], line["step"], line["event_"]) == (3, 2, "shadowing")
    assert line["timestamp"].endswith("Z")


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z")
# (level, message, extra): plain stdlib records, which take the formatter's shorter way.
PLAIN_RECORDS: list[tuple[int, str, dict[str, Any]]] = [
    (
        logging.INFO,
        "request.finished",
        {
            "method": "POST",
            "path": "/api/v1/evaluate",
            "status": 200,
            "duration_ms": 0.42,
            "db_ms": 0.0,
            "db_queries": 0,
            "user_id": None,
            "api_key_id": 7,
        },
    ),
    (logging.WARNING, "plain words with a key " + KEY_LIKE, {}),
    (logging.ERROR, "nested", {"payload": {"password": "hunter2", "items": [{"token": "t"}]}}),
    (logging.DEBUG, "clash", {"event": "shadowing", "level": 3, "request_id": "given"}),
    (logging.INFO, "objects", {"request": object(), "server_time": 1.5, "when": (1, 2)}),
    (logging.CRITICAL, "url", {"target": "https://user:pass@example.com/x?token=abc"}),
]


@pytest.mark.parametrize("fmt", logs.FORMATS)
@pytest.mark.parametrize(("level", "message", "extra"), PLAIN_RECORDS)
def test_plain_records__the_short_way__the_same_line_as_structlogs_way(
    fmt: str, level: int, message: str, extra: dict[str, Any]
) -> None:
    # Given a plain record (no arguments, exception or stack), with the request id filter's key
    formatter = logs.formatter(fmt)
    structlog.contextvars.bind_contextvars(bound="context")
    try:
        record = logging.getLogger("flags.test").makeRecord(
            "flags.test", level, __file__, 1, message, (), None, extra=extra
        )
        logs.RequestIdFilter().filter(record)
        # When it is formatted the short way and structlog's way
        short = formatter.format(record)
        full = structlog.stdlib.ProcessorFormatter.format(formatter, record)
    finally:
        structlog.contextvars.unbind_contextvars("bound")
    # Then the lines are the same but for the moment they were written
    assert _TIMESTAMP.sub("T", short) == _TIMESTAMP.sub("T", full)
    assert KEY_LIKE not in short
    assert "hunter2" not in short


def test_plain_records__take_the_short_way__others_structlogs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    formatter = logs.formatter(logs.JSON)
    taken: list[str] = []
    original = structlog.stdlib.ProcessorFormatter.format

    def spy(self: Any, record: logging.LogRecord) -> str:
        taken.append(str(record.msg))
        return original(self, record)

    monkeypatch.setattr(structlog.stdlib.ProcessorFormatter, "format", spy)
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "plain", (), None)
    with_args = logging.LogRecord("x", logging.INFO, __file__, 1, "%s args", ("with",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        with_exception = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    for record in (plain, with_args, with_exception):
        formatter.format(record)
    assert taken == ["%s args", "failed"]
    assert '"exception"' in formatter.format(with_exception)


# --- The direct way of the access line (logs.write_direct) -------------------------------------
DIRECT_FIELDS: list[dict[str, Any]] = [
    PLAIN_RECORDS[0][2],
    {**PLAIN_RECORDS[0][2], "path": "/api/v1/evaluate/" + KEY_LIKE, "user_id": 3},
    {"method": "GET", "path": '/odd "quoted" \u2028 path', "status": 304, "api_key_id": None},
    {},
]


@pytest.fixture
def direct_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger set up as LOGGING sets up the console: one handler, its filter, the formatter.

    pytest attaches its capturing handlers to the root logger and to every logger that does not
    propagate, when each test's call starts: :func:`alone` takes them off for the call.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(logs.JSON))
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("flagship.tests.direct")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield logger, stream
    finally:  # the logger outlives the test: as it was, whatever the test changed
        for each in list(logger.handlers):
            logger.removeHandler(each)
        logger.filters.clear()
        logger.disabled = False
        logger.propagate = True


@contextmanager
def alone(logger: logging.Logger) -> Iterator[None]:
    """``logger`` with its first handler only (pytest's capturing handlers put back after)."""
    others = logger.handlers[1:]
    for handler in others:
        logger.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            logger.addHandler(handler)


@pytest.mark.parametrize("bound", [False, True])
@pytest.mark.parametrize("fields", DIRECT_FIELDS)
def test_direct_line__the_same_line_as_the_logging_modules(
    direct_logger: tuple[logging.Logger, io.StringIO], fields: dict[str, Any], *, bound: bool
) -> None:
    # Given the console handler of LOGGING, a request id, and perhaps structlog context
    logger, stream = direct_logger
    logs.set_request_id("direct-test")
    if bound:
        structlog.contextvars.bind_contextvars(bound="context")
    try:
        # When the line is written directly, then logged the usual way
        with alone(logger):
            assert logs.write_direct(logger, "request.finished", dict(fields))
            logger.info("request.finished", extra=dict(fields))
    finally:
        structlog.contextvars.unbind_contextvars("bound")
        logs.set_request_id(logs.NO_REQUEST)
    # Then both lines are the same but for the moment they were written
    direct, usual = stream.getvalue().splitlines()
    assert _TIMESTAMP.sub("T", direct) == _TIMESTAMP.sub("T", usual)
    assert json.loads(direct)["request_id"] == "direct-test"
    assert KEY_LIKE not in direct


def _another_handler(logger: logging.Logger) -> None:
    logger.addHandler(logging.NullHandler())


def _a_logger_filter(logger: logging.Logger) -> None:
    logger.addFilter(logging.Filter())


def _a_handler_filter(logger: logging.Logger) -> None:
    logger.handlers[0].addFilter(logging.Filter())


def _console_lines(logger: logging.Logger) -> None:
    logger.handlers[0].setFormatter(logs.formatter(logs.CONSOLE))


def _a_quieter_handler(logger: logging.Logger) -> None:
    logger.handlers[0].setLevel(logging.WARNING)


def _a_file_like_handler(logger: logging.Logger) -> None:
    class Rotating(logging.StreamHandler):  # type: ignore[type-arg]  # any subclass
        pass

    original = logger.handlers[0]
    logger.removeHandler(original)
    replacement = Rotating(original.stream)  # type: ignore[attr-defined]
    replacement.setFormatter(original.formatter)
    replacement.addFilter(logs.RequestIdFilter())
    logger.addHandler(replacement)


def _through_the_root(logger: logging.Logger) -> None:
    logger.propagate = True  # the root logger's handlers (pytest's) are reached too


def _disabled(logger: logging.Logger) -> None:
    logger.disabled = True


@pytest.mark.parametrize(
    "change",
    [
        _another_handler,
        _a_logger_filter,
        _a_handler_filter,
        _console_lines,
        _a_quieter_handler,
        _a_file_like_handler,
        _through_the_root,
        _disabled,
    ],
)
def test_direct_line__any_other_set_up__declined_and_nothing_written(
    direct_logger: tuple[logging.Logger, io.StringIO], change: Any
) -> None:
    logger, stream = direct_logger
    with alone(logger):
        assert logs.write_direct(logger, "request.finished", {"status": 200})  # as set up
        change(logger)
        assert not logs.write_direct(logger, "request.finished", {"status": 200})
    assert len(stream.getvalue().splitlines()) == 1  # the first one only


@pytest.mark.parametrize("key", ["event", "level", "logger", "timestamp", "request_id"])
def test_direct_line__a_field_named_as_the_lines_own__declined(
    direct_logger: tuple[logging.Logger, io.StringIO], key: str
) -> None:
    logger, stream = direct_logger
    with alone(logger):
        assert not logs.write_direct(logger, "request.finished", {key: "mine"})
    assert stream.getvalue() == ""


def test_direct_line__a_closed_stream__declined(
    direct_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = direct_logger
    stream.close()
    with alone(logger):
        assert not logs.write_direct(logger, "request.finished", {"status": 200})


def test_access_line__written_directly__a_5xx_line_through_the_logging_module(
    direct_logger: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the access log's logger set up as LOGGING sets up the console
    from flagship import access  # noqa: PLC0415

    logger, stream = direct_logger
    handled: list[str] = []
    original = logger.handle

    def spy(record: logging.LogRecord) -> None:
        handled.append(record.getMessage())
        original(record)

    monkeypatch.setattr(logger, "handle", spy)
    monkeypatch.setattr(access, "logger", logger)
    timer = access.DatabaseTimer()
    # When a 200 and a 503 are logged
    with alone(logger):
        access.log_request("GET", "/api/v1/ruleset", 200, 1.5, timer, None, 4)
        access.log_request("GET", "/api/v1/ruleset", 503, 1.5, timer, None, 4)
    # Then both lines are written, only the 503 as a record (level ERROR)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["status"], line["level"]) for line in lines] == [(200, "info"), (503, "error")]
    assert handled == ["request.finished"]


def test_console_line__readable_event_logger_and_keys() -> None:
    # Given the console formatter
    formatter = logs.formatter(logs.CONSOLE)
    record = logging.LogRecord(
        "flags.worker", logging.WARNING, __file__, 1, "worker.job_failed", (), None
    )
    record.job = "retention"

    # When a record is formatted
    line = formatter.format(record)

    # Then it is a plain line, not JSON: level, event, logger and key=value pairs
    assert not line.startswith("{")
    assert "[warning] worker.job_failed" in line
    assert "[flags.worker]" in line
    assert "job=retention" in line


def _log_one_line(**variables: str) -> subprocess.CompletedProcess[str]:
    """Start Django with ``variables`` in a child process and log one line through LOGGING."""
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('flags.worker').warning('worker.started', extra={'senders': 2})"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "REDIS_", "FLAGSHIP_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="flagship.settings",
        DJANGO_ENV_FILE=str(ROOT / "no-such.env"),
        **variables,
    )
    return subprocess.run(  # noqa: S603  # our own interpreter
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production__json_lines_by_default() -> None:
    # When Django starts in production and logs a line
    result = _log_one_line(
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="a-production-secret-key-of-enough-length-0123456789-xyz",  # noqa: S106  # a throwaway key for a child process
        DJANGO_ALLOWED_HOSTS="flagship.example.com",
    )

    # Then the line is a JSON object
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["event"], line["level"], line["senders"]) == ("worker.started", "warning", 2)


def test_development__console_lines_by_default__json_when_asked() -> None:
    # When Django starts in development, then with DJANGO_LOG_FORMAT=json
    console = _log_one_line(DJANGO_ENV="development")
    asked = _log_one_line(DJANGO_ENV="development", DJANGO_LOG_FORMAT="json")

    # Then development writes a console line, and the setting switches it to JSON
    assert console.returncode == 0, console.stderr
    assert "[warning] worker.started" in console.stderr
    assert "senders=2" in console.stderr
    assert json.loads(asked.stderr.strip().splitlines()[-1])["event"] == "worker.started"


def test_unknown_log_format__refused_at_start() -> None:
    result = _log_one_line(DJANGO_LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "DJANGO_LOG_FORMAT must be json or console" in result.stderr


# --- Errors -------------------------------------------------------------------------------------
def test_error__logged_with_its_traceback_as_a_field__secrets_masked_in_it(
    captured: Captured, db: None
) -> None:
    # Given a view with a bug
    client = Client(raise_request_exception=False)

    # When it is requested
    response = client.get("/api/v1/test/fail/", headers={"X-Request-ID": "bug-1"})

    # Then a request.failed line carries the traceback in its exception field, and the access
    # line the 500; the secret-shaped text in the message is masked
    assert response.status_code == 500
    (failed,) = captured.events("request.failed")
    assert failed["level"] == "error"
    assert failed["request_id"] == "bug-1"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: broken while holding [REDACTED]" in failed["exception"]
    (finished,) = captured.events("request.finished")
    assert (finished["status"], finished["level"]) == (500, "error")
    assert KEY_LIKE not in captured.text


# --- Redaction ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY_LIKE} used", "key [REDACTED] used"),
        ("fsa_" + "z" * 44, "[REDACTED]"),
        ("whsec_" + "Ab+/" * 10 + "==", "[REDACTED]"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "[REDACTED]"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"),
        ("redis://:s3cr3t-pass@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
        ("/callback?token=abc123&x=1", "/callback?token=[REDACTED]&x=1"),
        ("nothing secret: new-checkout on staging", "nothing secret: new-checkout on staging"),
    ],
)
def test_redact_text__secret_shaped_values__masked(text: str, expected: str) -> None:
    assert logs.redact_text(text) == expected


def test_redact__sensitive_keys_at_any_depth__masked_ids_kept() -> None:
    # Given an event with sensitive keys, nested ones, and ids named after secrets
    event = {
        "event": "test.logged",
        "password": "hunter2",
        "headers": {"Authorization": "x", "X-API-Key": "y", "Cookie": "z", "Accept": "json"},
        "items": [{"refresh": "r", "flag": "new-checkout"}],
        "api_key_id": 7,
        "secret_hint": "…Qw==",
    }

    # When it is redacted
    redacted = logs.redact(None, "info", event)

    # Then every value under a sensitive key is gone; the rest, and ids, stay
    assert redacted == {
        "event": "test.logged",
        "password": "[REDACTED]",
        "headers": {
            "Authorization": "[REDACTED]",
            "X-API-Key": "[REDACTED]",
            "Cookie": "[REDACTED]",
            "Accept": "json",
        },
        "items": [{"refresh": "[REDACTED]", "flag": "new-checkout"}],
        "api_key_id": 7,
        "secret_hint": "…Qw==",
    }


@pytest.fixture
def committed_administrator(transactional_db: None) -> User:
    """The administrator, in a database that commits (on-commit work runs as in production).

    An earlier transactional test's flush removed the role groups the data migration made (and
    ``serialized_rollback`` cannot bring them back under xdist: the flush recreated the content
    types with other ids), so the roles are synced again first.
    """
    roles.sync_roles(Group, Permission)
    return make_user(username="admin", role=roles.ADMINISTRATOR)


def test_full_api_session__no_secret_in_any_log_line(
    committed_administrator: User, captured: Captured
) -> None:
    # Given a person with a password, a project, and every logger capturing at DEBUG, SQL included

    services.project_create(key="demo", name="Demo")
    client = Client()
    json_body = "application/json"
    wrong_password = "not-the-password-" + "q" * 8

    # When they sign in with a wrong password, then the right one (a JWT pair), rotate the pair,
    tried = client.post(
        "/api/v1/auth/token/",
        {"username": "admin", "password": wrong_password},
        content_type=json_body,
    )
    tokens = client.post(
        "/api/v1/auth/token/", {"username": "admin", "password": PASSWORD}, content_type=json_body
    ).json()
    rotated = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, content_type=json_body
    ).json()
    as_person = {"Authorization": f"Bearer {rotated['access']}"}
    # create an admin token, and with it an environment key, a flag, a webhook with its secret
    admin_token = client.post(
        "/api/v1/me/tokens/", {"name": "ci"}, content_type=json_body, headers=as_person
    ).json()["secret"]
    as_token = {"Authorization": f"Bearer {admin_token}"}
    server_key = client.post(
        "/api/v1/projects/demo/environments/staging/keys/",
        {"name": "backend", "kind": "server"},
        content_type=json_body,
        headers=as_token,
    ).json()["secret"]
    created_flag = client.post(
        "/api/v1/projects/demo/flags/",
        {"key": "new-checkout", "name": "New checkout"},
        content_type=json_body,
        headers=as_token,
    )
    webhook_secret = client.post(
        "/api/v1/projects/demo/webhooks/",
        {"name": "Relay", "url": "https://hooks.example.com/flagship", "environment": "staging"},
        content_type=json_body,
        headers=as_token,
    ).json()["secret"]
    # change the flag, evaluate it with the environment key (REST, OFREP), ask with a key in a
    # query string, and sign out
    toggled = client.post(
        "/api/v1/projects/demo/flags/new-checkout/environments/staging/toggle/",
        {"enabled": True},
        content_type=json_body,
        headers=as_person,
    )
    evaluations = [
        client.post(
            url, {"context": {"targetingKey": "u1"}}, content_type=json_body, headers=headers
        )
        for url, headers in [
            ("/api/v1/evaluate/new-checkout", {"X-API-Key": server_key}),
            ("/ofrep/v1/evaluate/flags/new-checkout", {"Authorization": f"Bearer {server_key}"}),
        ]
    ]
    leaked_in_url = client.get(f"/api/v1/no-such-route/?api_key={server_key}")
    signed_out = client.post(
        "/api/v1/auth/logout/",
        {"refresh": rotated["refresh"]},
        content_type=json_body,
        headers=as_person,
    )

    # Then every step answered as expected
    assert tried.status_code == 401
    assert created_flag.status_code == 201, created_flag.content
    assert toggled.status_code == 200, toggled.content
    assert [response.status_code for response in evaluations] == [200, 200]
    assert leaked_in_url.status_code == 404
    assert signed_out.status_code in (200, 204), signed_out.content
    # and the logs hold the whole session (SQL included) but not one of its secrets
    secrets = {
        "password": PASSWORD,
        "wrong password": wrong_password,
        "access token": tokens["access"],
        "refresh token": tokens["refresh"],
        "rotated access token": rotated["access"],
        "rotated refresh token": rotated["refresh"],
        "admin token": admin_token,
        "server key": server_key,
        "webhook secret": webhook_secret,
    }
    text = captured.text
    assert len(captured.events("request.finished")) == 12
    assert any(line["logger"] == "django.db.backends" for line in captured.lines())
    assert "[REDACTED]" in text  # the JWTs FlagShip stores went by, masked
    assert [name for name, secret in secrets.items() if secret in text] == []
    # and on_commit work (the change log) carried its request's id
    (committed,) = [
        line for line in captured.events("change.committed") if line["type"] == "flag.toggled"
    ]
    (toggle_line,) = [
        line for line in captured.events("request.finished") if line["path"].endswith("toggle/")
    ]
    assert committed["request_id"] == toggle_line["request_id"] != logs.NO_REQUEST


# --- The access log and Server-Timing ----------------------------------------------------------
def test_access_line__method_path_status_latency_and_the_person__no_query_string(
    client: Client, captured: Captured, administrator: User
) -> None:
    # Given a signed-in person
    client.force_login(administrator)

    # When they ask for a page with a query string
    response = client.get("/api/v1/me/?search=x", headers={"X-Request-ID": "me-1"})

    # Then one access line names the request, its answer, its time and the person, and the
    # response carries Server-Timing
    assert response.status_code == 200
    (line,) = captured.events("request.finished")
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/me/", 200)
    assert (line["user_id"], line["api_key_id"], line["request_id"]) == (
        administrator.pk,
        None,
        "me-1",
    )
    assert line["duration_ms"] > 0
    assert line["db_queries"] >= 1
    assert line["db_ms"] <= line["duration_ms"]
    assert response["Server-Timing"].startswith("app;dur=")
    assert ", db;dur=" in response["Server-Timing"]


def test_access_line__environment_key__its_id_on_the_fast_and_full_paths(
    client: Client, captured: Captured, db: None
) -> None:
    # Given a server key, with the caches on so the second call takes the fast path

    staging = services.project_create(key="demo", name="Demo").environments.get(key="staging")
    secret = issue(staging)
    key_id = staging.api_keys.get().pk
    with caching():
        # When it evaluates twice (cold: the full path; warm: the fast path)
        responses = [call(client, "post", "/api/v1/evaluate", secret) for _ in range(2)]

    # Then both access lines name the key by its id, never by its secret, with no person
    assert [response.status_code for response in responses] == [200, 200]
    lines = captured.events("request.finished")
    assert [(line["api_key_id"], line["user_id"]) for line in lines] == [(key_id, None)] * 2
    assert all("app;dur=" in response["Server-Timing"] for response in responses)
    assert secret not in captured.text


def test_server_timing__on_pages_outside_the_api_too(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    app, database = response["Server-Timing"].split(", ")
    assert app.startswith("app;dur=")
    assert database == "db;dur=0.0"
