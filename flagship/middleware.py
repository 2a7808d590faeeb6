"""Request-wide plumbing: request ids, the API version header, body-size limits, problem details.

Order in ``MIDDLEWARE``: ``RequestIdMiddleware`` first (every response and log line gets the id),
``ApiErrorMiddleware`` next (it sees every response of the inner layers), then the rest;
``BodySizeLimitMiddleware`` and ``AdminLoginRateLimitMiddleware`` after ``CorsMiddleware``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.core.signals import got_request_exception, request_finished
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template import loader
from django.utils.html import escape
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]  # ships no types

from flags import conf  # settings only
from flagship.logs import NO_REQUEST, current_request_id, set_request_id

# flagship.errors imports DRF, which needs the app registry: it is imported inside the functions
# that use it.

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
API_VERSION_HEADER = "API-Version"
# An inbound id is kept only when it is short and plain, so it is safe in headers and logs.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_LIMITED_PREFIXES = ("/api/", "/ofrep/")

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AnyGetResponse = GetResponse | Callable[[HttpRequest], Awaitable[HttpResponseBase]]
# What Django raises (wrapping psycopg's, and psycopg_pool's PoolTimeout) when the database
# cannot be reached: refused, dropped or timed-out connections.
DATABASE_ERRORS = (OperationalError, InterfaceError)


class DualMiddleware:
    """A middleware that runs under WSGI and ASGI alike: async when the inner layers are.

    Subclasses define ``__call__`` for the synchronous path and return ``self._acall(request)``
    (a coroutine) from it when ``is_async``, as Django's documentation on asynchronous
    middleware describes.
    """

    sync_capable = True
    async_capable = True
    get_response: Any  # sync or async: each path of a subclass knows which

    def __init__(self, get_response: AnyGetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        """The synchronous path, or the coroutine of ``_acall`` when ``is_async``."""
        raise NotImplementedError


class HookMiddleware(DualMiddleware):
    """A middleware made of two hooks that do no I/O: run inline under WSGI and ASGI alike.

    ``before`` may answer instead of the inner layers; ``after`` sees every response (the inner
    layers' or ``before``'s), as Django's ``MiddlewareMixin`` runs ``process_request`` and
    ``process_response``. Under ASGI the hooks run on the event loop (no thread hop), so the
    change stream's own chain (``flagship.asgi``) never waits for the one thread that runs
    synchronous middleware.
    """

    def __call__(self, request: HttpRequest) -> Any:
        """Answer (the async path returns a coroutine)."""
        if self.is_async:
            return self._acall(request)
        response = self.before(request)
        if response is None:
            response = self.get_response(request)
        return self.after(request, response)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = self.before(request)
        if response is None:
            response = await self.get_response(request)
        return self.after(request, response)

    def before(self, request: HttpRequest) -> HttpResponseBase | None:
        """An answer instead of the inner layers', or ``None`` to go on."""
        return None

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """The response to return."""
        return response


class RequestIdMiddleware(HookMiddleware):
    """Take a sane inbound ``X-Request-ID`` or make one; expose it on the request and response."""

    def __init__(self, get_response: AnyGetResponse) -> None:
        super().__init__(get_response)
        request_finished.connect(_forget_request_id, dispatch_uid="flagship.request_id")

    def before(self, request: HttpRequest) -> None:
        """Tag the request and its log lines with the id."""
        request_id = request_id_of(request.META)
        request.request_id = request_id  # type: ignore[attr-defined]  # read by errors.problem
        # Not reset on the way out: Django logs the response (django.request) after this returns;
        # request_finished (the server closing the response) resets it.
        set_request_id(request_id)

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Tag the response with the id."""
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        return response


def request_id_of(meta: dict[str, Any]) -> str:
    """The request's id: its sane inbound ``X-Request-ID``, else a new one (the wire path's too)."""
    inbound = meta.get("HTTP_X_REQUEST_ID", "")  # not request.headers: all parsed
    return inbound if _SANE_REQUEST_ID.fullmatch(inbound) else uuid.uuid4().hex


def _forget_request_id(sender: object, **kwargs: object) -> None:
    """``request_finished`` receiver: lines the thread logs after the response are no request's."""
    set_request_id(NO_REQUEST)


