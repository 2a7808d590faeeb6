"""Request-wide plumbing: request ids, the API version header, body-size limits, problem details.

Order in ``MIDDLEWARE``: ``RequestIdMiddleware`` first (every response and log line gets the id),
``ApiErrorMiddleware`` next (it sees every response of the inner layers), then the rest;
``BodySizeLimitMiddleware`` and ``AdminLoginRateLimitMiddleware`` after ``CorsMiddleware``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]  # ships no types

# LOGGING imports this module (RequestIdFilter) while Django configures logging, before apps are
# loaded, when DRF cannot be imported yet: so flagship.errors (which imports DRF) is imported
# inside the functions that use it.

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
API_VERSION_HEADER = "API-Version"
# An inbound id is kept only when it is short and plain, so it is safe in headers and logs.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_LIMITED_PREFIXES = ("/api/", "/ofrep/")

GetResponse = Callable[[HttpRequest], HttpResponseBase]


def current_request_id() -> str:
    """The id of the request being handled, ``-`` outside a request."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Add ``request_id`` to every log record (configured on the handlers in LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current request id; never drops a record."""
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class RequestIdMiddleware:
    """Take a sane inbound ``X-Request-ID`` or make one; expose it on the request and response."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Tag the request, its log lines and its response with the id."""
        inbound = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = inbound if _SANE_REQUEST_ID.fullmatch(inbound) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # read by errors.problem
        # Not reset on the way out: Django logs the response (django.request) after this returns.
        _request_id.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class ApiErrorMiddleware:
    """Problem details for every error under /api/, and ``API-Version`` on /api/v1 responses.

    DRF views already answer with problem details (``flagship.errors.exception_handler``); this
    covers what happens outside them: unknown routes, Django's own 4xx responses, exceptions in
    plain views or other middleware, and the database going away.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Rewrite error responses under /api/ and stamp the API version."""
        from flagship import errors  # noqa: PLC0415  # see the note on imports above

        response = self.get_response(request)
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


class BodySizeLimitMiddleware:
    """Refuse a declared ``Content-Length`` above DATA_UPLOAD_MAX_MEMORY_SIZE before a view reads.

    DRF's parsers read the stream directly, so Django's own check (on ``request.body``) never runs
    for JSON bodies; this one does, on /api/ (problem details) and /ofrep/ (OFREP's error shape).
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Answer 413 for an oversized declared body on the API routes."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith(_LIMITED_PREFIXES):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return _too_large(request, limit)
        return self.get_response(request)


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


class AdminLoginRateLimitMiddleware:
    """Limit sign-in attempts (POST /admin/login/) per address: FLAGSHIP_ADMIN_LOGIN_RATE."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Answer 429 with Retry-After once the address has used up its attempts."""
        from flagship import errors  # noqa: PLC0415  # see the note on imports above

        rate = settings.FLAGSHIP_ADMIN_LOGIN_RATE
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
