"""The warm path of the evaluation endpoints: answer from process memory, without DRF's machinery.

An evaluation request is tiny work (a dictionary lookup, a hash, the engine) next to what DRF does
around it (request wrapping, three authenticators, content negotiation, permission and throttle
objects, the renderer). The evaluation and OFREP views therefore try this path first and fall back
to DRF's full ``dispatch`` for *anything* unusual: no key or a key this process has not cached, a
revoked, expired or mismatched key, a key whose ``last_used_at`` is due, a rate limit reached, a
body that is not a plain ``{"context": {...}}``, an ``Accept`` that is not JSON, an unknown API
version, any exception. The full path then answers exactly as before (errors in problem details or
OFREP's shapes). What the fast path answers is byte-for-byte what the full path would
(``flags/tests/test_fast_path.py`` compares both on every endpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from accounts import keys
from accounts.authentication import presented_secret, recently_recorded
from accounts.models import ApiKey
from flagship import jsonbody

from . import local, throttling
from .cache import CompiledRuleset, compiled_for, known_version

JSON = "application/json"
SERVER = str(ApiKey.Kind.SERVER)
CLIENT = str(ApiKey.Kind.CLIENT)
# Results of a 10 000-flag ruleset with a few variants each, per response style.
MAX_FRAGMENTS = 100_000


@dataclass(frozen=True, slots=True)
class FastKey:
    """An environment key checked from this process's memory."""

    id: int
    kind: str
    lookup: str
    environment_id: int
    project_id: int


# Secrets this process has checked: the key, the essentials it was checked against (the entry is
# only used while ``local.key`` still returns that very object: a forgotten, re-fetched or expired
# key is checked again) and its expiry as a timestamp.
_checked: dict[str, tuple[FastKey, dict[str, Any], float | None]] = {}
MAX_CHECKED = 10_000


def authenticate(request: HttpRequest, kinds: tuple[str, ...]) -> FastKey | None:
    """The request's environment key when this process can vouch for it alone, else ``None``."""
    secret = presented_secret(request)
    if secret is None:
        return None
    checked = _checked.get(secret)
    if checked is not None:
        key, data, expires = checked
        if local.key(key.lookup) is data:
            if (
                key.kind in kinds
                and (expires is None or expires > time.time())
                and recently_recorded(key.id)
            ):
                return key
            return None
    fresh = _authenticate(secret, kinds)
    if fresh is not None:
        essentials = local.key(fresh.lookup)
        if essentials is not None:
            if len(_checked) >= MAX_CHECKED:
                _checked.clear()
            expires_at = essentials.get("expires_at")
            _checked[secret] = (fresh, essentials, expires_at.timestamp() if expires_at else None)
    return fresh


def _authenticate(secret: str, kinds: tuple[str, ...]) -> FastKey | None:
    parsed = keys.parse(secret)
    if parsed is None or parsed[0] not in kinds:
        return None
    data = local.key(parsed[1])
    if data is None or data.get("kind") != parsed[0] or data.get("revoked_at") is not None:
        return None
    if not keys.matches(secret, data["secret_hash"]):
        return None
    expires_at = data.get("expires_at")
    if expires_at is not None and expires_at.timestamp() <= time.time():
        return None
    if not recently_recorded(data["id"]):
        return None  # last_used_at is due: the full path writes it
    return FastKey(
        data["id"], parsed[0], parsed[1], data["environment_id"], data["project_id"] or 0
    )


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
) -> tuple[FastKey, CompiledRuleset] | None:
    """Key, rate limit and ruleset of a request the fast path may answer, else ``None``."""
    if not accepts_json(request):
        return None
    key = authenticate(request, kinds)
    if key is None:
        return None
    if throttling.allow(key.lookup, key.kind, throttling.client_address(request)) is not None:
        return None  # the window is now blocked: the full path answers 429 without counting
    version = known_version(key.environment_id)
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
    api_key: FastKey,
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
