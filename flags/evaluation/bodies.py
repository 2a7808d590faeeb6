"""Evaluation request bodies and the context they carry: one reading for every endpoint and path.

A body is ``{"context": {...}}``. The body, or its context, may be absent or null (the context is
then ``{}``); other members are ignored. :func:`context_of` reads a body already decoded (the
evaluation API's full path, where DRF's parser negotiated the content type first);
:func:`read_context` decodes raw bytes through ``flagship.jsonbody`` first (OFREP, whatever the
content type, and the fast path). A body that holds no context raises :class:`BodyError`, which
each endpoint family answers in its own shape (problem details, OFREP's ``errorCode``). The fast
path takes only :func:`plain` bodies and leaves everything else to the full path, which answers it.
"""

from __future__ import annotations

from typing import Any

from flagship import jsonbody

MALFORMED = "malformed"  # not strict JSON, or nested too deep
NOT_AN_OBJECT = "not_an_object"  # the body
CONTEXT_NOT_AN_OBJECT = "context_not_an_object"


class BodyError(ValueError):
    """Why a body holds no context: ``reason`` (one of the constants above), and what was there."""

    def __init__(self, reason: str, message: str, value: object = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.value = value


def decode(raw: bytes, *, blank_is_empty: bool = False) -> Any:
    """The JSON value of a raw body; ``None`` when it is empty (or only white space, if blank).

    OFREP reads a blank body as none (``blank_is_empty``); DRF's parser, as malformed JSON.
    """
    if not raw or (blank_is_empty and not raw.strip()):
        return None
    try:
        return jsonbody.loads(raw)
    except ValueError as error:  # JSONTooDeepError too: its message gives the limit
        raise BodyError(MALFORMED, str(error)) from None


def context_of(body: Any) -> dict[str, Any]:
    """The context of a decoded body (``None``: no body)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BodyError(NOT_AN_OBJECT, "The request body must be a JSON object.", body)
    context = body.get("context")
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise BodyError(CONTEXT_NOT_AN_OBJECT, "The context must be a JSON object.", context)
    return context


def read_context(raw: bytes, *, blank_is_empty: bool = False) -> dict[str, Any]:
    """The context of a raw body (:func:`decode`, then :func:`context_of`)."""
    return context_of(decode(raw, blank_is_empty=blank_is_empty))


def plain(body: Any) -> bool:
    """Whether a decoded body holds nothing but (at most) a context."""
    return body is None or (isinstance(body, dict) and all(name == "context" for name in body))
