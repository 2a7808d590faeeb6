"""The warm path of the evaluation endpoints: answer from process memory, without DRF's machinery.

An evaluation request is tiny work (a dictionary lookup, a hash, the engine) next to what DRF does
around it (request wrapping, three authenticators, content negotiation, permission and throttle
objects). The evaluation and OFREP views therefore try this path first (``FastPathMixin``) and fall
back to DRF's full ``dispatch`` for *anything* unusual: no key or a key this process has not
cached, a revoked, expired or mismatched key, a key whose ``last_used_at`` is due, a rate limit
reached, a body that is not a plain context, an ``Accept`` that is not JSON, an unknown API
version, any exception (an unknown flag too: the view's answer raises). The full path then answers
as always (errors in problem details or OFREP's shapes).

Only the front differs between the paths. The key is checked from this process's memory
(``flags.delivery.keys.authenticate``, the same check as DRF's authenticator on essentials this
process holds), the ruleset is the one both paths evaluate with (``flags.delivery.compiled``), the
context is read by ``bodies`` as the full path reads it, and the answer is the view's one
``answer`` method, rendered by ``rendering``: the fast path answers byte for byte what the full
path would (``flags/tests/test_fast_path.py`` compares both on every endpoint).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.authentication import presented_secret
from accounts.models import ApiKey
from flags.delivery import keys, versions
from flags.delivery.compiled import CompiledRuleset, compiled_for
from flagship.access import note_api_key

from . import bodies, throttling
from .rendering import JSON

SERVER = str(ApiKey.Kind.SERVER)
CLIENT = str(ApiKey.Kind.CLIENT)


def accepts_json(request: HttpRequest) -> bool:
    """Whether the response may be JSON (else DRF's negotiation answers 406)."""
    accept = request.META.get("HTTP_ACCEPT")
    return not accept or "*/*" in accept or JSON in accept or "application/*" in accept


def admitted(request: HttpRequest, kinds: tuple[str, ...]) -> tuple[str, CompiledRuleset] | None:
    """The key's kind and the ruleset of a request the fast path may answer, else ``None``.

    The key is checked and counted against its rate limit here.
    """
    if not accepts_json(request):
        return None
    secret = presented_secret(request)
    key = None if secret is None else keys.authenticate(secret, kinds)
    if key is None:
        return None
    note_api_key(request, key.id)  # the access log's api_key_id
    if throttling.allow(key.lookup, key.kind, throttling.client_address(request)) is not None:
        return None  # the window is now blocked: the full path answers 429 without counting
    version = versions.known_version(key.environment_id)
    return key.kind, compiled_for(key.environment_id, key.project_id, version)


def plain_context(request: HttpRequest, *, any_content_type: bool = False) -> dict[str, Any] | None:
    """The context of a plain body (``bodies.plain``), else ``None`` (the full path answers).

    ``any_content_type``: read as OFREP reads bodies (any content type, a blank body is none);
    else as the evaluation API does, where a body that is not JSON by its content type is DRF's
    to refuse (415).
    """
    raw = request.body
    if raw and not any_content_type and not request.META.get("CONTENT_TYPE", "").startswith(JSON):
        return None
    try:
        body = bodies.decode(raw, blank_is_empty=any_content_type)
        return bodies.context_of(body) if bodies.plain(body) else None
    except bodies.BodyError:
        return None
