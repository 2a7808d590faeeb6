"""RFC 9457 problem details for every error under /api/ (OFREP formats its own bodies).

One DRF exception handler turns exceptions into ``application/problem+json`` bodies with a stable
snake_case ``code``, field errors and the request id; ``flagship.middleware`` does the same for
errors raised outside DRF views. No stack trace, SQL or secret ever reaches a client: unexpected
exceptions are logged with the request id and answered with a bare ``internal_error``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from flags import errors as domain
from flagship import schema  # registers the security scheme extension with drf-spectacular

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = schema.PROBLEM_MEDIA_TYPE
PROBLEM_TYPE_BASE = "https://flagship.dev/problems/"
API_PREFIX = "/api/"
# Seconds a client should wait before retrying when the database does not answer.
DATABASE_RETRY_AFTER = 5

# Reusable extend_schema responses: ``responses={200: Out, **PROBLEM_RESPONSES}`` (or pick keys).
PROBLEM_RESPONSES: dict[tuple[int, str], OpenApiResponse] = {
    (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        response=schema.PROBLEM_REF, description=description
    )
    for status, description in (
        (400, "`invalid` with field errors, `malformed_json`, or `json_too_deep` (nesting)."),
        (401, "Missing or invalid credentials."),
        (403, "`permission_denied`: the caller may not do this."),
        (404, "`not_found`."),
        (409, "`in_use`: the object is referenced elsewhere."),
        (412, "`stale_version`: the object changed since it was read (If-Match)."),
        (413, "`payload_too_large`."),
        (415, "`unsupported_media_type`."),
        (429, "`rate_limited`; see Retry-After."),
        (503, "`capability_disabled`: switched off by FlagShip's own flags."),
    )
}

# Codes for DRF's own default codes where ours differ.
_DRF_CODES = {
    "parse_error": "malformed_json",
    "throttled": "rate_limited",
    "authentication_failed": "authentication_failed",
}
# Codes for error responses built outside DRF (by Django or a plain view), by status.
_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
_DOMAIN_STATUS: dict[type[domain.FlagShipError], int] = {
    domain.PermissionDeniedError: 403,
    domain.NotFoundError: 404,
    domain.InUseError: 409,
    domain.StaleVersionError: 412,
    domain.CapabilityDisabledError: 503,
}


def is_api_path(path: str) -> bool:
    """Whether errors on ``path`` are answered with problem details."""
    return path.startswith(API_PREFIX)


def problem(
    request: HttpRequest | Any,
    *,
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The problem details body for ``request``."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.path,
        "request_id": getattr(request, "request_id", None),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    request: HttpRequest,
    *,
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A plain Django response carrying problem details (for code outside DRF views)."""
    body = problem(request, status=status, code=code, detail=detail, errors=errors)
    response = HttpResponse(
        json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers
    )
    return response


def retry_after(seconds: float | None) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds or 0)))


def code_for_status(status: int) -> str:
    """The problem code of an error response built without one."""
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "internal_error" if status >= 500 else "bad_request"


# --- Field errors ------------------------------------------------------------------------------
def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def flatten_drf_errors(detail: Any, field: str = "") -> list[dict[str, Any]]:
    """Flatten DRF's nested ``ValidationError.detail`` into ``{field, code, message}`` items."""
    if isinstance(detail, Mapping):
        items: list[dict[str, Any]] = []
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                items.extend(flatten_drf_errors(value, field))
            else:
                items.extend(flatten_drf_errors(value, _join(field, key)))
        return items
    if isinstance(detail, list):
        if all(not isinstance(item, Mapping | list) for item in detail):
            return [_field_error(field, item) for item in detail]
        items = []
        for index, item in enumerate(detail):
            if isinstance(item, Mapping | list):
                items.extend(flatten_drf_errors(item, _join(field, index)))
            else:
                items.append(_field_error(field, item))
        return items
    return [_field_error(field, detail)]


def _field_error(field: str, error: Any) -> dict[str, Any]:
    return {
        "field": field or None,
        "code": str(getattr(error, "code", None) or "invalid"),
        "message": str(error),
    }


