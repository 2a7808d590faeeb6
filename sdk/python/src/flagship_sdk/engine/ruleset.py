"""A compiled ruleset and evaluation (docs/ruleset-format.md sections 4 and 5)."""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import mmh3

from .bucketing import BUCKETS, PARTICIPATION_SEED, SPLIT_SEED, bucket_value, murmur_text
from .compiler import (
    FORMAT,
    MAX_PREREQUISITE_DEPTH,
    FlagCompiler,
    _invalid,
    _member,
    _object,
    _optional,
    key_path,
)
from .conditions import Condition
from .errors import RulesetError
from .model import Flag, Prerequisite, Split
from .results import ErrorCode, EvaluationResult, error_result

logger = logging.getLogger(__name__)

Memo = dict[str, EvaluationResult]

# Bound once: the hot path hashes inline, not through a helper. It always hashes bytes: mmh3
# 5.3 crashes the interpreter (SIGSEGV) when given a str holding a lone surrogate.
_murmur = mmh3.hash


class Ruleset:
    """One environment's flags and segments, compiled once and evaluated many times.

    A ``Ruleset`` is immutable after ``from_dict`` and safe to share between threads.
    """

    __slots__ = ("_flags", "environment", "project", "version")

    def __init__(
        self,
        flags: dict[str, Flag],
        *,
        version: int,
        project: str | None = None,
        environment: str | None = None,
    ) -> None:
        self._flags = flags
        self.version = version
        self.project = project
        self.environment = environment

    @classmethod
    def from_dict(cls, document: Any, *, strict: bool = False) -> Ruleset:
        """Validate and compile a ruleset document; raise ``RulesetError`` if it is invalid.

        ``strict`` also rejects references to missing segments and prerequisite flags, prerequisite
        cycles and chains deeper than 10 (FlagShip saves nothing that fails it); the default lenient
        mode lets those references fail at evaluation instead, as SDKs need.
        """
        doc = _object(document, "")
        version_format = doc.get("format")
        if version_format != FORMAT or isinstance(version_format, bool):
            raise RulesetError(
                "unsupported_format",
                "format",
                f"this engine reads ruleset format {FORMAT}, not {version_format!r}",
            )
        version = _member(doc, "version", "", int)
        if version < 0:
            raise _invalid("version", "'version' must be 0 or more")
        project = _optional(doc, "project", "", str, None)
        environment = _optional(doc, "environment", "", str, None)
        compiler = FlagCompiler(_segments(_optional(doc, "segments", "", dict, {})))
        flags: dict[str, Flag] = {}
        for key, flag_doc in _member(doc, "flags", "", dict).items():
            path = key_path("flags", key)
            if not isinstance(key, str) or not key:
                raise _invalid(path, "a flag key must be a non-empty string")
            flags[key] = compiler.flag(key, flag_doc, path)
        if strict and compiler.unknown_segments:
            where = compiler.unknown_segments[0]
            raise RulesetError("unknown_segment", where, "this segment does not exist")
        _link_prerequisites(flags, strict=strict)
        return cls(flags, version=version, project=project, environment=environment)

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


def _segments(docs: Mapping[str, Any]) -> dict[str, tuple[Condition, ...]]:
    compiler = FlagCompiler({})
    segments = {}
    for key, doc in docs.items():
        path = key_path("segments", key)
        if not isinstance(key, str) or not key:
            raise _invalid(path, "a segment key must be a non-empty string")
        obj = _object(doc, path)
        segments[key] = compiler.conditions(_optional(obj, "conditions", path, list, []), path)
    return segments


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


def _link_prerequisites(flags: dict[str, Flag], *, strict: bool) -> None:
    """Check prerequisite references, mark the ones that can never hold, and bound their depth."""
    for flag in flags.values():
        for prerequisite in flag.prerequisites:
            parent = flags.get(prerequisite.flag)
            if parent is None:
                if strict:
                    raise RulesetError(
                        "unknown_prerequisite",
                        f"{prerequisite.path}.flag",
                        f"there is no flag {prerequisite.flag!r}",
                    )
                continue
            for index, name in enumerate(prerequisite.variants or ()):
                if name not in parent.variants:
                    raise RulesetError(
                        "invalid_variant",
                        f"{prerequisite.path}.variants[{index}]",
                        f"{name!r} is not a variant of flag {parent.key!r}",
                    )
    on_cycle = _flags_on_cycles(flags)
    if strict and on_cycle:
        first = next(key for key in flags if key in on_cycle)
        raise RulesetError(
            "prerequisite_cycle",
            key_path("flags", first) + ".prerequisites",
            f"flag {first!r} depends on itself through its prerequisites",
        )
    depths: dict[str, int] = {}
    for key in flags:
        _settle(key, flags, on_cycle, depths, strict=strict)


def _settle(
    key: str, flags: dict[str, Flag], on_cycle: set[str], depths: dict[str, int], *, strict: bool
) -> int:
    """Compute a flag's prerequisite depth and mark its broken prerequisites.

    Iterative rather than recursive, so a long chain never meets Python's recursion limit.
    """
    stack = [key]
    while stack:
        current = stack[-1]
        if current in depths:
            stack.pop()
            continue
        flag = flags[current]
        pending = [
            p.flag
            for p in flag.prerequisites
            if p.flag in flags and p.flag not in on_cycle and p.flag not in depths
        ]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        depth = 0
        linked: list[Prerequisite] = []
        for prerequisite in flag.prerequisites:
            parent = prerequisite.flag
            broken = parent not in flags or parent in on_cycle
            if not broken and depths[parent] >= MAX_PREREQUISITE_DEPTH:
                if strict:
                    raise RulesetError(
                        "prerequisite_too_deep",
                        f"{prerequisite.path}.flag",
                        f"prerequisites may be nested {MAX_PREREQUISITE_DEPTH} levels deep at most",
                    )
                broken = True
            if not broken:
                depth = max(depth, depths[parent] + 1)
            linked.append(replace(prerequisite, broken=broken) if broken else prerequisite)
        depths[current] = depth
        if any(p.broken for p in linked):
            flags[current] = replace(flag, prerequisites=tuple(linked))
    return depths[key]


def _flags_on_cycles(flags: Mapping[str, Flag]) -> set[str]:
    """Return the flags that lie on a prerequisite cycle (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: set[str] = set()
    counter = 0
    for root in flags:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, _parents(flags, root)))
        while work:
            node, parents = work[-1]
            advanced = False
            for parent in parents:
                if parent not in index:
                    index[parent] = low[parent] = counter
                    counter += 1
                    stack.append(parent)
                    on_stack.add(parent)
                    work.append((parent, _parents(flags, parent)))
                    advanced = True
                    break
                if parent in on_stack:
                    low[node] = min(low[node], index[parent])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                self_loop = any(p.flag == node for p in flags[node].prerequisites)
                if len(component) > 1 or self_loop:
                    result.update(component)
    return result


def _parents(flags: Mapping[str, Flag], key: str) -> Iterator[str]:
    return (p.flag for p in flags[key].prerequisites if p.flag in flags)
