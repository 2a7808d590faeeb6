"""Stored values as people see and type them, and back: each pair is exact over its domain.

Every value the admin shows in a form goes through one of these pairs, so that a form saved
unchanged stores exactly what was stored (the round-trip property tests in
``flags/tests/test_formats.py`` cover each pair over its whole domain):

- percentages: thousandths of a percent (``30000``) ↔ ``"30"``; every integer from 0 to 100 000;
- variant values by the flag's kind: ``2.0`` ↔ ``"2.0"``, ``2`` ↔ ``"2"``, JSON ↔ one line of JSON;
- condition values: a list of strings, numbers and booleans ↔ one value per line, with a quoted
  (JSON) form for strings a line cannot hold as they are, and ``number: …`` / ``boolean: …`` for
  values that are not strings;
- text typed in a multi-line box: browsers send line breaks as CRLF, read back as LF.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from flagship import jsonbody

THOUSANDTHS = 1000  # rollouts and weights are stored in thousandths of a percent
MAX_DECIMALS = 3
HUNDRED_PERCENT = 100 * THOUSANDTHS


# --- Percentages ---------------------------------------------------------------------------------


def format_percentage(thousandths: int) -> str:
    """Thousandths of a percent as people write the percentage: 30000 → "30", 12500 → "12.5"."""
    sign = "-" if thousandths < 0 else ""
    whole, fraction = divmod(abs(thousandths), THOUSANDTHS)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:03d}".rstrip("0")


def parse_percentage(text: str) -> int:
    """A typed percentage ("12.5", "30 %", up to 3 decimals) as thousandths of a percent."""
    try:
        number = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        raise ValidationError("Enter a percentage such as 25 or 33.333.", code="invalid") from None
    if not number.is_finite() or number < 0 or number > 100:
        raise ValidationError("Enter a percentage from 0 to 100.", code="invalid")
    scaled = number * THOUSANDTHS
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"Use at most {MAX_DECIMALS} decimals (steps of 0.001 %).", code="invalid"
        )
    return int(scaled)


# --- Variant values, by the flag's kind ----------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


def format_variant_value(kind: str, value: Any) -> str:
    """The text a person edits for a stored value: a string as it is, a number, or JSON."""
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == "number" and isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float ("2.0", "1e+16")
    return json.dumps(value, ensure_ascii=False)


def parse_variant_value(kind: str, text: str) -> Any:
    """What a person typed as a value of the flag's kind: integers stay integers, floats floats."""
    if kind == "string":
        return normalize_line_breaks(text)
    if kind == "number":
        return _parse_number(text.strip())
    if kind == "json":
        try:
            return jsonbody.loads(text)
        except ValueError as error:  # too deep, NaN and Infinity too
            raise ValidationError(f"Enter valid JSON: {error}.", code="invalid") from None
    raise ValidationError("A boolean flag's variants are on and off.", code="invalid_variant")


def _parse_number(text: str) -> int | float:
    if _INTEGER.match(text):
        return int(text)
    if not _NUMBER.match(text):
        raise ValidationError("Enter a number, such as 3 or 2.5.", code="invalid")
    value = float(text)
    if not math.isfinite(value):
        raise ValidationError("Enter a finite number.", code="invalid")
    return value


# --- Condition values: one per line --------------------------------------------------------------

NUMBER_PREFIX = "number: "
BOOLEAN_PREFIX = "boolean: "


def _plain(text: str) -> bool:
    """Whether a string can stand on its own line as it is (and be read back as the same string)."""
    return (
        text != ""
        and text.isprintable()  # control characters (NUL included) travel quoted
        and text == text.strip()
        and not text.startswith('"')
        and not text.startswith((NUMBER_PREFIX, BOOLEAN_PREFIX))
    )


def format_condition_values(values: Any) -> str:
    """One value per line: strings as they are, or quoted when a line cannot hold them."""
    if not isinstance(values, list):
        return json.dumps(values, ensure_ascii=False)
    lines = []
    for value in values:
        if isinstance(value, str):
            lines.append(value if _plain(value) else json.dumps(value, ensure_ascii=False))
        elif isinstance(value, bool):
            lines.append(f"{BOOLEAN_PREFIX}{'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{NUMBER_PREFIX}{format_variant_value('number', value)}")
        else:
            lines.append(json.dumps(value, ensure_ascii=False))
    return "\n".join(lines)


def parse_condition_values(text: str) -> list[Any]:
    """The values of a box of lines; empty lines are skipped, spaces around a line removed."""
    values: list[Any] = []
    for raw in normalize_line_breaks(text).split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith('"'):
            try:
                quoted = json.loads(line)
            except ValueError:
                quoted = None
            if not isinstance(quoted, str):
                raise ValidationError(
                    f'{line} is not a quoted text: use "…" with \\" for a quote inside.',
                    code="invalid",
                )
            values.append(quoted)
        elif line.startswith(NUMBER_PREFIX):
            values.append(_parse_number(line.removeprefix(NUMBER_PREFIX).strip()))
        elif line.startswith(BOOLEAN_PREFIX):
            word = line.removeprefix(BOOLEAN_PREFIX).strip()
            if word not in ("true", "false"):
                raise ValidationError(f"{line}: write boolean: true or false.", code="invalid")
            values.append(word == "true")
        else:
            values.append(line)
    return values


def same_json(first: Any, second: Any) -> bool:
    """Whether two values are the same JSON (1, 1.0 and true are three different values)."""
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


# --- Text boxes ----------------------------------------------------------------------------------


def normalize_line_breaks(text: str) -> str:
    """CRLF (what browsers send for a line break in a text box) and lone CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
