"""A compiled ruleset and evaluation (docs/ruleset-format.md sections 4 and 5)."""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import mmh3

from .bucketing import BUCKETS, PARTICIPATION_SEED, SPLIT_SEED, bucket_value, murmur_text
from .compiler import compile_document
from .errors import RulesetProblem
from .model import Flag, Split
from .results import ErrorCode, EvaluationResult, error_result

logger = logging.getLogger(__name__)

Memo = dict[str, EvaluationResult]

# Bound once: the hot path hashes inline, not through a helper. It always hashes bytes: mmh3
# 5.3 crashes the interpreter (SIGSEGV) when given a str holding a lone surrogate.
_murmur = mmh3.hash


class Ruleset:
    """One environment's flags and segments, compiled once and evaluated many times.

    A ``Ruleset`` is immutable after ``from_dict`` and safe to share between threads.
    ``problems`` lists what the compiler read past (docs/ruleset-format.md §7), in document order.
    """

    __slots__ = ("_flags", "environment", "problems", "project", "version")

    def __init__(
        self,
        flags: dict[str, Flag],
        *,
        version: int,
        project: str | None = None,
        environment: str | None = None,
        problems: tuple[RulesetProblem, ...] = (),
    ) -> None:
        self._flags = flags
        self.version = version
        self.project = project
        self.environment = environment
        self.problems = problems

    @classmethod
    def from_dict(
        cls,
        document: Any,
        *,
        strict: bool = False,
        result_type: type[EvaluationResult] = EvaluationResult,
    ) -> Ruleset:
        """Validate and compile a ruleset document; raise ``RulesetError`` if it is invalid.

        ``strict`` also rejects references to missing segments and prerequisite flags, prerequisite
        cycles and chains deeper than 10, conditions whose operator or values the engine cannot
        use and a newer minor format (FlagShip saves nothing that fails it). The default lenient
        mode, which SDKs use, lets those fail at evaluation instead and records the last two in
        ``problems``: a newer server never stops an older SDK from taking a new ruleset.

        ``result_type``, a subclass of ``EvaluationResult`` without fields of its own, is the class
        of every result the ruleset builds when it compiles and hands out on evaluation (results
        of errors excepted). The FlagShip server uses one that hashes by identity, to count and
        render the results it serves without looking at their fields.
        """
        compiled = compile_document(document, strict=strict, result_type=result_type)
        return cls(
            compiled.flags,
            version=compiled.version,
            project=compiled.project,
            environment=compiled.environment,
            problems=compiled.problems,
        )

    def __contains__(self, flag_key: object) -> bool:
        try:
            return flag_key in self._flags
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._flags)

    def __len__(self) -> int:
        return len(self._flags)

    def kind(self, flag_key: str) -> str | None:
        """Return a flag's kind (``boolean``, ``string``, ``number``, ``json``), if it exists."""
        flag = self._flags.get(flag_key)
        return flag.kind if flag is not None else None

    def client_visible(self, flag_key: str) -> bool:
        """Whether client (browser) keys may evaluate the flag."""
        flag = self._flags.get(flag_key)
        return flag is not None and flag.client_visible

    def static_results(self) -> dict[str, EvaluationResult]:
        """The flags whose result never depends on the context, with that result.

        A flag is static when nothing in it reads the context: disabled, or enabled with no
        rules, prerequisites or split. SDKs serve these without evaluating (for a context that is
        not an object, :meth:`evaluate` still answers ``INVALID_CONTEXT``).
        """
        return {key: flag.static for key, flag in self._flags.items() if flag.static is not None}

    def evaluate(self, flag_key: str, context: Mapping[str, Any] | None = None) -> EvaluationResult:
        """Evaluate one flag for a context. Never raises."""
        if type(context) is not dict:
            checked = _as_context(context)
            if checked is None:
                return error_result(flag_key, ErrorCode.INVALID_CONTEXT)
            context = checked
        try:
            flag = self._flags[flag_key]
        except (KeyError, TypeError):  # TypeError: an unhashable key names no flag either
            return error_result(flag_key, ErrorCode.FLAG_NOT_FOUND)
        static = flag.static
        if static is not None:
            return static
        try:
            return _evaluate(flag, context, self._flags, None)
        except Exception:  # the contract is "never raises"; this is a bug, so log it loudly
            logger.exception("flag.evaluation_failed", extra={"flag": flag.key})
            return error_result(flag_key, ErrorCode.GENERAL)

    def evaluate_all(
        self, context: Mapping[str, Any] | None = None, *, client_visible_only: bool = False
    ) -> dict[str, EvaluationResult]:
        """Evaluate every flag (or only the client-visible ones) for a context. Never raises."""
        if type(context) is not dict:
            checked = _as_context(context)
            if checked is None:
                return {
                    key: error_result(key, ErrorCode.INVALID_CONTEXT)
                    for key, flag in self._flags.items()
                    if flag.client_visible or not client_visible_only
                }
            context = checked
        memo: Memo = {}
        results: dict[str, EvaluationResult] = {}
        flags = self._flags
        for key, flag in flags.items():
            if client_visible_only and not flag.client_visible:
                continue
            if flag.static is not None:
                results[key] = flag.static
                continue
            try:
                results[key] = _evaluate(flag, context, flags, memo)
            except Exception:
                logger.exception("flag.evaluation_failed", extra={"flag": key})
                results[key] = error_result(key, ErrorCode.GENERAL)
        return results


