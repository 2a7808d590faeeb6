"""The JSON of evaluation answers, written one way on both paths.

Each evaluation view builds its successful answer in one method (``answer``), which the fast path
and DRF's full path both call, so the two send the same bytes by construction. Those bytes come
from :func:`render`, DRF's own ``JSONRenderer`` (the API's ``DEFAULT_RENDERER_CLASSES``) called
directly: compact, non-ASCII kept, ``NaN`` refused, U+2028 and U+2029 escaped; the answers of
these views ignore an ``indent`` parameter in ``Accept``. A bulk answer joins the JSON of each
result, built once per ruleset version (:func:`fragments`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer

from flags.delivery.compiled import CompiledRuleset
from flags.evaluation.tally import hashable

JSON = "application/json"
# Results of a 10 000-flag ruleset with a few variants each, per response style.
MAX_FRAGMENTS = 100_000

_renderer = JSONRenderer()


def render(data: Any) -> bytes:
    """JSON as DRF's ``JSONRenderer`` writes it."""
    return _renderer.render(data)


def json_response(body: bytes) -> HttpResponse:
    """A 200 JSON response."""
    return HttpResponse(body, content_type=JSON)


def fragments(
    compiled: CompiledRuleset,
    style: str,
    results: Iterable[Any],
    build: Callable[[Any], bytes],
) -> list[bytes]:
    """The JSON of each result in one response style (``build(result)``), built once per ruleset.

    The engine builds every result a flag can have when it compiles the ruleset and hands out the
    same objects, so each result's JSON is kept beside the ruleset, keyed by the result itself (a
    ``ServedResult`` hashes by identity: one C-level ``map`` looks them all up). A result that
    cannot be a key (an error's, or one with a JSON value that did not come from the compiled
    ruleset) is built each time.
    """
    cache = compiled.fragments.setdefault(style, {})
    values = results if isinstance(results, list) else list(results)
    try:
        parts: list[bytes | None] = list(map(cache.get, values))
    except TypeError:  # an unhashable result: look the others up one by one
        parts = [cache.get(result) if hashable(result) else None for result in values]
    if None in parts:
        for index, part in enumerate(parts):
            if part is None:
                result = values[index]
                parts[index] = text = build(result)
                if len(cache) < MAX_FRAGMENTS and hashable(result):
                    cache[result] = text
    return parts  # type: ignore[return-value]  # every None was replaced above
