"""Building blocks of the hand-written baseline: its result type and a few shared helpers.

The helpers (canonical strings, numbers, SemVer) are those that a person hand-coding flags would
also write once.

The hot paths of the baseline inline the common case (a ``str`` or ``int`` attribute) and only call
these helpers for the rare other types, as a hand-written implementation would.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

STATIC: Final = "STATIC"
DEFAULT: Final = "DEFAULT"
TARGETING_MATCH: Final = "TARGETING_MATCH"
SPLIT: Final = "SPLIT"
DISABLED: Final = "DISABLED"
PREREQUISITE_FAILED: Final = "PREREQUISITE_FAILED"

BUCKETS: Final = 100_000


class Result:
    """The baseline's answer for one flag: the fields that are compared with the engine's result.

    A small slotted object, the shape a hand-written evaluator would hand to its callers. Every
    outcome of a flag is known in advance, so the baseline builds each once and returns the shared
    instance, as the engine does with its pre-built results; neither allocates per evaluation.
    """

    __slots__ = ("prerequisite", "reason", "rule", "value", "variant")

    def __init__(
        self,
        value: Any,
        variant: str,
        reason: str,
        rule: str | None = None,
        prerequisite: str | None = None,
    ) -> None:
        self.value = value
        self.variant = variant
        self.reason = reason
        self.rule = rule
        self.prerequisite = prerequisite


def canonical(value: object) -> str | None:
    """Return the canonical string of a scalar (docs/ruleset-format.md §3), or None."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return None


_NUMERIC = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def as_number(value: object) -> float | None:
    """Return the number a numeric operator compares, or None when the value is not numeric."""
    if type(value) is int:
        return float(value)
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is str and _NUMERIC.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    rf"(?:-({_IDENT}(?:\.{_IDENT})*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)

# (major, minor, patch, is_release, pre-release identifiers); tuple order is SemVer precedence:
# a release (1) sorts above its pre-releases (0), numeric identifiers (0, n, "") sort below
# alphanumeric ones (1, 0, s), and a longer pre-release sorts above its prefix.
SemverKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def semver_key(text: object) -> SemverKey | None:
    """Return a key whose tuple order is SemVer 2.0 precedence, or None for a non-SemVer value."""
    if type(text) is not str:
        return None
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, ids)


def must_semver(text: str) -> SemverKey:
    """Return the key of a version constant of the benchmark, which is always valid SemVer."""
    key = semver_key(text)
    if key is None:
        raise ValueError(f"not SemVer: {text!r}")
    return key
