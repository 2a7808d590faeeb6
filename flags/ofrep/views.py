"""The OpenFeature Remote Evaluation Protocol (OFREP) v1, exactly as its OpenAPI defines it.

``POST /ofrep/v1/evaluate/flags/{key}`` and ``POST /ofrep/v1/evaluate/flags``, authenticated with
``X-API-Key`` or ``Authorization: Bearer``. Every error is answered here, in OFREP's shapes
(``errorCode``/``errorDetails``, never problem details), so the global exception handler never sees
these views' errors. Reasons are OpenFeature's standard names: ``PREREQUISITE_FAILED`` is reported
as ``DEFAULT`` with the failing parent in ``metadata.prerequisite``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import presented_secret
from accounts.models import ApiKey
from accounts.permissions import EnvironmentKeyRequired
from flags import conf
from flags.delivery.compiled import CompiledRuleset
from flags.evaluation import bodies, fast
from flags.evaluation.counting import counted
from flags.evaluation.rendering import fragments, json_response, render
from flags.evaluation.throttling import EvaluationRateThrottle
from flags.evaluation.views import Asked, FastPathMixin, etag_matches
from flagship import breakers
from flagship_sdk.engine import ErrorCode, EvaluationResult, Reason

from .serializers import (
    OfrepBulkFailureSerializer,
    OfrepBulkSuccessSerializer,
    OfrepFailureSerializer,
    OfrepGeneralErrorSerializer,
    OfrepRequestSerializer,
    OfrepSuccessSerializer,
)

logger = logging.getLogger(__name__)

TAG = "OFREP"
PARSE_ERROR = "PARSE_ERROR"
INVALID_CONTEXT = "INVALID_CONTEXT"
GENERAL = "GENERAL"
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
# Metadata naming the dependencies that were down when a result was served from memory.
DEGRADED = "flagshipDegraded"
# FlagShip's own reason, reported under OpenFeature's standard name for "no targeting applied".
STANDARD_REASON = {Reason.PREREQUISITE_FAILED: Reason.DEFAULT}


class OfrepError(Exception):
    """An OFREP error answer: HTTP status, ``errorCode`` and ``errorDetails``."""

    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.code = code
        self.details = details


def request_context(request: Request) -> dict[str, Any]:
    """The request's ``context``: ``{}`` when the body (blank too) or the context is absent.

    The body is read as JSON whatever its content type (browsers may send ``text/plain`` to avoid
    a preflight). Malformed JSON and a body that is not an object are ``PARSE_ERROR``; a context
    that is not an object is ``INVALID_CONTEXT``.
    """
    try:
        raw = request._request.body  # the raw body, not DRF's parsed data
    except RequestDataTooBig as error:
        raise OfrepError(413, GENERAL, "The request body is too large.") from error
    try:
        return bodies.read_context(raw, blank_is_empty=True)
    except bodies.BodyError as error:
        if error.reason == bodies.MALFORMED:
            detail = f"The request body is not valid JSON: {error}"
            raise OfrepError(400, PARSE_ERROR, detail) from None
        code = INVALID_CONTEXT if error.reason == bodies.CONTEXT_NOT_AN_OBJECT else PARSE_ERROR
        raise OfrepError(400, code, str(error)) from None


def success_document(result: EvaluationResult, degraded: str = "") -> dict[str, Any]:
    """``evaluationSuccess`` for a result that is not an error.

    ``degraded`` (``flagship.breakers.degraded()``) names the dependencies that were down: the
    result came from this process's last ruleset, and ``metadata.flagshipDegraded`` says so.
    """
    metadata: dict[str, Any] = {}
    if result.rule is not None:
        metadata["rule"] = result.rule
    if result.prerequisite is not None:
        metadata["prerequisite"] = result.prerequisite
    if degraded:
        metadata[DEGRADED] = degraded
    return {
        "key": result.key,
        "value": result.value,
        "reason": STANDARD_REASON.get(result.reason, result.reason),
        "variant": str(result.variant),
        "metadata": metadata,
    }


def failure_document(result: EvaluationResult) -> dict[str, Any]:
    """``evaluationFailure`` for an error result (bulk items)."""
    return {
        "key": result.key,
        "errorCode": result.error_code or GENERAL,
        "errorDetails": "The flag could not be evaluated.",
    }


def ofrep_fragment(result: EvaluationResult) -> bytes:
    """One item of the bulk response's ``flags`` array."""
    return render(failure_document(result) if result.is_error else success_document(result))


