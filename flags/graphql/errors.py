"""GraphQL errors with the REST API's stable codes.

A resolver raises what a REST view would (a DRF exception, a domain error, Django's ``Http404``)
or :func:`failure`; :class:`ProblemErrors` gives each error the code, status and field errors the
REST API's problem details would carry, in the error's ``extensions``. Anything unexpected is
logged with the request id and answered as ``internal_error``, with no detail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from flagship.errors import internal_error, problem_for_exception

INVALID_QUERY = "invalid_query"  # GraphQL syntax and validation errors


def failure(code: str, message: str, *, status: int = 400, **extra: Any) -> GraphQLError:
    """An error to raise from a resolver, carrying ``code`` and ``status`` in its extensions."""
    return GraphQLError(message, extensions={"code": code, "status": status, **extra})


def _located(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def problem_error(error: GraphQLError, request: Any) -> GraphQLError:
    """``error`` with the REST API's code for its cause (unexpected causes logged and hidden)."""
    cause = error.original_error
    if cause is None or isinstance(cause, GraphQLError):
        source = cause if isinstance(cause, GraphQLError) else error
        extensions = dict(source.extensions or {})
        if "code" in extensions:
            return error if source is error else _located(error, source.message, extensions)
        extensions.setdefault("code", INVALID_QUERY)
        extensions.setdefault("status", 400)
        return _located(error, error.message, extensions)
    found = problem_for_exception(cause, request)
    if found is None:
        internal_error(request, cause)
        return _located(
            error, "An unexpected error occurred.", {"code": "internal_error", "status": 500}
        )
    body, status, _headers = found
    extensions = {"code": body["code"], "status": status}
    if "errors" in body:
        extensions["errors"] = body["errors"]
    return _located(error, body["detail"], extensions)


class ProblemErrors(SchemaExtension):
    """Rewrites every error of a result as :func:`problem_error` does."""

    def on_operation(self) -> Iterator[None]:
        """After the operation: codes on every error."""
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        request = getattr(self.execution_context.context, "request", None)
        result.errors = [problem_error(error, request) for error in errors]
