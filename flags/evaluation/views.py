"""The evaluation API: environment keys evaluate flags or (server keys) download the ruleset.

``POST /api/v1/evaluate`` answers every flag the key may see, ``POST /api/v1/evaluate/<key>`` one
flag, and ``GET /api/v1/ruleset`` the whole ruleset document for local evaluation, with a strong
``ETag`` (the quoted version) and 304 on a matching ``If-None-Match``. Client keys see only
client-visible flags; a hidden flag is answered exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts.permissions import EnvironmentKeyRequired, ServerKeyRequired, environment_key
from flags.delivery.compiled import CompiledRuleset, compiled_ruleset
from flagship.lean import fast_path_tried
from flagship_sdk.engine import ErrorCode, EvaluationResult

from . import bodies, fast
from .counting import counted
from .rendering import fragments, json_response, render
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


def key_ruleset(request: Request) -> tuple[str, CompiledRuleset]:
    """The full path's lookup: the key's kind (checked by the permission) and its ruleset.

    The fast path's is ``fast.admitted``; both evaluate with ``flags.delivery.compiled``.
    """
    key = environment_key(request)
    if key is None or key.environment is None:  # pragma: no cover - the permission refused it
        raise PermissionDenied()
    return str(key.kind), compiled_ruleset(key.environment)


# DRF's own words (those of ``EvaluationRequestSerializer``) for a body holding no context.
_NOT_AN_OBJECT = serializers.Serializer.default_error_messages["invalid"]
_CONTEXT_NOT_AN_OBJECT = serializers.DictField.default_error_messages["not_a_dict"]


def request_context(request: Request) -> dict[str, Any]:
    """The context of the request body as DRF's parser decoded it (``{}`` when absent).

    A body that is not an object, or whose context is not one, is 400 with DRF's field errors.
    """
    try:
        return bodies.context_of(request.data)
    except bodies.BodyError as error:
        kind = type(error.value).__name__
        if error.reason == bodies.NOT_AN_OBJECT:
            message = str(_NOT_AN_OBJECT).format(datatype=kind)
            raise ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [message]}, code="invalid"
            ) from None
        message = str(_CONTEXT_NOT_AN_OBJECT).format(input_type=kind)
        raise ValidationError({"context": [message]}, code="not_a_dict") from None


@dataclass(frozen=True, slots=True)
class Asked:
    """What an evaluation answer is built from, on either path."""

    request: HttpRequest | Request
    kind: str  # the environment key's (server or client)
    compiled: CompiledRuleset
    context: dict[str, Any]


class FastPathMixin:
    """Answer through ``flags.evaluation.fast`` when it can; DRF's ``dispatch`` otherwise.

    A view writes its successful answer once, in :meth:`answer`, which both paths call: the fast
    one with the key and ruleset it found in memory and the context of a plain body, DRF's (its
    handlers call :meth:`full_answer`) with those found after DRF's authentication, permission and
    throttle. An error raised by ``answer`` sends the fast path to the full one, which answers it.
    """

    fast_kinds: tuple[str, ...] = (fast.SERVER, fast.CLIENT)
    fast_method = "POST"

    @classmethod
    def fast_response(cls, request: HttpRequest, kwargs: dict[str, Any]) -> HttpResponse | None:
        """The fast path's answer to ``request``, or ``None`` for the full path.

        Called by the lean path (``flagship.lean``) with the URL's keyword arguments, before the
        full middleware stack, and by :meth:`dispatch` on the full stack.
        """
        if request.method != cls.fast_method or kwargs.get("version", "v1") != "v1":
            return None
        view = cls()
        view.setup(request, **kwargs)  # type: ignore[attr-defined]  # as ``as_view`` does: ``head``, ``request``, ``kwargs``
        try:
            response = view.fast_answer(request, **kwargs)
        except Exception:  # the full path meets the same trouble and answers it properly
            return None
        if response is not None:
            response["Allow"] = view._allow_header()
        return response

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Try the fast path (unless the lean path already did), then the full one."""
        if not fast_path_tried(request):
            response = self.fast_response(request, kwargs)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    def fast_answer(self, request: HttpRequest, **kwargs: Any) -> HttpResponse | None:
        """The answer from memory, or ``None`` for the full path."""
        admitted = fast.admitted(request, self.fast_kinds)
        if admitted is None:
            return None
        plain = self.fast_context(request)
        if plain is None:
            return None
        kind, compiled = admitted
        return self.answer(Asked(request, kind, compiled, plain), **kwargs)

    def full_answer(self, request: Request, **kwargs: Any) -> HttpResponse:
        """The answer on DRF's path: the body's context, the key's ruleset, then ``answer``."""
        context = self.full_context(request)
        kind, compiled = key_ruleset(request)
        return self.answer(Asked(request, kind, compiled, context), **kwargs)

    def fast_context(self, request: HttpRequest) -> dict[str, Any] | None:
        """The context of a plain body, read as :meth:`full_context` reads it; else ``None``."""
        return fast.plain_context(request)

    def full_context(self, request: Request) -> dict[str, Any]:
        """The context of the body; raises the view's error for a body that holds none."""
        return request_context(request)

    def answer(self, asked: Asked, **kwargs: Any) -> HttpResponse:
        """The successful answer; raises for an error (on either path)."""
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

    def answer(self, asked: Asked, **kwargs: Any) -> HttpResponse:
        """Every visible flag's result, each result's JSON built once per ruleset version."""
        compiled = asked.compiled
        results = compiled.ruleset.evaluate_all(
            asked.context, client_visible_only=asked.kind == fast.CLIENT
        )
        parts = fragments(compiled, "api", results.values(), api_fragment)
        response = json_response(
            b'{"flags":{%s},"version":%d}' % (b",".join(parts), compiled.version)
        )
        counted(compiled, results.values())  # counts and Prometheus
        return response

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
    def post(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        """Evaluate all visible flags."""
        return self.full_answer(request, **kwargs)


def api_fragment(result: EvaluationResult) -> bytes:
    """``"key":{...}``: one member of the ``flags`` object of ``POST /api/v1/evaluate``."""
    return render({result.key: result_document(result)})[1:-1]


class EvaluateFlagView(EnvironmentKeyView):
    """Evaluate one flag."""

    def answer(self, asked: Asked, **kwargs: Any) -> HttpResponse:
        """The result of the flag ``flag_key``; 404 for one the key may not see or that is not."""
        flag_key = str(kwargs["flag_key"])
        ruleset = asked.compiled.ruleset
        if asked.kind == fast.CLIENT and not ruleset.client_visible(flag_key):
            raise NotFound(f"There is no flag {flag_key!r}.", code="flag_not_found")
        result = ruleset.evaluate(flag_key, asked.context)
        if result.error_code == ErrorCode.FLAG_NOT_FOUND:
            raise NotFound(f"There is no flag {flag_key!r}.", code="flag_not_found")
        if result.error_code == ErrorCode.INVALID_CONTEXT:  # pragma: no cover - checked before
            raise ValidationError({"context": "The context must be an object."})
        version = asked.compiled.version
        response = json_response(
            render({"key": flag_key, **result_document(result), "version": version})
        )
        counted(asked.compiled, (result,))  # counts and Prometheus
        return response

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
    def post(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        """Evaluate ``flag_key``."""
        return self.full_answer(request, **kwargs)


class RulesetView(EnvironmentKeyView):
    """Download the environment's ruleset (server keys only)."""

    permission_classes = [ServerKeyRequired]
    fast_kinds = (fast.SERVER,)
    fast_method = "GET"

    def fast_context(self, request: HttpRequest) -> dict[str, Any] | None:
        """No context: a ``GET``."""
        return {}

    def full_context(self, request: Request) -> dict[str, Any]:
        """No context: a ``GET``."""
        return {}

    def answer(self, asked: Asked, **kwargs: Any) -> HttpResponse:
        """The ruleset document, or 304."""
        return ruleset_response(asked.request.META.get("HTTP_IF_NONE_MATCH"), asked.compiled)

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
        return self.full_answer(request, **kwargs)


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
