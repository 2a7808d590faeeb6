"""The API's JSON parser: DRF's, reading through ``flagship.jsonbody`` (the nesting limit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from . import jsonbody


class JSONParser(parsers.JSONParser):
    """``DEFAULT_PARSER_CLASSES``: too deep a body is 400 ``json_too_deep``, never a 500.

    Anything else that is not strict JSON (syntax, bytes not in the request's charset, ``NaN``)
    is DRF's ``ParseError``, which the problem handler answers as 400 ``malformed_json``.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        """The body's JSON value."""
        # DRF's check of the charset (text codecs only), as its own parser does.
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]  # missing from drf-stubs
        try:
            return jsonbody.loads(stream.read().decode(encoding))
        except jsonbody.JSONTooDeepError as error:
            detail = f"The JSON body nests objects and arrays deeper than {error.limit} levels."
            raise ParseError(detail, code=jsonbody.TOO_DEEP_CODE) from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
