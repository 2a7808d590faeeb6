"""Validating and compiling a ruleset document (docs/ruleset-format.md sections 1-3, 6 and 7).

Every check names the member at fault with a path such as
``flags["new-checkout"].rules[0].conditions[1].values[0]`` and a stable error code. In lenient mode
a condition whose operator or values this engine cannot use is not an error: it is recorded as a
problem and its rule never matches; members the engine does not know are recorded and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

from .conditions import Condition
from .errors import RulesetError, RulesetProblem, key_path
from .fusion import fuse
from .leniency import FORMAT, LenientReader
from .model import DefaultServe, Flag, Prerequisite, Rule, Split
from .prerequisites import link_prerequisites
from .reading import as_object, attribute_list, invalid, non_empty_key, optional, required
from .results import EvaluationResult, Reason

TOTAL_WEIGHT: Final = 100_000
KINDS: Final = ("boolean", "string", "number", "json")
DEFAULT_BUCKET_BY: Final = ("targetingKey",)

# A segment's compiled conditions, and the problem that makes it never match (or None).
Segment = tuple[tuple[Condition, ...], RulesetProblem | None]


@dataclass(frozen=True, slots=True)
class CompiledDocument:
    """A validated, compiled ruleset document."""

    flags: dict[str, Flag]
    version: int
    project: str | None
    environment: str | None
    problems: tuple[RulesetProblem, ...]


def compile_document(
    document: Any, *, strict: bool, result_type: type[EvaluationResult] = EvaluationResult
) -> CompiledDocument:
    """Validate and compile a whole ruleset document (see ``Ruleset.from_dict``)."""
    doc = as_object(document, "")
    version_format = doc.get("format")
    if version_format != FORMAT or isinstance(version_format, bool):
        raise RulesetError(
            "unsupported_format",
            "format",
            f"this engine reads ruleset format {FORMAT}, not {version_format!r}",
        )
    compiler = FlagCompiler(strict=strict, result_type=result_type)
    compiler.format_minor(optional(doc, "format_minor", "", int, 0))
    compiler.members(doc, "document", "", None)
    version = required(doc, "version", "", int)
    if version < 0:
        raise invalid("version", "'version' must be 0 or more")
    project = optional(doc, "project", "", str, None)
    environment = optional(doc, "environment", "", str, None)
    compiler.compile_segments(optional(doc, "segments", "", dict, {}))
    flags: dict[str, Flag] = {}
    for key, flag_doc in required(doc, "flags", "", dict).items():
        path = key_path("flags", key)
        if not isinstance(key, str) or not key:
            raise invalid(path, "a flag key must be a non-empty string")
        flags[key] = compiler.flag(key, flag_doc, path)
    if strict and compiler.unknown_segments:
        where = compiler.unknown_segments[0]
        raise RulesetError("unknown_segment", where, "this segment does not exist")
    link_prerequisites(flags, strict=strict)
    return CompiledDocument(flags, version, project, environment, tuple(compiler.problems))


class FlagCompiler(LenientReader):
    """Compiles the segments and flags of one document, recording the problems it reads past."""

    def __init__(
        self, *, strict: bool, result_type: type[EvaluationResult] = EvaluationResult
    ) -> None:
        super().__init__(strict=strict)
        self.result_type = result_type  # the class of every result built here
        self.segments: dict[str, Segment] = {}
        self.unknown_segments: list[str] = []  # paths of references to missing segments

    def compile_segments(self, docs: Mapping[str, Any]) -> None:
        """Compile the document's segments, for the rules that reference them."""
        for key, doc in docs.items():
            path = key_path("segments", key)
            if not isinstance(key, str) or not key:
                raise invalid(path, "a segment key must be a non-empty string")
            obj = as_object(doc, path)
            self.members(obj, "segment", path, None)
            conditions = optional(obj, "conditions", path, list, [])
            self.segments[key] = self.conditions(conditions, path, None)

    def flag(self, key: str, doc: Any, path: str) -> Flag:
        """Compile one flag document."""
        obj = as_object(doc, path)
        self.members(obj, "flag", path, key)
        kind = required(obj, "kind", path, str)
        if kind not in KINDS:
            raise invalid(f"{path}.kind", f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        variants = self._variants(kind, required(obj, "variants", path, dict), f"{path}.variants")
        enabled = required(obj, "enabled", path, bool)
        off_variant = required(obj, "off_variant", path, str)
        self._variant_ref(off_variant, variants, f"{path}.off_variant")
        salt = optional(obj, "salt", path, str, key)
        client_visible = optional(obj, "client_visible", path, bool, False)
        result_type = self.result_type

        def result(
            variant: str,
            reason: str,
            rule: str | None = None,
            problem: RulesetProblem | None = None,
        ) -> EvaluationResult:
            value = variants[variant]
            return result_type(key, value, variant, reason, rule, None, None, problem)

        rules, passed = self._rules(
            optional(obj, "rules", path, list, []), variants, result, path, key
        )
        if "default_serve" not in obj:
            raise invalid(f"{path}.default_serve", "'default_serve' is required")
        default = self._default(
            doc=obj["default_serve"],
            variants=variants,
            result=result,
            has_rules=bool(rules),
            path=path,
            key=key,
            passed=passed,
        )
        prerequisites = self._prerequisites(
            optional(obj, "prerequisites", path, list, []),
            key,
            variants[off_variant],
            off_variant,
            path,
        )
        static = None
        if not enabled:
            static = result(off_variant, Reason.DISABLED)
        elif not prerequisites and not rules and default.result is not None:
            static = default.result
        return Flag(
            key=key,
            kind=kind,
            variants=dict(variants),
            off_variant=off_variant,
            client_visible=client_visible,
            salt=salt,
            prefix=f"{salt}:",
            static=static,
            prerequisites=tuple(prerequisites),
            rules=tuple(rule for rule in rules if rule is not None),
            default=default,
        )

    def _variants(self, kind: str, doc: Mapping[str, Any], path: str) -> dict[str, Any]:
        if not doc:
            raise RulesetError("invalid_variant", path, "a flag needs at least one variant")
        for name, value in doc.items():
            where = key_path(path, name)
            non_empty_key(name, where, "a variant key")
            if not is_value_of_kind(kind, value):
                raise RulesetError(
                    "invalid_variant", where, f"{value!r} is not a value of a {kind} flag"
                )
        if kind == "boolean" and (doc.keys() != {"on", "off"} or doc["on"] is not True):
            raise RulesetError(
                "invalid_variant", path, 'a boolean flag has exactly {"on": true, "off": false}'
            )
        return dict(doc)

    @staticmethod
    def _variant_ref(name: Any, variants: Mapping[str, Any], path: str) -> str:
        if not isinstance(name, str) or name not in variants:
            raise RulesetError("invalid_variant", path, f"{name!r} is not a variant of this flag")
        return name

    def _rules(
        self, docs: list[Any], variants: Mapping[str, Any], result: Any, path: str, key: str
    ) -> tuple[list[Rule | None], RulesetProblem | None]:
        """Compile the rules; also return the problem of the first rule that can never match.

        Every result served after that rule carries its problem: evaluation passed over it.
        """
        seen: set[str] = set()
        rules: list[Rule | None] = []
        passed: RulesetProblem | None = None
        for index, doc in enumerate(docs):
            where = f"{path}.rules[{index}]"
            obj = as_object(doc, where)
            rule_id = non_empty_key(obj.get("id"), f"{where}.id", "a rule id")
            if rule_id in seen:
                raise RulesetError(
                    "duplicate_rule_id", f"{where}.id", f"rule id {rule_id!r} is used twice"
                )
            seen.add(rule_id)
            rule, unusable = self._rule(
                rule_id=rule_id,
                obj=obj,
                variants=variants,
                result=result,
                path=where,
                key=key,
                passed=passed,
            )
            rules.append(rule)
            passed = passed or unusable
        return rules, passed

    def _rule(
        self,
        *,
        rule_id: str,
        obj: Mapping[str, Any],
        variants: Mapping[str, Any],
        result: Any,
        path: str,
        key: str,
        passed: RulesetProblem | None,
    ) -> tuple[Rule | None, RulesetProblem | None]:
        """Compile one rule; ``None`` when it never matches, with the problem that disables it."""
        self.members(obj, "rule", path, key)
        own, unusable = self.conditions(optional(obj, "conditions", path, list, []), path, key)
        conditions = list(own)
        dead = False
        for index, name in enumerate(optional(obj, "segments", path, list, [])):
            where = f"{path}.segments[{index}]"
            non_empty_key(name, where, "a segment reference")
            if name in self.segments:
                segment_conditions, segment_problem = self.segments[name]
                conditions.extend(segment_conditions)
                # A segment with a condition this engine cannot use never matches.
                unusable = unusable or segment_problem
            else:
                self.unknown_segments.append(where)
                dead = True  # an unknown segment never matches, so neither does the rule
        rollout = obj.get("rollout")
        if rollout is not None and (
            not isinstance(rollout, int)
            or isinstance(rollout, bool)
            or not 0 <= rollout <= TOTAL_WEIGHT
        ):
            raise RulesetError(
                "invalid_rollout",
                f"{path}.rollout",
                f"rollout must be an integer from 0 to {TOTAL_WEIGHT} (thousandths of a percent)",
            )
        bucket_by = attribute_list(obj.get("bucket_by"), f"{path}.bucket_by", DEFAULT_BUCKET_BY)
        if "serve" not in obj:
            raise invalid(f"{path}.serve", "'serve' is required")
        single, split = self._serve(
            doc=obj["serve"],
            variants=variants,
            result=result,
            reason=Reason.TARGETING_MATCH,
            rule_id=rule_id,
            bucket_by=bucket_by,
            path=f"{path}.serve",
            flag=key,
            problem=passed,
        )
        # An unusable condition is false whatever its negate, so the rule never matches: it is
        # left out like a rule naming an unknown segment.
        if dead or unusable is not None or rollout == 0:
            return None, unusable
        return Rule(rule_id, fuse(conditions), rollout, bucket_by, single, split), None

    def _default(
        self,
        *,
        doc: Any,
        variants: Mapping[str, Any],
        result: Any,
        has_rules: bool,
        path: str,
        key: str,
        passed: RulesetProblem | None,
    ) -> DefaultServe:
        reason = Reason.DEFAULT if has_rules else Reason.STATIC
        single, split = self._serve(
            doc=doc,
            variants=variants,
            result=result,
            reason=reason,
            rule_id=None,
            bucket_by=DEFAULT_BUCKET_BY,
            path=f"{path}.default_serve",
            flag=key,
            problem=passed,
        )
        missing = None
        if split is not None:
            missing = result(split.results[0].variant, Reason.DEFAULT, None, passed)
        return DefaultServe(single, split, missing)

    def _serve(
        self,
        *,
        doc: Any,
        variants: Mapping[str, Any],
        result: Any,
        reason: str,
        rule_id: str | None,
        bucket_by: tuple[str, ...],
        path: str,
        flag: str,
        problem: RulesetProblem | None,
    ) -> tuple[EvaluationResult | None, Split | None]:
        obj = as_object(doc, path)
        if ("variant" in obj) == ("split" in obj):
            raise invalid(path, "a serve has exactly one of 'variant' and 'split'")
        if "variant" in obj:
            self.members(obj, "variantServe", path, flag)
            variant = self._variant_ref(obj["variant"], variants, f"{path}.variant")
            return result(variant, reason, rule_id, problem), None
        self.members(obj, "splitServe", path, flag)
        entries = required(obj, "split", path, list)
        names: list[str] = []
        weights: list[int] = []
        for index, entry in enumerate(entries):
            where = f"{path}.split[{index}]"
            item = as_object(entry, where)
            self.members(item, "splitEntry", where, flag)
            name = self._variant_ref(item.get("variant"), variants, f"{where}.variant")
            weight = item.get("weight")
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                raise RulesetError(
                    "invalid_split", f"{where}.weight", "a weight is an integer of at least 0"
                )
            if name in names:
                raise RulesetError(
                    "invalid_split", f"{where}.variant", f"variant {name!r} is listed twice"
                )
            names.append(name)
            weights.append(weight)
        if sum(weights) != TOTAL_WEIGHT:
            raise RulesetError(
                "invalid_split",
                f"{path}.split",
                f"weights must add up to {TOTAL_WEIGHT} (100 %), not {sum(weights)}",
            )
        split_by = attribute_list(obj.get("bucket_by"), f"{path}.bucket_by", bucket_by)
        results = tuple(result(name, Reason.SPLIT, rule_id, problem) for name in names)
        return None, Split(split_by, tuple(accumulate(weights)), results)

    def _prerequisites(
        self, docs: list[Any], key: str, off_value: Any, off_variant: str, path: str
    ) -> list[Prerequisite]:
        prerequisites = []
        for index, doc in enumerate(docs):
            where = f"{path}.prerequisites[{index}]"
            obj = as_object(doc, where)
            self.members(obj, "prerequisite", where, key)
            parent = non_empty_key(obj.get("flag"), f"{where}.flag", "a prerequisite flag")
            listed = optional(obj, "variants", where, list, [])
            for position, name in enumerate(listed):
                non_empty_key(name, f"{where}.variants[{position}]", "a variant")
            failed = self.result_type(
                key, off_value, off_variant, Reason.PREREQUISITE_FAILED, None, parent
            )
            prerequisites.append(
                Prerequisite(parent, tuple(listed) or None, failed, broken=False, path=where)
            )
        return prerequisites


def is_value_of_kind(kind: str, value: Any) -> bool:
    """Whether ``value`` may be a variant value of a flag of ``kind`` (format section 2)."""
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return not isinstance(value, float) or math.isfinite(value)
    return _is_json(value)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False