def flatten_django_errors(error: DjangoValidationError) -> list[dict[str, Any]]:
    """Field errors of a Django ``ValidationError`` (as services raise them)."""
    if hasattr(error, "error_dict"):
        return [
            {
                "field": None if name == "__all__" else name,
                "code": item.code or "invalid",
                "message": message,
            }
            for name, field_errors in error.error_dict.items()
            for item in field_errors
            for message in item
        ]
    return [
        {"field": None, "code": item.code or "invalid", "message": message}
        for item in error.error_list
        for message in item
    ]


# --- The handler -------------------------------------------------------------------------------
def _api_exception(exc: exceptions.APIException) -> tuple[str, str]:
    """``(code, detail)`` of a DRF exception, keeping the code its raiser gave."""
    detail: Any = exc.detail
    if isinstance(detail, Mapping):  # simplejwt: {"detail": ..., "code": ..., "messages": [...]}
        message = detail.get("detail", exc.default_detail)
        code = str(detail.get("code") or getattr(message, "code", None) or exc.default_code)
        return _DRF_CODES.get(code, code), str(message)
    if isinstance(detail, list):
        detail = detail[0] if detail else exc.default_detail
    code = str(getattr(detail, "code", None) or exc.default_code)
    return _DRF_CODES.get(code, code), str(detail)


def problem_for_exception(
    exc: BaseException, request: Any
) -> tuple[dict[str, Any], int, dict[str, str]] | None:
    """``(body, status, headers)`` for a known exception; ``None`` for an unexpected one."""
    headers: dict[str, str] = {}
    errors: list[dict[str, Any]] | None = None
    if isinstance(exc, exceptions.ValidationError):
        status, code = 400, "invalid"
        errors = flatten_drf_errors(exc.detail)
        detail = "The request is not valid."
    elif isinstance(exc, DjangoValidationError):
        status, code = 400, "invalid"
        errors = flatten_django_errors(exc)
        detail = "The request is not valid."
    elif isinstance(exc, exceptions.APIException):
        status = exc.status_code
        code, detail = _api_exception(exc)
        if status == 401 and getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = str(exc.auth_header)  # type: ignore[attr-defined]  # set by APIView
        if isinstance(exc, exceptions.Throttled) or status == 429:
            headers["Retry-After"] = retry_after(getattr(exc, "wait", None))
    elif isinstance(exc, domain.FlagShipError):
        status = next(
            (value for kind, value in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 400
        )
        code, detail = exc.code, exc.message
    elif isinstance(exc, Http404):
        status, code, detail = 404, "not_found", "Not found."
    elif isinstance(exc, DjangoPermissionDenied):
        status, code = 403, "permission_denied"
        detail = "You do not have permission to perform this action."
    elif isinstance(exc, RequestDataTooBig):
        status, code, detail = 413, "payload_too_large", "The request body is too large."
    elif isinstance(exc, SuspiciousOperation):  # as Django answers it: too many fields, and such
        status, code, detail = 400, "bad_request", "The request could not be read."
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.error("database.unavailable", exc_info=exc)
        status, code = 503, "database_unavailable"
        detail = "The database is unavailable; try again shortly."
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    else:
        return None
    body = problem(request, status=status, code=code, detail=detail, errors=errors)
    return body, status, headers


def internal_error(request: Any, exc: BaseException | None) -> dict[str, Any]:
    """Log an unexpected exception with the request id; the client gets a bare 500 body."""
    logger.error(
        "request.failed",
        exc_info=exc,
        extra={"path": request.path, "method": request.method},
    )
    return problem(
        request, status=500, code="internal_error", detail="An unexpected error occurred."
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: problem details under /api/, DRF's own handler elsewhere."""
    request = context.get("request")
    if request is None or not is_api_path(request.path):
        return drf_exception_handler(exc, context)
    found = problem_for_exception(exc, request)
    headers: dict[str, str] = {}
    if found is None:
        body, status = internal_error(request, exc), 500
    else:
        body, status, headers = found
    set_rollback()
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


# --- Django-level handlers (handler404 / handler500) -------------------------------------------
def api_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: problem details under /api/, Django's page elsewhere."""
    if is_api_path(request.path):
        return problem_response(
            request, status=404, code="not_found", detail="No such API resource."
        )
    return defaults.page_not_found(request, exception)


def api_server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: problem details under /api/, Django's page elsewhere."""
    if is_api_path(request.path):
        return problem_response(
            request, status=500, code="internal_error", detail="An unexpected error occurred."
        )
    return defaults.server_error(request)
