"""The access log and request timing: one ``request.finished`` line and a ``Server-Timing`` header.

``AccessLogMiddleware`` sits right after ``RequestIdMiddleware`` (so its line carries the request
id) and times everything inside it: the other middleware, the view, and the database queries made
on this thread's default connection (a ``connection.execute_wrapper``). Every response, on the
evaluation fast path and the full DRF path alike, gets ``Server-Timing: app;dur=<ms>,
db;dur=<ms>`` (RFC 8673's format, shown in browsers' developer tools); a streamed response is
timed to its first byte, not its end.

The line names the caller without its secret: ``user_id`` for a person (session, JWT or admin
token) and ``api_key_id`` for an API key (an admin token has both). The path is logged without its
query string.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import empty

from accounts.models import ApiKey
from flagship.logs import write_direct
from flagship.middleware import DualMiddleware

logger = logging.getLogger(__name__)

SERVER_TIMING_HEADER = "Server-Timing"
_API_KEY_ID = "_flagship_api_key_id"  # set by note_api_key (the fast path)

GetResponse = Callable[[HttpRequest], HttpResponseBase]


def note_api_key(request: HttpRequest, key_id: int) -> None:
    """Name the API key that authenticated ``request`` in its access log line (the fast path).

    DRF's path needs no call: its authenticator leaves the key on ``request.auth``.
    """
    setattr(request, _API_KEY_ID, key_id)


class DatabaseTimer:
    """A ``connection.execute_wrapper``: the time spent in queries and how many ran."""

    __slots__ = ("queries", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.queries = 0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        """Run the query, adding its duration (failed or not)."""
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1


class AccessLogMiddleware(DualMiddleware):
    """Time each request, answer ``Server-Timing``, and log one ``request.finished`` line.

    Sync and async capable. Under ASGI (the change stream's own chain, ``flagship.asgi``) the
    inner layers run on the event loop and their queries in worker threads, on those threads'
    connections: ``db`` there counts nothing.
    """

    def __call__(self, request: HttpRequest) -> Any:
        """Serve the request, then stamp the timing header and log the line."""
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        database = DatabaseTimer()
        with connection.execute_wrapper(database):
            response = self.get_response(request)
        return _finish(request, response, started, database)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = await self.get_response(request)
        return _finish(request, response, started, DatabaseTimer())


def _finish(
    request: HttpRequest, response: HttpResponseBase, started: float, database: DatabaseTimer
) -> HttpResponseBase:
    """Stamp ``Server-Timing`` on the response and log the request's line."""
    duration_ms = (time.perf_counter() - started) * 1000
    response[SERVER_TIMING_HEADER] = server_timing(duration_ms, database.seconds * 1000)
    log_request(
        str(request.method),
        request.path,
        response.status_code,
        duration_ms,
        database,
        _user_id(request),
        _api_key_id(request),
    )
    return response


def server_timing(duration_ms: float, database_ms: float) -> str:
    """The ``Server-Timing`` value: the request's and its queries' milliseconds."""
    return f"app;dur={duration_ms:.1f}, db;dur={database_ms:.1f}"


def log_request(  # noqa: PLR0917  # the line's fields
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    database: DatabaseTimer,
    user_id: int | None,
    api_key_id: int | None,
) -> None:
    """Log the ``request.finished`` line (``ERROR`` for a 5xx answer); the wire path's too."""
    level = logging.ERROR if status >= 500 else logging.INFO
    if logger.isEnabledFor(level):
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_ms, 2),
            "db_ms": round(database.seconds * 1000, 2),
            "db_queries": database.queries,
            "user_id": user_id,
            "api_key_id": api_key_id,
        }
        # Most lines: written straight to the console handler (the same line, a third of the
        # cost); a 5xx line, or any other logging set-up, through the logging module.
        if level != logging.INFO or not write_direct(logger, "request.finished", fields):
            logger.log(level, "request.finished", extra=fields)


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in person's id, if the request already knows it (never a query to find out)."""
    user: Any = request.__dict__.get("user")
    if user is None:
        return None
    if getattr(user, "_wrapped", None) is empty:  # AuthenticationMiddleware's lazy user, unread
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return pk if isinstance(pk, int) else None


def noted_api_key(request: HttpRequest) -> int | None:
    """The key :func:`note_api_key` named on ``request``, if any."""
    noted = getattr(request, _API_KEY_ID, None)
    return None if noted is None else int(noted)


def _api_key_id(request: HttpRequest) -> int | None:
    noted = noted_api_key(request)
    if noted is not None:
        return noted
    auth = getattr(request, "auth", None)  # DRF sets it on the Django request too
    return auth.pk if isinstance(auth, ApiKey) else None