def _as_context(context: object) -> Mapping[str, Any] | None:
    """Accept any mapping as a context, ``None`` as an empty one; anything else is invalid."""
    if context is None:
        return {}
    if isinstance(context, Mapping):
        return context
    return None


def _evaluate(
    flag: Flag, context: Mapping[str, Any], flags: Mapping[str, Flag], memo: Memo | None
) -> EvaluationResult:
    static = flag.static
    if static is not None:
        return static
    for prerequisite in flag.prerequisites:
        if prerequisite.broken:
            return prerequisite.failed
        parent = flags[prerequisite.flag]
        served = memo.get(parent.key) if memo is not None else None
        if served is None:
            served = _evaluate(parent, context, flags, memo)
            if memo is not None:
                memo[parent.key] = served
        if served.problem is not None:  # only with lenient problems: not on the usual path
            return _evaluate_inheriting(flag, context, flags, memo)
        if prerequisite.variants is None:
            holds = served.variant != parent.off_variant
        else:
            holds = served.variant in prerequisite.variants
        if not holds:
            return prerequisite.failed
    prefix = flag.prefix
    for rule in flag.rules:
        match = rule.match
        if match is None or match(context):
            rollout = rule.rollout
            if rollout is not None:
                attributes = rule.bucket_by
                subject = context.get(attributes[0])
                if type(subject) is not str:
                    subject = bucket_value(context, attributes)
                    if subject is None:
                        continue
                try:
                    digest = _murmur((prefix + subject).encode(), PARTICIPATION_SEED, False)
                except UnicodeEncodeError:
                    digest = murmur_text(prefix + subject, PARTICIPATION_SEED)
                if (digest * BUCKETS) >> 32 >= rollout:
                    continue
            result = rule.result
            if result is not None:
                return result
            split = rule.split
            assert split is not None  # noqa: S101  # a rule serves a variant or a split
            result = _split(split, prefix, context)
            if result is not None:
                return result
    default = flag.default
    if default.result is not None:
        return default.result
    split = default.split
    assert split is not None  # noqa: S101  # a default serves a variant or a split
    result = _split(split, prefix, context)
    if result is None:
        assert default.missing is not None  # noqa: S101  # built with every split default
        return default.missing
    return result


def _evaluate_inheriting(
    flag: Flag, context: Mapping[str, Any], flags: Mapping[str, Flag], memo: Memo | None
) -> EvaluationResult:
    """Evaluate a flag one of whose prerequisite parents served a result with a problem.

    The flag's result then went through that problem too, so it carries it (the first one met, in
    evaluation order). Results are built here rather than in advance: this is the rare path.
    """
    inherited: RulesetProblem | None = None
    for prerequisite in flag.prerequisites:
        if prerequisite.broken:
            return _inherit(prerequisite.failed, inherited)
        parent = flags[prerequisite.flag]
        served = memo.get(parent.key) if memo is not None else None
        if served is None:
            served = _evaluate(parent, context, flags, memo)
            if memo is not None:
                memo[parent.key] = served
        inherited = inherited or served.problem
        if prerequisite.variants is None:
            holds = served.variant != parent.off_variant
        else:
            holds = served.variant in prerequisite.variants
        if not holds:
            return _inherit(prerequisite.failed, inherited)
    result = _evaluate(replace(flag, prerequisites=()), context, flags, memo)
    return _inherit(result, inherited)


def _inherit(result: EvaluationResult, problem: RulesetProblem | None) -> EvaluationResult:
    if problem is None or result.problem is problem:
        return result
    return replace(result, problem=problem)


def _split(split: Split, prefix: str, context: Mapping[str, Any]) -> EvaluationResult | None:
    """Choose a split's variant for the subject, or ``None`` when its attribute is missing."""
    attributes = split.bucket_by
    subject = context.get(attributes[0])
    if type(subject) is not str:
        subject = bucket_value(context, attributes)
        if subject is None:
            return None
    try:
        digest = _murmur((prefix + subject).encode(), SPLIT_SEED, False)
    except UnicodeEncodeError:
        digest = murmur_text(prefix + subject, SPLIT_SEED)
    return split.results[bisect_right(split.thresholds, (digest * BUCKETS) >> 32)]
