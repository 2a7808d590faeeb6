"""JSON from clients, read one way everywhere: strict, and nested no deeper than a limit.

Python's ``json`` recurses once per level of nesting, so a body of a few thousand ``[`` raises
``RecursionError`` (not ``ValueError``) at a depth that depends on the stack left: every parser
that takes JSON from outside (DRF's, the evaluation fast path, OFREP, the admin's JSON fields)
reads it with ``loads`` below instead. Objects and arrays may nest ``FLAGSHIP_MAX_JSON_DEPTH``
levels (``flags.conf``; 64 by default, and ``{"context": {}}`` is 2); deeper is
``JSONTooDeepError``. ``NaN`` and ``Infinity`` are not JSON and are refused, as are bytes that are
not UTF-8, -16 or -32.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from flags import conf

TOO_DEEP_CODE = "json_too_deep"


class JSONTooDeepError(ValueError):
    """A document whose objects and arrays nest deeper than the limit."""

    code = TOO_DEEP_CODE

    def __init__(self, limit: int) -> None:
        super().__init__(f"objects and arrays nested deeper than {limit} levels")
        self.limit = limit


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes | bytearray, *, limit: int | None = None) -> Any:
    """The value of a JSON document from a client.

    Raises ``ValueError``: ``JSONTooDeepError`` for nesting deeper than ``limit`` (default
    ``flags.conf.max_json_depth()``), another ``ValueError`` (``json.JSONDecodeError``,
    ``UnicodeDecodeError``) for anything that is not strict JSON.
    """
    depth = conf.max_json_depth() if limit is None else limit
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise JSONTooDeepError(depth) from None
    if _openings(text) > depth and nesting_exceeds(value, depth):
        raise JSONTooDeepError(depth)
    return value


def _openings(text: str | bytes | bytearray) -> int:
    """An upper bound of the nesting, counted in C: how many ``{`` and ``[`` the text holds.

    In bytes (UTF-8, -16 or -32) every ``{`` or ``[`` character holds its ASCII byte, so the
    count of those bytes bounds the count of characters too.
    """
    if isinstance(text, str):
        return text.count("{") + text.count("[")
    return text.count(b"{") + text.count(b"[")


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value``'s dicts and lists nest deeper than ``limit`` (an iterative walk)."""
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
