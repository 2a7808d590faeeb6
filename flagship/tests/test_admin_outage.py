"""The admin while PostgreSQL is down: a 503 page, not a 500; nothing half-written; recovery.

The PostgreSQL tests put a ``FaultProxy`` between FlagShip and the test database (as
flags/tests/test_degradation.py does), sign an administrator in, sever the proxy, check what the
admin answers, restore it and check that the admin works again without restarting anything. They
run twice: with plain connections and with psycopg's pool (settings.DATABASES OPTIONS pool).

The fast tests raise the database errors from tiny views and from the session layer, on any
database (SQLite included), without the ``db`` fixture: if the 503 page needed the database,
pytest-django would refuse the access and they would fail.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.signals import request_finished, request_started
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, include, path, reverse

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState
from flagship.faults import FaultProxy
from flagship.middleware import (
    OUTAGE_LOG,
    DatabaseUnavailableMiddleware,
    OutageLog,
    database_unavailable_response,
)

pytestmark = pytest.mark.urls("flagship.tests.test_admin_outage")

FLAG_LIST = "/admin/flags/flag/"
MESSAGE = (
    "FlagShip cannot reach its database. Flag evaluation keeps working from the last known "
    "rulesets; changes cannot be saved right now. This page will work again as soon as the "
    "database is back."
)
MIDDLEWARE_PATH = "flagship.middleware.DatabaseUnavailableMiddleware"


# --- A tiny URLconf: views that fail the way a database outage makes them fail -----------------
def operational_error_view(request: HttpRequest) -> HttpResponse:
    raise OperationalError("connection failed: Connection refused")


def interface_error_view(request: HttpRequest) -> HttpResponse:
    raise InterfaceError("connection already closed")


def other_error_view(request: HttpRequest) -> HttpResponse:
    raise ValueError("not a database problem")


def session_writing_view(request: HttpRequest) -> HttpResponse:
    request.session["seen"] = True  # saved by SessionMiddleware on the way out
    return HttpResponse("ok")


urlpatterns: list[URLPattern | URLResolver] = [
    path("test/outage/operational/", operational_error_view),
    path("test/outage/interface/", interface_error_view),
    path("test/outage/other/", other_error_view),
    path("test/outage/session/", session_writing_view),
    path("api/v1/test/outage/operational/", operational_error_view),
    path("ofrep/v1/test/outage/operational/", operational_error_view),
    path("", include("flagship.urls")),
]


@pytest.fixture(autouse=True)
def new_outage_window() -> Iterator[None]:
    """Every test starts outside an outage window (the log is process-wide)."""
    OUTAGE_LOG.reset()
    yield
    OUTAGE_LOG.reset()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "flagship.middleware" and record.levelno == logging.WARNING
    ]


def assert_outage_page(response: Any) -> str:
    """The 503 page's contract; returns the request id it shows."""
    assert response.status_code == 503
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Retry-After"] == "30"
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert MESSAGE in body
    assert "admin/css/base.css" in body  # the admin's look
    shown = re.search(r'data-testid="request-id">([^<]+)<', body)
    assert shown is not None
    assert shown.group(1) == response["X-Request-ID"]
    return shown.group(1)


# --- Fast: any database ------------------------------------------------------------------------
def test_middleware_sits_before_the_session_layer_and_after_request_ids() -> None:
    order = list(settings.MIDDLEWARE)
    position = order.index(MIDDLEWARE_PATH)
    assert order.index("flagship.middleware.RequestIdMiddleware") < position
    # It wraps every layer that may touch the database for a signed-in person.
    for inner in (
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ):
        assert order.index(inner) > position, inner


