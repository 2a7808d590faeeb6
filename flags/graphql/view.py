"""``/graphql``: strawberry's Django view, authenticated and limited as the REST API is.

Before running an operation the view authenticates with DRF's authenticators (JWT, admin tokens,
environment keys, the admin's session with its CSRF check) and counts the request against the
same rate limits: people and admin tokens the per-user management limit, environment keys their
evaluation limits. A request that fails there, or that is not a GraphQL request at all, gets a
JSON body of GraphQL errors with a code and the HTTP status REST would answer (400, 401, 403,
405, 413, 415, 429, 503). A GraphQL operation that runs answers 200, its errors in ``errors``.
GraphiQL is served to browsers only where ``FLAGSHIP_GRAPHIQL`` is on (development).
"""

from __future__ import annotations

import json
from typing import Any, cast

from cross_web import HTTPException
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.settings import api_settings
from strawberry.django.views import GraphQLView
from strawberry.types.unset import UNSET

from flagship import jsonbody
from flagship.errors import problem_for_exception
from flagship.ratelimits import ManagementRateThrottle

from .. import conf
from ..evaluation.throttling import EvaluationRateThrottle
from .access import Context
from .errors import problem_error

JSON_TYPE = "application/json"
# The codes of strawberry's own refusals of a malformed request, by its words.
HTTP_CODES = {
    405: "method_not_allowed",
    404: "not_found",
}


class PersonRateThrottle(ManagementRateThrottle):
    """The per-user management limit, on ``/graphql`` too."""

    def key(self, request: Request) -> str | None:
        """The person's id; ``None`` (not counted here) for environment keys and nobody."""
        auth: Any = request.auth
        if getattr(auth, "kind", None) in ("server", "client"):
            return None
        user = request.user
        return str(user.pk) if user is not None and user.is_authenticated else None


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> HttpResponse:
    """A GraphQL error body for a request refused before any operation ran."""
    body = {
        "errors": [{"message": message, "extensions": {"code": code, "status": status, **extra}}]
    }
    response = HttpResponse(json.dumps(body), status=status, content_type=JSON_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def refused(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The answer to an exception raised by authentication or a throttle, as REST's codes."""
    found = problem_for_exception(exc, request)
    if found is None:
        raise exc
    body, status, headers = found
    return error_response(status, body["code"], body["detail"], headers)


@method_decorator(csrf_exempt, name="dispatch")  # as DRF: session callers are checked by DRF
class FlagShipGraphQLView(GraphQLView[Context, None]):
    """The GraphQL endpoint (see the module's docstring)."""

    allow_queries_via_get = True  # queries only: strawberry refuses mutations over GET

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """Authenticate, count, then run; refusals as GraphQL error bodies."""
        self.graphql_ide = "graphiql" if conf.graphiql() else None
        if request.method == "GET" and self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            return super().dispatch(request, *args, **kwargs)  # the IDE, or a 404
        try:
            # Read now: DRF's CSRF check (sessions) parses the body from this copy, and
            # strawberry reads it again after.
            request.body  # noqa: B018
        except RequestDataTooBig:
            return error_response(413, "payload_too_large", "The request body is too large.")
        # The stubs type these settings as the dotted paths they were; DRF has imported them.
        parsers = cast("list[type[BaseParser]]", api_settings.DEFAULT_PARSER_CLASSES)
        authenticators = cast(
            "list[type[BaseAuthentication]]", api_settings.DEFAULT_AUTHENTICATION_CLASSES
        )
        drf_request = Request(
            request,
            parsers=[parser() for parser in parsers],
            authenticators=[authenticator() for authenticator in authenticators],
        )
        try:
            user, auth = drf_request.user, drf_request.auth
            if user is None or (not user.is_authenticated and auth is None):
                raise exceptions.NotAuthenticated()
            for throttle in (PersonRateThrottle(), EvaluationRateThrottle()):
                if not throttle.allow_request(drf_request, self):  # type: ignore[arg-type]
                    raise exceptions.Throttled(wait=throttle.wait())
        except (exceptions.NotAuthenticated, exceptions.AuthenticationFailed) as exc:
            exc.auth_header = 'Bearer realm="flagship"'  # type: ignore[union-attr]  # as APIView sets it
            return refused(request, exc)
        except Exception as exc:  # the database down, a throttle: REST's answers
            return refused(request, exc)
        self.caller = (user, auth)
        return super().dispatch(request, *args, **kwargs)

    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:
        """The request and its caller, as authenticated in :meth:`dispatch`."""
        user, auth = self.caller
        return Context(request=request, response=response, user=user, auth=auth)

    def process_result(self, request: HttpRequest, result: Any) -> Any:
        """The result as JSON, every error with its code, an extension's hook's too.

        ``ProblemErrors`` sees what the operation's resolvers raise; an exception in another
        extension's hook ends the operation before it, and is given its code here.
        """
        if result.errors:
            result.errors = [problem_error(error, request) for error in result.errors]
        return super().process_result(request, result)

    def decode_json(self, data: str | bytes) -> object:
        """The body, nested no deeper than the API allows (``FLAGSHIP_MAX_JSON_DEPTH``)."""
        return jsonbody.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        """Strawberry's parse, with the API's codes for a body that is not JSON."""
        try:
            return self.decode_json(data)
        except jsonbody.JSONTooDeepError as error:
            raise _Refusal(400, "json_too_deep", f"The body nests {error}.") from None
        except ValueError:
            raise _Refusal(400, "malformed_json", "The body is not valid JSON.") from None

    def run(self, request: HttpRequest, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's run, its refusals of malformed requests as GraphQL error bodies."""
        try:
            return super().run(request, context, root_value)
        except _Refusal as refusal:
            return error_response(refusal.status_code, refusal.code, refusal.reason)
        except HTTPException as error:
            code = HTTP_CODES.get(error.status_code, "bad_request")
            if error.reason == "Unsupported content type":
                code = "unsupported_media_type"
                return error_response(415, code, "Send the operation as application/json.")
            return error_response(error.status_code, code, error.reason)


class _Refusal(HTTPException):
    """A refusal of the request body with one of the API's codes."""

    def __init__(self, status_code: int, code: str, reason: str) -> None:
        super().__init__(status_code, reason)
        self.code = code
