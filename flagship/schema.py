"""OpenAPI pieces shared by every API view: the problem-details component and security schemes.

Importing this module registers the API-key authentication extension with drf-spectacular;
``flagship.errors`` imports it, so any view module that documents problems registers it too.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

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


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


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
