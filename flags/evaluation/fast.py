"""The warm path of the evaluation endpoints: answer from process memory, without DRF's machinery.

An evaluation request is tiny work (a dictionary lookup, a hash, the engine) next to what DRF does
around it (request wrapping, three authenticators, content negotiation, permission and throttle
objects, the renderer). The evaluation and OFREP views therefore try this path first and fall back
to DRF's full ``dispatch`` for *anything* unusual: no key or a key this process has not cached, a
revoked, expired or mismatched key, a key whose ``last_used_at`` is due, a rate limit reached, a
body that is not a plain ``{"context": {...}}``, an ``Accept`` that is not JSON, an unknown API
version, any exception. The full path then answers exactly as before (errors in problem details or
OFREP's shapes). What the fast path answers is byte-for-byte what the full path would
(``flags/tests/test_fast_path.py`` compares both on every endpoint). The key is checked from this
process's memory (``flags.delivery.keys.authenticate``), the version and the compiled ruleset come
from ``flags.delivery.versions`` and ``flags.delivery.compiled``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse

from accounts.authentication import presented_secret
from accounts.models import ApiKey
from flags.delivery import keys, versions
from flags.delivery.compiled import CompiledRuleset, compiled_for
from flagship import jsonbody

from . import throttling

JSON = "application/json"
SERVER = str(ApiKey.Kind.SERVER)
CLIENT = str(ApiKey.Kind.CLIENT)
# Results of a 10 000-flag ruleset with a few variants each, per response style.
MAX_FRAGMENTS = 100_000


def accepts_json(request: HttpRequest) -> bool:
    """Whether the response may be JSON (else DRF's negotiation answers 406)."""
    accept = request.META.get("HTTP_ACCEPT")
    return not accept or "*/*" in accept or JSON in accept or "application/*" in accept


def plain_context(request: HttpRequest, *, any_content_type: bool = False) -> dict[str, Any] | None:
    """The context of a body that is empty or exactly ``{"context": {...}}``, else ``None``."""
    body = request.body
    if not body:
        return {}
    if not any_content_type and not request.META.get("CONTENT_TYPE", "").startswith(JSON):
        return None
    try:
        data = jsonbody.loads(body)
    except ValueError:  # too deep too (JSONTooDeepError): the full path answers it
        return None
    if not isinstance(data, dict) or (len(data) > 1 or (data and "context" not in data)):
        return None
    context = data.get("context", {})
    return context if isinstance(context, dict) else None


def render(data: Any) -> bytes:
    """JSON exactly as DRF's ``JSONRenderer`` writes it with FlagShip's settings."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def json_response(body: bytes) -> HttpResponse:
    """A 200 JSON response."""
    return HttpResponse(body, content_type=JSON)


def admitted(
    request: HttpRequest, kinds: tuple[str, ...]
) -> tuple[keys.FastKey, CompiledRuleset] | None:
    """Key, rate limit and ruleset of a request the fast path may answer, else ``None``."""
    if not accepts_json(request):
        return None
    secret = presented_secret(request)
    key = None if secret is None else keys.authenticate(secret, kinds)
    if key is None:
        return None
    if throttling.allow(key.lookup, key.kind, throttling.client_address(request)) is not None:
        return None  # the window is now blocked: the full path answers 429 without counting
    version = versions.known_version(key.environment_id)
    return key, compiled_for(key.environment_id, key.project_id, version)


def fragments(
    compiled: CompiledRuleset,
    style: str,
    results: Iterable[Any],
    build: Callable[[Any], bytes],
) -> list[bytes]:
    """The JSON of each result in one response style (``build(result)``), built once per ruleset.

    The engine builds every result a flag can have when it compiles the ruleset and hands out the
    same objects, so each result's JSON is kept beside the ruleset, keyed by the result's ``id``.
    A cached result is also kept alive (``compiled.kept``), so its ``id`` cannot be reused by
    another object while its entry exists. Looking the fragments up is two C-level ``map`` calls.
    """
    cache = compiled.fragments.setdefault(style, {})
    values = list(results)
    parts: list[bytes | None] = list(map(cache.get, map(id, values)))
    if None in parts:
        for index, part in enumerate(parts):
            if part is None:
                result = values[index]
                parts[index] = text = build(result)
                if len(cache) < MAX_FRAGMENTS:
                    compiled.kept.append(result)
                    cache[id(result)] = text
    return parts  # type: ignore[return-value]  # every None was replaced above


def single_result(
    request: HttpRequest,
    api_key: keys.FastKey,
    compiled: CompiledRuleset,
    flag_key: object,
    *,
    any_content_type: bool = False,
) -> Any:
    """A successful evaluation of one flag for a plain request, else ``None`` (the full path).

    ``None`` also for a flag the key may not see and for any error result: the full path answers
    those in its own shapes.
    """
    context = plain_context(request, any_content_type=any_content_type)
    if context is None or not isinstance(flag_key, str):
        return None
    ruleset = compiled.ruleset
    if api_key.kind == CLIENT and not ruleset.client_visible(flag_key):
        return None
    result = ruleset.evaluate(flag_key, context)
    return None if result.error_code is not None else result
