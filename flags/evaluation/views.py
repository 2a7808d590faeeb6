"""The evaluation API: environment keys evaluate flags or (server keys) download the ruleset.

``POST /api/v1/evaluate`` answers every flag the key may see, ``POST /api/v1/evaluate/<key>`` one
flag, and ``GET /api/v1/ruleset`` the whole ruleset document for local evaluation, with a strong
``ETag`` (the quoted version) and 304 on a matching ``If-None-Match``. Client keys see only
client-visible flags; a hidden flag is answered exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.permissions import EnvironmentKeyRequired, ServerKeyRequired, environment_key
from flags.delivery import keys
from flags.delivery.compiled import CompiledRuleset, compiled_ruleset
from flagship_sdk.engine import ErrorCode, EvaluationResult

from . import fast
from .serializers import (
    EvaluationRequestSerializer,
    FlagEvaluationSerializer,
    FlagsEvaluationSerializer,
    result_document,
)
from .throttling import EvaluationRateThrottle

TAG = "evaluation"
ERRORS = {
    400: OpenApiResponse(
        description="Malformed JSON (`malformed_json`), a body nested too deep (`json_too_deep`), "
        "or a context that is not an object."
    ),
    401: OpenApiResponse(description="No API key, or an invalid, expired or revoked one."),
    403: OpenApiResponse(description="Not an environment key (admin tokens and users)."),
    429: OpenApiResponse(description="Rate limit reached; `Retry-After` gives seconds."),
}
REQUEST_EXAMPLE = OpenApiExample(
    "Context",
    value={"context": {"targetingKey": "user-1", "email": "ada@example.com", "country": "DE"}},
    request_only=True,
)


def key_ruleset(request: Request) -> tuple[ApiKey, CompiledRuleset]:
    """The environment key of a request (checked by the permission) and its compiled ruleset."""
    key = environment_key(request)
    if key is None or key.environment is None:  # pragma: no cover - the permission refused it
        raise NotFound()
    return key, compiled_ruleset(key.environment)


def request_context(request: Request) -> dict[str, Any]:
    """The validated ``context`` of the request body (``{}`` when absent)."""
    data = request.data
    if data is None or (isinstance(data, dict) and not data):
        return {}
    serializer = EvaluationRequestSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    context = serializer.validated_data.get("context")
    return dict(context) if context else {}


class FastPathMixin:
    """Answer warm requests through ``flags.evaluation.fast``; DRF's ``dispatch`` otherwise."""

    fast_kinds: tuple[str, ...] = (fast.SERVER, fast.CLIENT)
    fast_method = "POST"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Try the fast path, then the full one."""
        if request.method == self.fast_method and kwargs.get("version", "v1") == "v1":
            try:
                admitted = fast.admitted(request, self.fast_kinds)
                response = self.fast(request, *admitted, **kwargs) if admitted else None
            except Exception:  # the full path meets the same trouble and answers it properly
                response = None
            if response is not None:
                response["Allow"] = self._allow_header()
                return response
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    def fast(
        self, request: HttpRequest, api_key: keys.FastKey, compiled: CompiledRuleset, **kwargs: Any
    ) -> HttpResponse | None:
        """The answer from memory, or ``None`` for the full path."""
        raise NotImplementedError

    def _allow_header(self) -> str:
        """``Allow`` as DRF sets it, from a set-up view (``head`` exists only after ``setup``)."""
        cls = type(self)
        cached: str | None = cls.__dict__.get("_allow")
        if cached is None:
            cached = ", ".join(self.allowed_methods)  # type: ignore[attr-defined]
            cls._allow = cached  # type: ignore[attr-defined]
        return cached


class EnvironmentKeyView(FastPathMixin, APIView):
    """Base of the evaluation views: environment keys only, rate limited per key."""

    permission_classes = [EnvironmentKeyRequired]
    throttle_classes = [EvaluationRateThrottle]


class EvaluateFlagsView(EnvironmentKeyView):
    """Evaluate every flag the key may see."""

    def fast(
        self, request: HttpRequest, api_key: keys.FastKey, compiled: CompiledRuleset, **kwargs: Any
    ) -> HttpResponse | None:
        """``post`` from memory, with each result's JSON built once per ruleset version."""
        context = fast.plain_context(request)
        if context is None:
            return None
        results = compiled.ruleset.evaluate_all(
            context, client_visible_only=api_key.kind == fast.CLIENT
        )
        parts = fast.fragments(compiled, "api", results.values(), api_fragment)
        body = b'{"flags":{%s},"version":%d}' % (b",".join(parts), compiled.version)
        return fast.json_response(body)

    @extend_schema(
        operation_id="evaluate_flags",
        tags=[TAG],
        summary="Evaluate every flag",
        description="Evaluates every flag of the key's environment for the context (client keys: "
        "only client-visible flags). The body and the context may be left out.",
        request=EvaluationRequestSerializer,
        responses={200: FlagsEvaluationSerializer, **ERRORS},
        examples=[
            REQUEST_EXAMPLE,
            OpenApiExample(
                "Results",
                value={
                    "flags": {
                        "new-checkout": {
                            "value": True,
                            "variant": "on",
                            "reason": "TARGETING_MATCH",
                            "rule": "12",
                        },
                        "discount": {"value": 0.5, "variant": "half", "reason": "STATIC"},
                    },
                    "version": 42,
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Evaluate all visible flags."""
        context = request_context(request)
        key, compiled = key_ruleset(request)
        results = compiled.ruleset.evaluate_all(
            context, client_visible_only=key.kind == ApiKey.Kind.CLIENT
        )
        return Response(
            {
                "flags": {flag: result_document(result) for flag, result in results.items()},
                "version": compiled.version,
            }
        )


def api_fragment(result: EvaluationResult) -> bytes:
    """``"key":{...}``: one member of the ``flags`` object of ``POST /api/v1/evaluate``."""
    return fast.render({result.key: result_document(result)})[1:-1]


class EvaluateFlagView(EnvironmentKeyView):
    """Evaluate one flag."""

    def fast(
        self, request: HttpRequest, api_key: keys.FastKey, compiled: CompiledRuleset, **kwargs: Any
    ) -> HttpResponse | None:
        """``post`` from memory (errors go to the full path)."""
        result = fast.single_result(request, api_key, compiled, kwargs.get("flag_key"))
        if result is None:
            return None
        document = {"key": result.key, **result_document(result), "version": compiled.version}
        return fast.json_response(fast.render(document))

    @extend_schema(
        operation_id="evaluate_flag",
        tags=[TAG],
        summary="Evaluate one flag",
        description="Evaluates one flag for the context. A flag that does not exist, or that a "
        "client key may not see, is 404 `flag_not_found`.",
        request=EvaluationRequestSerializer,
        responses={
            200: FlagEvaluationSerializer,
            **ERRORS,
            404: OpenApiResponse(description="No such flag (or not visible to client keys)."),
        },
        examples=[
            REQUEST_EXAMPLE,
            OpenApiExample(
                "Result",
                value={
                    "key": "new-checkout",
                    "value": True,
                    "variant": "on",
                    "reason": "TARGETING_MATCH",
                    "rule": "12",
                    "version": 42,
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, flag_key: str, *args: Any, **kwargs: Any) -> Response:
        """Evaluate ``flag_key``."""
        context = request_context(request)
        key, compiled = key_ruleset(request)
        ruleset = compiled.ruleset
        if key.kind == ApiKey.Kind.CLIENT and not ruleset.client_visible(flag_key):
            raise NotFound(f"There is no flag {flag_key!r}.", code="flag_not_found")
        result = ruleset.evaluate(flag_key, context)
        if result.error_code == ErrorCode.FLAG_NOT_FOUND:
            raise NotFound(f"There is no flag {flag_key!r}.", code="flag_not_found")
        if result.error_code == ErrorCode.INVALID_CONTEXT:  # pragma: no cover - checked above
            raise ValidationError({"context": "The context must be an object."})
        return Response({"key": flag_key, **result_document(result), "version": compiled.version})


class RulesetView(EnvironmentKeyView):
    """Download the environment's ruleset (server keys only)."""

    permission_classes = [ServerKeyRequired]
    fast_kinds = (fast.SERVER,)
    fast_method = "GET"

    def fast(
        self, request: HttpRequest, api_key: keys.FastKey, compiled: CompiledRuleset, **kwargs: Any
    ) -> HttpResponse | None:
        """``get`` from memory."""
        return ruleset_response(request.META.get("HTTP_IF_NONE_MATCH"), compiled)

    @extend_schema(
        operation_id="ruleset_retrieve",
        tags=[TAG],
        summary="Download the ruleset",
        description="The key's environment's complete ruleset document (docs/ruleset-format.md) "
        'for local evaluation. `ETag` is the quoted version (`"42"`); send it back in '
        "`If-None-Match` to get 304 while nothing changed. Server keys only: client keys get 403.",
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description='An ETag received before, e.g. `"42"`.',
            )
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The ruleset document.",
                examples=[
                    OpenApiExample(
                        "Ruleset",
                        value={
                            "format": 1,
                            "project": "demo",
                            "environment": "production",
                            "version": 42,
                            "segments": {},
                            "flags": {
                                "new-checkout": {
                                    "kind": "boolean",
                                    "variants": {"on": True, "off": False},
                                    "enabled": True,
                                    "off_variant": "off",
                                    "default_serve": {"variant": "on"},
                                }
                            },
                        },
                    )
                ],
            ),
            304: OpenApiResponse(description="Not modified since the ETag sent."),
            401: ERRORS[401],
            403: OpenApiResponse(description="Not a server key."),
            429: ERRORS[429],
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        """The ruleset document, or 304."""
        _key, compiled = key_ruleset(request)
        return ruleset_response(request.headers.get("If-None-Match"), compiled)


def ruleset_response(if_none_match: str | None, compiled: CompiledRuleset) -> HttpResponse:
    """The ruleset document, or 304 when ``If-None-Match`` names its version."""
    etag = compiled.etag
    if if_none_match == etag or etag_matches(if_none_match, etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(compiled.body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``etag`` (weak comparison, RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == wanted for tag in parse_etags(if_none_match))