class ApiErrorMiddleware(HookMiddleware):
    """Problem details for every error under /api/, and ``API-Version`` on /api/v1 responses.

    DRF views already answer with problem details (``flagship.errors.exception_handler``); this
    covers what happens outside them: unknown routes, Django's own 4xx responses, exceptions in
    plain views or other middleware, and the database going away.
    """

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Rewrite error responses under /api/ and stamp the API version."""
        from flagship import errors  # noqa: PLC0415  # see the note on imports above

        if not errors.is_api_path(request.path):
            return response
        if response.status_code >= 400 and not _is_problem(response):
            response = _as_problem(request, response)
        if request.path.startswith("/api/v1/") and API_VERSION_HEADER not in response:
            response[API_VERSION_HEADER] = "v1"
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer an exception escaping a view under /api/ without a traceback."""
        from flagship import errors  # noqa: PLC0415  # see the note on imports above

        if not errors.is_api_path(request.path):
            return None
        found = errors.problem_for_exception(exception, request)
        headers: dict[str, str] = {}
        if found is None:
            body, status = errors.internal_error(request, exception), 500
        else:
            body, status, headers = found
        return HttpResponse(
            json.dumps(body),
            status=status,
            content_type=errors.PROBLEM_CONTENT_TYPE,
            headers=headers,
        )


def _is_problem(response: HttpResponseBase) -> bool:
    from flagship import errors  # noqa: PLC0415  # see the note on imports above

    return str(response.get("Content-Type", "")).startswith(errors.PROBLEM_CONTENT_TYPE)


def _as_problem(request: HttpRequest, response: HttpResponseBase) -> HttpResponse:
    from flagship import errors  # noqa: PLC0415  # see the note on imports above

    status = response.status_code
    detail = response.reason_phrase
    data = getattr(response, "data", None)  # a DRF Response's data
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        detail = data["detail"]
    if status >= 500:
        detail = "An unexpected error occurred."
    # Keep Allow, Retry-After, WWW-Authenticate, CORS and the rest: only the body changes.
    headers = {
        name: str(value)
        for name, value in response.items()
        if name.lower() not in ("content-type", "content-length")
    }
    return errors.problem_response(
        request, status=status, code=errors.code_for_status(status), detail=detail, headers=headers
    )


class BodySizeLimitMiddleware(HookMiddleware):
    """Refuse a declared ``Content-Length`` above DATA_UPLOAD_MAX_MEMORY_SIZE before a view reads.

    DRF's parsers read the stream directly, so Django's own check (on ``request.body``) never runs
    for JSON bodies; this one does, on /api/ (problem details) and /ofrep/ (OFREP's error shape).
    A query string of more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters is refused here too (400):
    Django raises ``TooManyFieldsSent`` where a view first reads it, which would be a 500 there.
    """

    def before(self, request: HttpRequest) -> HttpResponseBase | None:
        """Answer 413 for an oversized declared body on the API routes."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith(_LIMITED_PREFIXES):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return _too_large(request, limit)
        if request.META.get("QUERY_STRING") and request.path.startswith(_LIMITED_PREFIXES):
            try:
                request.GET  # noqa: B018  # parsed once, here; the view reads the same QueryDict
            except TooManyFieldsSent:
                return _too_many_parameters(request)
        return None


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    from flagship import errors  # noqa: PLC0415  # see the note on imports above

    detail = f"The request body is larger than {limit} bytes."
    if errors.is_api_path(request.path):
        return errors.problem_response(request, status=413, code="payload_too_large", detail=detail)
    return HttpResponse(
        json.dumps({"errorCode": "GENERAL", "errorDetails": detail}),
        status=413,
        content_type="application/json",
    )


def _too_many_parameters(request: HttpRequest) -> HttpResponse:
    from flagship import errors  # noqa: PLC0415  # see the note on imports above

    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    detail = f"The query string has more than {limit} parameters."
    if errors.is_api_path(request.path):
        return errors.problem_response(
            request, status=400, code="too_many_parameters", detail=detail
        )
    return HttpResponse(
        json.dumps({"errorCode": "GENERAL", "errorDetails": detail}),
        status=400,
        content_type="application/json",
    )


class AdminLoginRateLimitMiddleware:
    """Limit sign-in attempts (POST /admin/login/) per address: FLAGSHIP_ADMIN_LOGIN_RATE."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Answer 429 with Retry-After once the address has used up its attempts."""
        from flagship import errors  # noqa: PLC0415  # see the note on imports above

        rate = conf.rate(conf.ADMIN_LOGIN_RATE)
        if request.method == "POST" and request.path == "/admin/login/" and rate:
            usage = get_usage(
                request, group="admin-login", key="ip", rate=rate, method="POST", increment=True
            )
            if usage is not None and usage["should_limit"]:
                wait = errors.retry_after(usage["time_left"])
                logger.warning("admin.login_rate_limited")
                return HttpResponse(
                    f"Too many sign-in attempts. Try again in {wait} seconds.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                    headers={"Retry-After": wait},
                )
        return self.get_response(request)


# --- HTML pages (the admin) while the database is down --------------------------------------
DATABASE_UNAVAILABLE_TEMPLATE = "503_database.html"
# Seconds a browser (or a person) should wait before trying again.
DATABASE_UNAVAILABLE_RETRY_AFTER = 30
# Database errors closer together than this belong to one outage window, logged once.
OUTAGE_LOG_WINDOW_SECONDS = 60.0
_NOT_HTML_PREFIXES = ("/api/", "/ofrep/")  # problem details, and OFREP's own error shape
_DATABASE_ERROR = "_flagship_database_error"  # set on a request by _remember_database_error


