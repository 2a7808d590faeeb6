"""docs/api.md is complete: every route the URL resolver serves under /api/ and /ofrep/ is in its
route table with exactly its methods, and every error code the code can answer is documented.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission

from flags import errors as domain
from flags.delivery import keys
from flags.ofrep import views as ofrep
from flagship import errors, jsonbody
from flagship.tests.markdown import ROOT, code_spans, read, section
from flagship_sdk.engine.results import ErrorCode

API_DOC = "docs/api.md"
DOCUMENTED_PREFIXES = ("/api/", "/ofrep/")
METHODS = ("get", "post", "put", "patch", "delete")
# Views that are plain functions have no class to ask; they answer 405 to anything else.
FUNCTION_VIEW_METHODS = {"stream": {"GET"}}
_ROW = re.compile(r"^\| ([A-Z, ]+) \| `([^`]+)` \|")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")

# Where the code's error codes come from: the project's own packages, DRF and simplejwt.
PROJECT_PACKAGES = ("flags", "flagship", "accounts")
EXCEPTION_MODULES = (*PROJECT_PACKAGES, "rest_framework.", "rest_framework_simplejwt.")
# Calls whose ``code`` becomes a response's problem code (field errors' codes are not listed).
PROBLEM_PRODUCERS = {
    "problem_response",
    "problem",
    "_refusal",
    "NotFound",
    "PermissionDenied",
    "AuthenticationFailed",
    "NotAuthenticated",
    "ParseError",
    "APIException",
    "Throttled",
    "MethodNotAllowed",
}


def _route(pattern: object) -> str:
    """A pattern as docs/api.md writes it: ``{name}`` for parameters, the API version as v1."""
    if isinstance(pattern, RegexPattern):
        text = _GROUP.sub(r"{\1}", str(pattern).lstrip("^").removesuffix(r"\Z").rstrip("$"))
    else:
        text = _CONVERTER.sub(r"{\1}", str(pattern))
    return text.replace("{version}", "v1")


def _endpoints(
    patterns: list[URLPattern | URLResolver], prefix: str = "/"
) -> Iterator[tuple[str, URLPattern]]:
    """Every endpoint of the URLconf with its full path."""
    for item in patterns:
        path = prefix + _route(item.pattern)
        if isinstance(item, URLResolver):
            yield from _endpoints(item.url_patterns, path)
        else:
            yield path, item


def _methods(endpoint: URLPattern) -> set[str]:
    """The HTTP methods an endpoint serves (OPTIONS and HEAD aside)."""
    callback: Any = endpoint.callback
    actions = getattr(callback, "actions", None)
    if actions:
        # DRF adds "head" to a viewset's actions the first time it serves a GET: left aside.
        return {method.upper() for method in actions if method not in {"head", "options"}}
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return FUNCTION_VIEW_METHODS[str(endpoint.name)]
    return {method.upper() for method in METHODS if hasattr(view_class, method)}


def _served() -> dict[str, set[str]]:
    return {
        path: _methods(endpoint)
        for path, endpoint in _endpoints(get_resolver().url_patterns)
        if path.startswith(DOCUMENTED_PREFIXES)
    }


def _documented() -> dict[str, set[str]]:
    rows = [_ROW.match(line) for line in section(read(API_DOC), "Every route").splitlines()]
    table = [(row.group(2), {m.strip() for m in row.group(1).split(",")}) for row in rows if row]
    paths = [path for path, _ in table]
    assert len(paths) == len(set(paths)), "a route is listed twice"
    return dict(table)


def test_route_table__against_the_url_resolver__lists_every_route_with_its_methods() -> None:
    # Given every endpoint under /api/ and /ofrep/, and the route table of docs/api.md
    served, documented = _served(), _documented()
    # When the two are compared
    missing = sorted(set(served) - set(documented))
    stale = sorted(set(documented) - set(served))
    wrong = {
        path: (sorted(documented[path]), sorted(methods))
        for path, methods in served.items()
        if path in documented and documented[path] != methods
    }
    # Then each route is listed, with exactly the methods it serves, and nothing else is
    assert (missing, stale, wrong) == ([], [], {})
    assert len(served) > 50  # the walk found the API (not an empty URLconf)


def _subclasses[T](cls: type[T]) -> set[type[T]]:
    found: set[type[T]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _literal_codes() -> set[str]:
    """Codes passed as literals to the calls that answer problem details."""
    codes: set[str] = set()
    for package in PROJECT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if {"tests", "migrations"} & set(path.relative_to(ROOT).parts):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in PROBLEM_PRODUCERS:
                    continue
                arguments = [kw.value for kw in node.keywords if kw.arg == "code"]
                if name == "_refusal" and len(node.args) > 2:
                    arguments.append(node.args[2])
                codes |= {
                    arg.value
                    for arg in arguments
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                }
    return codes


def _problem_codes() -> set[str]:
    """Every problem ``code`` FlagShip can answer under /api/."""
    assert get_resolver().url_patterns  # importing every view imports the exceptions they raise
    codes = set(errors._STATUS_CODES.values()) | set(errors._DRF_CODES.values())
    # The base class is abstract in practice: nothing raises it, only its subclasses.
    codes |= {cls.code for cls in _subclasses(domain.FlagShipError)}
    codes |= {
        errors._DRF_CODES.get(str(cls.default_code), str(cls.default_code))
        for cls in _subclasses(APIException)
        if cls.__module__.startswith(EXCEPTION_MODULES)
    }
    codes |= {
        str(getattr(cls, "code", ""))
        for cls in _subclasses(BasePermission)
        if cls.__module__.startswith(PROJECT_PACKAGES) and getattr(cls, "code", None)
    }
    codes |= {keys.INVALID, keys.REVOKED, keys.EXPIRED, jsonbody.TOO_DEEP_CODE}
    return codes | _literal_codes()


def test_error_table__of_docs_api__lists_every_code_the_code_answers() -> None:
    # Given the Errors section's table
    table = section(read(API_DOC), "Errors")
    listed = set(re.findall(r"^\| \d{3} \| (.+?) \|", table, flags=re.MULTILINE))
    codes = {code for cell in listed for code in re.findall(r"`(\w+)`", cell)}
    # When compared with every problem code the code can answer (OFREP's own bodies aside)
    produced = _problem_codes()
    missing = sorted(produced - codes)
    # Then the table is complete (and the registry was really read)
    assert missing == []
    assert {"invalid", "stale_version", "change_request_conflict", "invalid_api_key"} <= produced


def test_ofrep_error_codes__engine_and_views__are_in_the_ofrep_section() -> None:
    # Given the errorCodes OFREP answers: the views' own and the engine's result codes
    produced = {ofrep.PARSE_ERROR, ofrep.INVALID_CONTEXT, ofrep.GENERAL, ofrep.FLAG_NOT_FOUND}
    produced |= {
        value
        for name, value in vars(ErrorCode).items()
        if name.isupper() and isinstance(value, str)
    }
    # When compared with the codes the OFREP section names
    named = set(code_spans(section(read(API_DOC), "OFREP")))
    # Then each is documented
    assert sorted(produced - named) == []