def bulk_etag(compiled: CompiledRuleset, kind: str, context: dict[str, Any]) -> str:
    """The bulk ETag: the ruleset version and a hash of the context (and what the key may see)."""
    canonical = json.dumps(
        [compiled.environment_id, kind, context],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f'"{compiled.version}-{digest}"'


def event_streams(request: HttpRequest, kind: str) -> list[dict[str, Any]] | None:
    """``eventStreams``: the change stream in OFREP's format (SSE, notify-only), when deployed.

    Advertised only when ``FLAGSHIP_STREAM_URL`` says where the ASGI stream server answers (a WSGI
    worker cannot know the proxy routes it). Browsers' ``EventSource`` cannot send headers, so a
    client key's URL carries the key (client keys are public by design); never a server key.
    """
    base = conf.stream_url()
    if not base:
        return None
    query = {"format": "ofrep"}
    if kind == ApiKey.Kind.CLIENT:
        secret = presented_secret(request)
        if secret is not None:
            query["key"] = secret
    separator = "&" if "?" in base else "?"
    url = f"{request.build_absolute_uri(base)}{separator}{urlencode(query)}"
    return [{"type": "sse", "url": url}]


GENERAL_ERROR = OpenApiResponse(OfrepGeneralErrorSerializer, description="`errorDetails` says why.")
AUTH_RESPONSES = {
    401: OpenApiResponse(
        OfrepGeneralErrorSerializer, description="No API key, or an invalid or revoked one."
    ),
    403: OpenApiResponse(
        OfrepGeneralErrorSerializer, description="Not an environment key (server or client)."
    ),
    429: OpenApiResponse(
        OfrepGeneralErrorSerializer,
        description="Rate limit reached: `Retry-After` gives the seconds to wait.",
    ),
    500: GENERAL_ERROR,
}
REQUEST_EXAMPLE = OpenApiExample(
    "Context",
    value={"context": {"targetingKey": "user-1", "email": "ada@example.com"}},
    request_only=True,
)


class OfrepView(FastPathMixin, APIView):
    """Shared OFREP behaviour: environment keys, per-key rate limit, OFREP error bodies."""

    permission_classes = [EnvironmentKeyRequired]
    throttle_classes = [EvaluationRateThrottle]
    versioning_class = None

    def fast_context(self, request: HttpRequest) -> dict[str, Any] | None:
        """The context of a plain body, read as :func:`request_context` reads it."""
        return fast.plain_context(request, any_content_type=True)

    def full_context(self, request: Request) -> dict[str, Any]:
        """The context of the body, whatever its content type; ``OfrepError`` if it holds none."""
        return request_context(request)

    def error_key(self) -> str | None:
        """The flag key error bodies carry (single-flag evaluation), else ``None``."""
        return None

    def handle_exception(self, exc: Exception) -> Response:
        """Answer every error in OFREP's shape; the global handler never sees these views'."""
        key = self.error_key()
        headers: dict[str, str] = {}
        if isinstance(exc, OfrepError):
            body: dict[str, Any] = {"errorCode": exc.code, "errorDetails": exc.details}
            return Response({"key": key, **body} if key is not None else body, status=exc.status)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            header = self.get_authenticate_header(self.request)
            if header:
                headers["WWW-Authenticate"] = header
            return Response({"errorDetails": _details(exc)}, status=401, headers=headers)
        if isinstance(exc, exceptions.Throttled):
            headers["Retry-After"] = str(max(1, int(getattr(exc, "wait", None) or 1)))
            return Response(
                {"errorDetails": "Rate limit reached; retry after the Retry-After seconds."},
                status=429,
                headers=headers,
            )
        if isinstance(exc, Http404):
            exc = exceptions.NotFound()
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied()
        if isinstance(exc, exceptions.APIException):
            if isinstance(exc, exceptions.MethodNotAllowed):
                headers["Allow"] = ", ".join(self.allowed_methods)
            return Response(
                {"errorDetails": _details(exc)}, status=exc.status_code, headers=headers
            )
        logger.exception("ofrep.request_failed")
        body = {"errorDetails": "An internal error occurred."}
        if key is not None:
            body = {"key": key, "errorCode": GENERAL, **body}
        return Response(body, status=500)


def _details(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list | dict):
        return json.dumps(detail, default=str)
    return str(detail)


class OfrepFlagView(OfrepView):
    """``POST /ofrep/v1/evaluate/flags/{key}``: evaluate one flag."""

    def error_key(self) -> str | None:
        """The flag key from the URL."""
        return str(self.kwargs.get("key", ""))

    def answer(self, asked: Asked, **kwargs: Any) -> HttpResponse:
        """``evaluationSuccess`` of the flag ``key``; ``OfrepError`` for anything else."""
        key = str(kwargs["key"])
        ruleset = asked.compiled.ruleset
        not_found = OfrepError(404, FLAG_NOT_FOUND, f"There is no flag {key!r}.")
        if asked.kind == fast.CLIENT and not ruleset.client_visible(key):
            raise not_found
        result = ruleset.evaluate(key, asked.context)
        if result.error_code == ErrorCode.FLAG_NOT_FOUND:
            raise not_found
        if result.error_code == ErrorCode.INVALID_CONTEXT:  # pragma: no cover - checked before
            raise OfrepError(400, INVALID_CONTEXT, "The context must be a JSON object.")
        if result.error_code is not None:
            raise OfrepError(500, GENERAL, "The flag could not be evaluated.")
        response = json_response(render(success_document(result, breakers.degraded())))
        counted(asked.compiled, (result,))  # counts and Prometheus
        return response

    @extend_schema(
        operation_id="ofrep_evaluate_flag",
        tags=[TAG],
        summary="OFREP single flag evaluation",
        description="OpenFeature Remote Evaluation Protocol: evaluate one flag for the context. "
        "Client keys may evaluate client-visible flags only; any other flag is FLAG_NOT_FOUND.",
        request=OfrepRequestSerializer,
        responses={
            200: OfrepSuccessSerializer,
            400: OpenApiResponse(
                OfrepFailureSerializer, description="PARSE_ERROR or INVALID_CONTEXT."
            ),
            404: OpenApiResponse(OfrepFailureSerializer, description="FLAG_NOT_FOUND."),
            **AUTH_RESPONSES,
        },
        examples=[
            REQUEST_EXAMPLE,
            OpenApiExample(
                "Targeting match",
                value={
                    "key": "new-checkout",
                    "value": True,
                    "reason": "TARGETING_MATCH",
                    "variant": "on",
                    "metadata": {"rule": "12"},
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Flag not found",
                value={
                    "key": "no-such-flag",
                    "errorCode": "FLAG_NOT_FOUND",
                    "errorDetails": "There is no flag 'no-such-flag'.",
                },
                response_only=True,
                status_codes=["404"],
            ),
        ],
    )
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        """Evaluate the flag ``key``."""
        return self.full_answer(request, **kwargs)


class OfrepFlagsView(OfrepView):
    """``POST /ofrep/v1/evaluate/flags``: evaluate every flag the key may see."""

    def answer(self, asked: Asked, **kwargs: Any) -> HttpResponse:
        """Every visible flag's result (each one's JSON built once per ruleset version), or 304."""
        compiled = asked.compiled
        etag = bulk_etag(compiled, asked.kind, asked.context)
        if etag_matches(asked.request.META.get("HTTP_IF_NONE_MATCH"), etag):
            response = HttpResponse(status=304)
        else:
            results = compiled.ruleset.evaluate_all(
                asked.context, client_visible_only=asked.kind == fast.CLIENT
            )
            parts = fragments(compiled, "ofrep", results.values(), ofrep_fragment)
            body = b'{"flags":[%s]' % b",".join(parts)
            streams = event_streams(asked.request, asked.kind)
            if streams is not None:
                body += b',"eventStreams":' + render(streams)
            degraded = breakers.degraded()
            if degraded:
                body += b',"metadata":' + render({DEGRADED: degraded})
            response = json_response(body + b"}")
            counted(compiled, results.values())  # counts and Prometheus
        response["ETag"] = etag
        return response

    @extend_schema(
        operation_id="ofrep_evaluate_flags",
        tags=[TAG],
        summary="OFREP bulk flag evaluation",
        description="OpenFeature Remote Evaluation Protocol: evaluate every flag for the context "
        "(client keys: client-visible flags only). `ETag` changes with the ruleset version and "
        "the context; send it back in `If-None-Match` to get 304 while both are unchanged.",
        request=OfrepRequestSerializer,
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The ETag of an earlier bulk evaluation.",
            )
        ],
        responses={
            200: OfrepBulkSuccessSerializer,
            304: OpenApiResponse(description="Bulk evaluation is not modified."),
            400: OpenApiResponse(
                OfrepBulkFailureSerializer, description="PARSE_ERROR or INVALID_CONTEXT."
            ),
            **AUTH_RESPONSES,
        },
        examples=[
            REQUEST_EXAMPLE,
            OpenApiExample(
                "Flags",
                value={
                    "flags": [
                        {
                            "key": "discount",
                            "value": 0.5,
                            "reason": "STATIC",
                            "variant": "half",
                            "metadata": {},
                        },
                        {
                            "key": "new-checkout",
                            "value": False,
                            "reason": "DISABLED",
                            "variant": "off",
                            "metadata": {},
                        },
                    ]
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        """Evaluate every visible flag, or 304 when the ETag still matches."""
        return self.full_answer(request, **kwargs)