class OutageLog:
    """Says whether a database error opens a new outage window (a warning) or extends the open one.

    A window is a run of database errors less than ``window`` seconds apart; thread-safe.
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._last_error: float | None = None

    def opens_window(self, now: float | None = None) -> bool:
        """Record an error at ``now`` (monotonic); ``True`` when it starts a new window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            opens = self._last_error is None or now - self._last_error > self.window
            self._last_error = now
        return opens

    def reset(self) -> None:
        """Forget the open window (tests)."""
        with self._lock:
            self._last_error = None


OUTAGE_LOG = OutageLog(OUTAGE_LOG_WINDOW_SECONDS)


class DatabaseUnavailableMiddleware:
    """A 503 page instead of a 500 when the database cannot be reached, on every HTML page.

    /api/ (``ApiErrorMiddleware``: problem details) and /ofrep/ are left alone. Only
    ``OperationalError`` and ``InterfaceError`` count (what psycopg raises, wrapped by Django,
    when the server refuses, drops or times out a connection, and what the pool raises when it
    has no connection to give); every other exception goes on to Django's 500 handling.

    It sits just before ``SessionMiddleware`` in MIDDLEWARE, so it wraps the session, CSRF,
    authentication and message layers: in the admin the database is first needed inside the
    view (the lazy ``request.user`` loads the session), caught by ``process_exception``; when a
    layer inside it fails instead (``SessionMiddleware`` saving the session on the way out),
    Django has already turned the exception into a 500 before it gets here, so the exception is
    noted from ``got_request_exception`` and the 500 replaced. The page is rendered without
    the request: no context processors, no session or user, nothing that needs the database.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        got_request_exception.connect(
            _remember_database_error, dispatch_uid="flagship.database_unavailable"
        )

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Replace a 500 caused by a database error in an inner layer with the 503 page."""
        response = self.get_response(request)
        error = getattr(request, _DATABASE_ERROR, None)
        if error is not None and response.status_code >= 500 and _is_html_path(request.path):
            return database_unavailable_response(request, error)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer a database error escaping a view with the 503 page."""
        if isinstance(exception, DATABASE_ERRORS) and _is_html_path(request.path):
            return database_unavailable_response(request, exception)
        return None


def _is_html_path(path: str) -> bool:
    return not path.startswith(_NOT_HTML_PREFIXES)


def _remember_database_error(
    sender: object, request: HttpRequest | None = None, **kwargs: object
) -> None:
    """``got_request_exception`` receiver: note a database error on the request it broke.

    Django sends the signal from inside its ``except`` block, so the exception is current.
    """
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, DATABASE_ERRORS):
        setattr(request, _DATABASE_ERROR, error)


def database_unavailable_response(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """The 503 page for ``request``, logging the outage once per window."""
    request_id = getattr(request, "request_id", None) or current_request_id()
    if OUTAGE_LOG.opens_window():
        first_line = (str(exception).strip().splitlines() or [""])[0]
        # Pages answer 503 until it is back.
        logger.warning(
            "database.unavailable",
            extra={
                "request_id": request_id,
                "error": f"{type(exception).__name__}: {first_line}",
                "method": request.method,
                "path": request.path,
            },
        )
    else:
        logger.debug(
            "database.unavailable_page_served",
            extra={"method": request.method, "path": request.path},
        )
    context = {"request_id": request_id, "retry_after": DATABASE_UNAVAILABLE_RETRY_AFTER}
    try:
        body = loader.get_template(DATABASE_UNAVAILABLE_TEMPLATE).render(context)
    except Exception:  # e.g. a missing static manifest entry: log it, and still answer 503
        logger.exception("database.unavailable_page_failed", extra={"request_id": request_id})
        body = _PLAIN_PAGE.format(request_id=escape(request_id))
    response = HttpResponse(
        body,
        status=503,
        content_type="text/html; charset=utf-8",
        headers={
            "Retry-After": str(DATABASE_UNAVAILABLE_RETRY_AFTER),
            "Cache-Control": "no-store",
        },
    )
    # Logged above, once per outage window: keep django.request from logging every 503 as an
    # error (its log_response skips responses marked so).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


_PLAIN_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    "<title>Database unavailable | FlagShip</title></head><body>"
    "<h1>Database unavailable</h1>"
    "<p>FlagShip cannot reach its database. Flag evaluation keeps working from the last known "
    "rulesets; changes cannot be saved right now. This page will work again as soon as the "
    "database is back.</p><p>Request id: <code>{request_id}</code></p></body></html>"
)