@pytest.mark.parametrize("url", ["/test/outage/operational/", "/test/outage/interface/"])
def test_database_error_in_a_view__503_page_with_request_id_logged_as_a_warning(
    client: Client, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    # Given a page whose view cannot reach the database
    with caplog.at_level(logging.DEBUG):
        # When it is requested
        response = client.get(url, headers={"X-Request-ID": "outage-1"})

    # Then it answers the 503 page, showing the request id, with one warning naming it, and
    # without Django's per-response error log
    assert assert_outage_page(response) == "outage-1"
    (warning,) = warnings_of(caplog)
    assert warning.request_id == "outage-1"  # type: ignore[attr-defined]  # set by the middleware
    assert "database.unavailable" in warning.getMessage()
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_database_errors__logged_once_per_outage_window(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a database outage
    with caplog.at_level(logging.INFO):
        # When five pages are requested during it
        responses = [
            client.get("/test/outage/operational/", headers={"X-Request-ID": f"r{n}"})
            for n in range(5)
        ]

    # Then every one answers 503, and the outage is logged once, with the first request's id
    assert [response.status_code for response in responses] == [503] * 5
    (warning,) = warnings_of(caplog)
    assert warning.request_id == "r0"  # type: ignore[attr-defined]  # set by the middleware


def test_outage_log__a_window_is_a_run_of_errors_closer_than_the_window() -> None:
    log = OutageLog(window=60.0)
    assert log.opens_window(now=1000.0) is True
    assert log.opens_window(now=1050.0) is False
    assert log.opens_window(now=1100.0) is False  # 50 s after the previous one: same window
    assert log.opens_window(now=1161.0) is True  # 61 s of quiet: a new outage
    log.reset()
    assert log.opens_window(now=1162.0) is True


def test_other_exceptions__not_swallowed(client: Client) -> None:
    # A bug is not an outage: it still raises (the test client re-raises what Django saw)...
    with pytest.raises(ValueError, match="not a database problem"):
        client.get("/test/outage/other/")
    # ...and a real server answers Django's 500, not the database page.
    response = Client(raise_request_exception=False).get("/test/outage/other/")
    assert response.status_code == 500
    assert MESSAGE not in response.content.decode()


def test_api_and_ofrep__left_to_their_own_error_shapes(client: Client) -> None:
    api = client.get("/api/v1/test/outage/operational/")
    assert api.status_code == 503
    assert api["Content-Type"] == "application/problem+json"
    assert api.json()["code"] == "database_unavailable"

    ofrep = Client(raise_request_exception=False).get("/ofrep/v1/test/outage/operational/")
    assert MESSAGE not in ofrep.content.decode()


def test_session_layer_fails_on_the_way_out__503_page(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a database that goes away after the view, when SessionMiddleware saves the session
    def unreachable(self: SessionStore, must_create: bool = False) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(SessionStore, "save", unreachable)

    # When a page that writes to the session is requested (as a server would: no re-raise)
    response = Client(raise_request_exception=False).get(
        "/test/outage/session/", headers={"X-Request-ID": "late-1"}
    )

    # Then the 500 Django made of it inside the session layer is the 503 page instead
    assert assert_outage_page(response) == "late-1"
    assert len(warnings_of(caplog)) == 1


def test_signed_in_admin__session_cannot_be_loaded__503_page_and_nothing_written(
    client: Client, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a signed-in administrator and a flag that is off in staging
    client.force_login(User.objects.create_superuser("root", "root@example.com", "x-not-used"))
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    assert client.get(FLAG_LIST).status_code == 200

    # When the database cannot be reached to load the session (what request.user needs first)
    def unreachable(self: SessionStore) -> dict[str, Any]:
        raise OperationalError("connection failed: Connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(SessionStore, "load", unreachable)
        listed = client.get(FLAG_LIST)
        toggled = client.post(
            reverse("admin:flags_flag_toggle", args=[flag.pk, staging.pk]), {"enabled": "true"}
        )

    # Then both answer the 503 page, the flag is still off, and the admin works again after
    assert_outage_page(listed)
    assert_outage_page(toggled)
    assert FlagState.objects.get(flag=flag, environment=staging).enabled is False
    assert client.get(FLAG_LIST).status_code == 200


def test_page__renders_without_a_request_context(caplog: pytest.LogCaptureFixture) -> None:
    # No db fixture: a query (a context processor, the session, the user) would fail the test.
    request = RequestFactory().get("/admin/")
    request.request_id = "rf-1"  # type: ignore[attr-defined]  # as RequestIdMiddleware sets it
    response = database_unavailable_response(request, OperationalError("down"))
    response["X-Request-ID"] = "rf-1"  # RequestIdMiddleware's part
    assert assert_outage_page(response) == "rf-1"


def test_page__falls_back_to_plain_html_when_the_template_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str) -> Any:
        raise ValueError("Missing staticfiles manifest entry for 'admin/css/base.css'")

    monkeypatch.setattr("django.template.loader.get_template", broken)
    request = RequestFactory().get("/admin/")
    request.request_id = "<rf-2>"  # type: ignore[attr-defined]  # escaped on the page
    response = database_unavailable_response(request, OperationalError("down"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert MESSAGE in response.content.decode()
    assert "&lt;rf-2&gt;" in response.content.decode()


def test_middleware__passes_healthy_responses_through() -> None:
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("fine")

    layer = DatabaseUnavailableMiddleware(view)
    response = layer(RequestFactory().get("/admin/"))
    assert isinstance(response, HttpResponse)
    assert (response.status_code, response.content) == (200, b"fine")
    assert layer.process_exception(RequestFactory().get("/admin/"), KeyError("x")) is None


# --- PostgreSQL, really cut --------------------------------------------------------------------
@pytest.fixture
def served_like_production() -> Iterator[None]:
    """Close broken connections at each request's start and end, as Django's handlers do.

    The test client disconnects ``close_old_connections`` (to keep a test's transaction); a
    server runs it around every request, which is what makes recovery automatic. A receiver of
    its own is not disconnected by the client.
    """

    def around_request(**kwargs: Any) -> None:
        close_old_connections()

    request_started.connect(around_request, dispatch_uid="test_admin_outage.started")
    request_finished.connect(around_request, dispatch_uid="test_admin_outage.finished")
    yield
    request_started.disconnect(dispatch_uid="test_admin_outage.started")
    request_finished.disconnect(dispatch_uid="test_admin_outage.finished")


@pytest.fixture(params=["plain", "pool"])
def database_proxy(
    request: pytest.FixtureRequest, transactional_db: None, served_like_production: None
) -> Iterator[FaultProxy]:
    """Re-point the default connection at a proxy in front of the test database.

    ``plain``: a connection per request, refused at once. ``pool``: psycopg's pool, as in
    production, with a one-second wait for a connection (production's is
    DATABASE_POOL_TIMEOUT) so the outage answers quickly.
    """
    connection = connections["default"]
    original = connection.settings_dict.copy()
    original_options = dict(original.get("OPTIONS", {}))
    connection.close()
    if original_options.get("pool"):
        connection.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's
    pooled = request.param == "pool"
    with FaultProxy(
        original.get("HOST") or "127.0.0.1", int(original.get("PORT") or 5432)
    ) as proxy:
        connection.settings_dict["HOST"] = proxy.host
        connection.settings_dict["PORT"] = str(proxy.port)
        options = {key: value for key, value in original_options.items() if key != "pool"}
        if pooled:
            options["pool"] = {"min_size": 1, "max_size": 4, "timeout": 1.0}
            connection.settings_dict["CONN_MAX_AGE"] = 0
            connection.settings_dict["CONN_HEALTH_CHECKS"] = True
        connection.settings_dict["OPTIONS"] = options
        try:
            yield proxy
        finally:
            proxy.restore()
            connection.close()
            if pooled:
                connection.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's
            connection.settings_dict.clear()
            connection.settings_dict.update(original)
            connection.settings_dict["OPTIONS"] = original_options


def eventually(get: Callable[[], Any], *, seconds: float = 15.0) -> Any:
    """The first response that is not 503 (psycopg's pool retries with a back-off)."""
    deadline = time.monotonic() + seconds
    response = get()
    while response.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = get()
    return response


@pytest.mark.requires_postgres
def test_postgres_down__admin_answers_503_page_writes_nothing_and_recovers(
    database_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a signed-in administrator (a superuser: earlier transactional tests may have flushed
    # the role groups) and a flag that is off in staging, all through the proxy
    administrator = User.objects.create_superuser("root", "root@example.com", "x-not-used-x")
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    toggle = reverse("admin:flags_flag_toggle", args=[flag.pk, staging.pk])
    client = Client()
    client.force_login(administrator)
    assert client.get(FLAG_LIST).status_code == 200
    assert database_proxy.accepted > 0  # the requests did go through the proxy
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    history = FlagState.history.count()  # simple_history's manager

    # When PostgreSQL is cut off
    database_proxy.sever()
    with caplog.at_level(logging.INFO):
        listed = client.get(FLAG_LIST, headers={"X-Request-ID": "outage-list"})
        again = client.get(FLAG_LIST)
        toggled = client.post(toggle, {"enabled": "true"})

    # Then the list and the write answer the 503 page, logged once for the whole outage
    assert assert_outage_page(listed) == "outage-list"
    assert_outage_page(again)
    assert_outage_page(toggled)
    (warning,) = warnings_of(caplog)
    assert warning.request_id == "outage-list"  # type: ignore[attr-defined]  # see the middleware
    assert "OperationalError" in warning.error  # type: ignore[attr-defined]  # an extra
    assert not [r for r in caplog.records if r.name == "django.request"]

    # When it is back, with nothing restarted
    database_proxy.restore()

    # Then the admin answers again, nothing was written, and the same change now goes through
    assert eventually(lambda: client.get(FLAG_LIST)).status_code == 200
    assert FlagState.objects.get(flag=flag, environment=staging).enabled is False
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version
    assert FlagState.history.count() == history
    done = client.post(toggle, {"enabled": "true"})
    assert done.status_code == 302, done.content
    assert FlagState.objects.get(flag=flag, environment=staging).enabled is True
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 1


@pytest.mark.requires_postgres
def test_postgres_cut_in_the_middle_of_a_write__503_page_and_nothing_half_written(
    database_proxy: FaultProxy,
) -> None:
    # Given a signed-in administrator and a flag that is off in staging
    administrator = User.objects.create_superuser("root", "root@example.com", "x-not-used-x")
    project = services.project_create(key="demo", name="Demo")
    staging = project.environments.get(key="staging")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    client = Client()
    client.force_login(administrator)
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    history = FlagState.history.count()  # simple_history's manager
    statements: list[str] = []

    def cut_before_the_version_bump(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        # The state row and its history row are already written in this transaction.
        statements.append(sql)
        if sql.startswith('UPDATE "flags_environment"'):
            database_proxy.sever()
        return execute(sql, params, many, context)

    # When PostgreSQL goes away in the middle of a toggle's transaction
    with connections["default"].execute_wrapper(cut_before_the_version_bump):
        toggled = client.post(
            reverse("admin:flags_flag_toggle", args=[flag.pk, staging.pk]), {"enabled": "true"}
        )

    # Then the page says so, and once it is back none of the transaction's writes is there
    assert any(sql.startswith('UPDATE "flags_flagstate"') for sql in statements)
    assert_outage_page(toggled)
    database_proxy.restore()
    assert eventually(lambda: client.get(FLAG_LIST)).status_code == 200
    assert FlagState.objects.get(flag=flag, environment=staging).enabled is False
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version
    assert FlagState.history.count() == history
    assert Flag.objects.filter(pk=flag.pk).exists()
