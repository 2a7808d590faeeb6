"""The compiled form of a ruleset: flags whose every possible result is built in advance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .conditions import Predicate
from .results import EvaluationResult


@dataclass(frozen=True, slots=True)
class Split:
    """A weighted split: variant ``i`` serves buckets below ``thresholds[i]``."""

    bucket_by: tuple[str, ...]
    thresholds: tuple[int, ...]
    results: tuple[EvaluationResult, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule; ``match`` tests its own and its segments' conditions (``None``: none)."""

    id: str
    match: Predicate | None
    rollout: int | None
    bucket_by: tuple[str, ...]
    result: EvaluationResult | None  # a single served variant, or None with a split
    split: Split | None


@dataclass(frozen=True, slots=True)
class DefaultServe:
    """What a flag serves when no rule matches."""

    result: EvaluationResult | None  # a single variant, or None with a split
    split: Split | None
    missing: EvaluationResult | None  # the split's first variant, when its attribute is missing


@dataclass(frozen=True, slots=True)
class Prerequisite:
    """A parent flag that must serve one of ``variants`` (with ``None``: not its off variant)."""

    flag: str
    variants: tuple[str, ...] | None
    failed: EvaluationResult
    broken: bool  # the parent is missing, on a cycle or too deep: the prerequisite never holds
    path: str  # where the prerequisite stands in the document, for error messages


@dataclass(frozen=True, slots=True)
class Flag:
    """A compiled flag. ``static`` is its result for every context, when it does not vary."""

    key: str
    kind: str
    variants: dict[str, Any]
    off_variant: str
    client_visible: bool
    salt: str
    prefix: str  # salt + ":", the start of every string this flag hashes
    static: EvaluationResult | None
    prerequisites: tuple[Prerequisite, ...]
    rules: tuple[Rule, ...]
    default: DefaultServe
