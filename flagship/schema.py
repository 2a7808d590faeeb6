"""OpenAPI pieces shared by every API view: problem details, security schemes, the change stream.

Importing this module registers the API-key authentication extension with drf-spectacular;
``flagship.errors`` imports it, so any view module that documents problems registers it too.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework.settings import api_settings

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One invalid field; nested fields use dots and list indexes.",
    "properties": {
        "field": {
            "type": "string",
            "nullable": True,
            "description": "Path of the field, e.g. rules[0].conditions[1].values; "
            "null for an error about the whole request.",
        },
        "code": {"type": "string", "description": "Stable snake_case code."},
        "message": {"type": "string", "description": "Human-readable message."},
    },
    "required": ["field", "code", "message"],
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem details object.",
    "properties": {
        "type": {"type": "string", "description": "URI naming the problem type."},
        "title": {"type": "string", "description": "Short summary of the problem type."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "Explanation of this occurrence."},
        "code": {"type": "string", "description": "Stable snake_case error code."},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {
            "type": "string",
            "nullable": True,
            "description": "The request id (also in the X-Request-ID header).",
        },
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "Field errors (validation problems only).",
        },
    },
    "required": ["type", "title", "status", "detail", "code", "instance"],
}

# Statuses every /api/ operation may answer with, besides those its view documents itself.
COMMON_PROBLEMS: dict[str, str] = {
    "400": "Invalid request (code `invalid` with field errors, `malformed_json`, or "
    "`json_too_deep`: objects and arrays nested deeper than FLAGSHIP_MAX_JSON_DEPTH).",
    "401": "Missing or invalid credentials.",
    "403": "The caller may not do this.",
    "404": "No such resource.",
    "429": "Rate limit exceeded; see Retry-After.",
    "default": "Any other error, as problem details (405, 406, 413, 415, 500, 503...).",
}


RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "Whole seconds until the limit's window ends.",
    "schema": {"type": "integer", "minimum": 1},
}

# The change stream (flags/stream/views.py) is a plain async Django view, which drf-spectacular
# does not see: its operation is written here. docs/streaming.md describes it in full.
STREAM_SECURITY_SCHEME = "clientKeyQuery"
# As OpenAPI 3.0 reads a text/event-stream schema: one event (SSE fields), not the whole stream.
STREAM_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One event. Heartbeats are SSE comments (`: ping`) and carry no event.",
    "properties": {
        "event": {"type": "string", "enum": ["ruleset", "message"]},
        "id": {"type": "string", "description": "The ruleset version (for `Last-Event-ID`)."},
        "data": {
            "type": "string",
            "description": 'JSON. `format=flagship`: `{"version": 42, "etag": "\\"42\\""}`; '
            '`format=ofrep`: `{"type": "refetchEvaluation", "etag": ..., "version": ...}`.',
        },
        "retry": {"type": "integer", "description": "Milliseconds before reconnecting."},
    },
    "required": ["event", "id", "data"],
}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


def stream_operation() -> dict[str, Any]:
    """The OpenAPI operation of ``GET /api/<version>/stream`` (Server-Sent Events)."""
    rate_limited = _problem_response(
        "`rate_limited`: too many new connections for the key (`FLAGSHIP_STREAM_KEY_RATE`) or, "
        "for a client key, from this address (`FLAGSHIP_STREAM_ADDRESS_RATE`)."
    )
    rate_limited["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    return {
        "operationId": "stream_retrieve",
        "summary": "Stream ruleset versions (Server-Sent Events)",
        "description": "Notify-only: one event with the environment's current version when the "
        "stream opens (unless `Last-Event-ID` is already that version), then one per new "
        "version, and `: ping` comments in between. Server keys then download the ruleset, "
        "client keys evaluate again. Served by the ASGI application; a WSGI worker answers "
        "the current version once with `retry: 30000` and ends. Streams close after "
        "`FLAGSHIP_STREAM_MAX_AGE` seconds; clients reconnect. Server and client keys in "
        "`X-API-Key` or `Authorization: Bearer`; client keys (only) also as `?key=`, since "
        "browsers' `EventSource` cannot send headers. New connections are rate limited.",
        "tags": ["evaluation"],
        "parameters": [
            {
                "in": "query",
                "name": "format",
                "schema": {"type": "string", "enum": ["flagship", "ofrep"], "default": "flagship"},
                "description": "`flagship`: `event: ruleset`, data `{version, etag}`; `ofrep`: "
                "`event: message`, data `{type: refetchEvaluation, etag, version}`.",
            },
            {
                "in": "header",
                "name": "Last-Event-ID",
                "schema": {"type": "string"},
                "description": "The last version received: no first event unless newer.",
            },
        ],
        "security": [{"apiKeyAuth": []}, {STREAM_SECURITY_SCHEME: []}],
        "responses": {
            "200": {
                "description": "The event stream (`Cache-Control: no-cache`).",
                "content": {
                    "text/event-stream": {
                        "schema": STREAM_EVENT_SCHEMA,
                        "example": {
                            "event": "ruleset",
                            "id": "42",
                            "data": '{"version": 42, "etag": "\\"42\\""}',
                        },
                    }
                },
            },
            "400": _problem_response("`invalid_format`: `format` is not flagship or ofrep."),
            "401": _problem_response("No API key, or an invalid, expired or revoked one."),
            "403": _problem_response(
                "`environment_key_required` (an admin token or a person), or "
                "`client_key_required` (a server key in `?key=`)."
            ),
            "404": _problem_response("`not_found`: unknown API version."),
            "429": rate_limited,
        },
    }


def add_stream_operation(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: document the change stream and its query-string key."""
    version = api_settings.DEFAULT_VERSION or "v1"
    result.setdefault("paths", {})[f"/api/{version}/stream"] = {"get": stream_operation()}
    schemes = result.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[STREAM_SECURITY_SCHEME] = {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "A client key (fsc_…), on the change stream only (for `EventSource`).",
    }
    return result


def add_problem_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: document problem details on every /api/ operation (not OFREP)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", PROBLEM_SCHEMA)
    schemas.setdefault("FieldError", FIELD_ERROR_SCHEMA)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_PROBLEMS.items():
                responses.setdefault(status, _problem_response(description))
            responses["429"].setdefault("headers", {"Retry-After": RETRY_AFTER_HEADER})
    return result


class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # registry hook
    """Document ``accounts.authentication.ApiKeyAuthentication`` as an ``X-API-Key`` header."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        """An API key (server key, client key or admin token) in ``X-API-Key``."""
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "A server key (fss_…), client key (fsc_…) or admin token (fsa_…). "
            "Also accepted as `Authorization: Bearer <key>`.",
        }
