"""Reading context values: canonical strings, numbers, instants and versions.

Every function here is total: it returns ``None`` for a value it cannot read, never raises, so the
operators built on them never raise whatever a context holds (docs/ruleset-format.md §3).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

# Patterns are ASCII-only: Python's \d would also accept other scripts' digits, other SDKs not.
# An optional sign, digits with an optional fraction (".5" and "5." included), an optional exponent.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)

# RFC 3339 date-time with a mandatory offset; "t", "z" and a space for "T" are accepted.
_INSTANT = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)

# The regular expression of semver.org, without the optional leading "v" some tools accept.
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)

# A version's precedence key: (major, minor, patch, is_release, pre-release identifiers). Each
# identifier is (0, number, "") or (1, 0, text) so numeric identifiers sort below alphanumeric ones
# and tuples of different shapes never meet.
VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def canonical_string(value: Any) -> str | None:
    """Return the canonical string of a scalar (string, boolean, finite number), else ``None``."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]  # narrowed by the exact type check above
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _float_string(value)
    # Subclasses (IntEnum, str subclasses) are rare: take the slower isinstance path for them.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float_string(float(value))
    return None


def _float_string(value: float) -> str | None:
    if not math.isfinite(value):
        return None
    if value.is_integer():
        return str(int(value))
    return repr(value)


def parse_number(value: Any) -> int | float | None:
    """Read a number or a numeric string; booleans, NaN, infinities and other text are ``None``."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]  # narrowed by the exact type check above
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str:
        return _parse_numeric_string(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return _parse_numeric_string(str.__str__(value))
    return None


def _parse_numeric_string(text: str) -> int | float | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def parse_instant(value: Any) -> float | None:
    """Read an instant as Unix seconds: an RFC 3339 string with an offset, or a number."""
    if isinstance(value, str):
        return _parse_instant_string(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    return None


def _parse_instant_string(text: str) -> float | None:
    match = _INSTANT.fullmatch(text)
    if match is None:
        return None
    date, time, fraction, offset = match.groups()
    # fromisoformat takes at most six fractional digits; finer ones cannot change a comparison of
    # instants that are at least a microsecond apart, so they are cut, not rounded.
    micro = f".{(fraction + '000000')[:6]}" if fraction else ""
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{date}T{time}{micro}{zone}").timestamp()
    except ValueError:  # a well-formed string naming an impossible date such as February 30
        return None


# The keys of the version strings read lately. A context's version (``app_version``) is read by
# every semver condition of every flag it meets (19 times per ``evaluate_all`` of the engine
# benchmark's W4), and the parse is most of such a condition's cost. Bounded in entries (cleared
# when full: contexts sending a new version each time cost a parse each, as without it) and in
# length (a long string is parsed each time, never kept).
_VERSION_KEYS: dict[str, VersionKey | None] = {}
VERSION_KEYS_KEPT = 1024
VERSION_KEPT_LENGTH = 64


def parse_version(value: Any) -> VersionKey | None:
    """Read a SemVer 2.0 string into its precedence key; anything else is ``None``."""
    if type(value) is str and len(value) <= VERSION_KEPT_LENGTH:
        try:
            return _VERSION_KEYS[value]
        except KeyError:
            key = _parse_version(value)
            if len(_VERSION_KEYS) >= VERSION_KEYS_KEPT:
                _VERSION_KEYS.clear()
            _VERSION_KEYS[value] = key
            return key
    if not isinstance(value, str):
        return None
    return _parse_version(value)


def _parse_version(value: str) -> VersionKey | None:
    match = _SEMVER.fullmatch(value)
    if match is None:
        return None
    major, minor, patch, pre, _build = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
    )
    return (int(major), int(minor), int(patch), 0, identifiers)
