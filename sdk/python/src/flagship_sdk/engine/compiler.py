"""Validating and compiling a ruleset document (docs/ruleset-format.md sections 1-3 and 6).

Every check names the member at fault with a path such as
``flags["new-checkout"].rules[0].conditions[1].values[0]`` and a stable error code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final, cast

from .conditions import Condition, compile_condition
from .errors import RulesetError, key_path
from .fusion import fuse
from .model import DefaultServe, Flag, Prerequisite, Rule, Split
from .prerequisites import link_prerequisites
from .results import EvaluationResult, Reason

FORMAT: Final = 1
TOTAL_WEIGHT: Final = 100_000
KINDS: Final = ("boolean", "string", "number", "json")
DEFAULT_BUCKET_BY: Final = ("targetingKey",)


def _invalid(path: str, message: str) -> RulesetError:
    return RulesetError("invalid_document", path, message)


def _member(obj: Mapping[str, Any], name: str, path: str, kind: type | tuple[type, ...]) -> Any:
    where = f"{path}.{name}" if path else name
    if name not in obj:
        raise _invalid(where, f"{name!r} is required")
    value = obj[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise _invalid(where, f"{name!r} must be {_describe(kind)}")
    return value


def _optional(
    obj: Mapping[str, Any], name: str, path: str, kind: type | tuple[type, ...], default: Any
) -> Any:
    if obj.get(name) is None:
        return default
    return _member(obj, name, path, kind)


def _describe(kind: type | tuple[type, ...]) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true or false",
        int: "an integer",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(path, "must be an object")
    return value


def _key(value: Any, path: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(path, f"{what} must be a non-empty string")
    return value


def _bucket_by(value: Any, path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise _invalid(path, "bucket_by must be an attribute name or a non-empty list of them")


@dataclass(frozen=True, slots=True)
class CompiledDocument:
    """A validated, compiled ruleset document."""

    flags: dict[str, Flag]
    version: int
    project: str | None
    environment: str | None


def compile_document(document: Any, *, strict: bool) -> CompiledDocument:
    """Validate and compile a whole ruleset document (see ``Ruleset.from_dict``)."""
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
    link_prerequisites(flags, strict=strict)
    return CompiledDocument(flags, version, project, environment)


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


class FlagCompiler:
    """Compiles the flags of one document against its segments."""

    def __init__(self, segments: Mapping[str, tuple[Condition, ...]]) -> None:
        self.segments = segments
        self.unknown_segments: list[str] = []  # paths of references to missing segments

    def flag(self, key: str, doc: Any, path: str) -> Flag:
        """Compile one flag document."""
        obj = _object(doc, path)
        kind = _member(obj, "kind", path, str)
        if kind not in KINDS:
            raise _invalid(f"{path}.kind", f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        variants = self._variants(kind, _member(obj, "variants", path, dict), f"{path}.variants")
        enabled = _member(obj, "enabled", path, bool)
        off_variant = _member(obj, "off_variant", path, str)
        self._variant_ref(off_variant, variants, f"{path}.off_variant")
        salt = _optional(obj, "salt", path, str, key)
        client_visible = _optional(obj, "client_visible", path, bool, False)

        def result(variant: str, reason: str, rule: str | None = None) -> EvaluationResult:
            return EvaluationResult(key, variants[variant], variant, reason, rule)

        rules = self._rules(_optional(obj, "rules", path, list, []), variants, result, path)
        if "default_serve" not in obj:
            raise _invalid(f"{path}.default_serve", "'default_serve' is required")
        default = self._default(obj["default_serve"], variants, result, bool(rules), path)
        prerequisites = self._prerequisites(
            _optional(obj, "prerequisites", path, list, []),
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
            _key(name, where, "a variant key")
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
        self, docs: list[Any], variants: Mapping[str, Any], result: Any, path: str
    ) -> list[Rule | None]:
        seen: set[str] = set()
        rules: list[Rule | None] = []
        for index, doc in enumerate(docs):
            where = f"{path}.rules[{index}]"
            obj = _object(doc, where)
            rule_id = _key(obj.get("id"), f"{where}.id", "a rule id")
            if rule_id in seen:
                raise RulesetError(
                    "duplicate_rule_id", f"{where}.id", f"rule id {rule_id!r} is used twice"
                )
            seen.add(rule_id)
            rules.append(self._rule(rule_id, obj, variants, result, where))
        return rules

    def _rule(
        self,
        rule_id: str,
        obj: Mapping[str, Any],
        variants: Mapping[str, Any],
        result: Any,
        path: str,
    ) -> Rule | None:
        conditions = list(self.conditions(_optional(obj, "conditions", path, list, []), path))
        dead = False
        for index, name in enumerate(_optional(obj, "segments", path, list, [])):
            where = f"{path}.segments[{index}]"
            _key(name, where, "a segment reference")
            if name in self.segments:
                conditions.extend(self.segments[name])
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
        bucket_by = _bucket_by(obj.get("bucket_by"), f"{path}.bucket_by", DEFAULT_BUCKET_BY)
        if "serve" not in obj:
            raise _invalid(f"{path}.serve", "'serve' is required")
        single, split = self._serve(
            doc=obj["serve"],
            variants=variants,
            result=result,
            reason=Reason.TARGETING_MATCH,
            rule_id=rule_id,
            bucket_by=bucket_by,
            path=f"{path}.serve",
        )
        if dead or rollout == 0:
            return None
        return Rule(rule_id, fuse(conditions), rollout, bucket_by, single, split)

    def _default(
        self, doc: Any, variants: Mapping[str, Any], result: Any, has_rules: bool, path: str
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
        )
        missing = None
        if split is not None:
            missing = result(split.results[0].variant, Reason.DEFAULT)
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
    ) -> tuple[EvaluationResult | None, Split | None]:
        obj = _object(doc, path)
        if ("variant" in obj) == ("split" in obj):
            raise _invalid(path, "a serve has exactly one of 'variant' and 'split'")
        if "variant" in obj:
            variant = self._variant_ref(obj["variant"], variants, f"{path}.variant")
            return result(variant, reason, rule_id), None
        entries = _member(obj, "split", path, list)
        names: list[str] = []
        weights: list[int] = []
        for index, entry in enumerate(entries):
            where = f"{path}.split[{index}]"
            item = _object(entry, where)
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
        split_by = _bucket_by(obj.get("bucket_by"), f"{path}.bucket_by", bucket_by)
        results = tuple(result(name, Reason.SPLIT, rule_id) for name in names)
        return None, Split(split_by, tuple(accumulate(weights)), results)

    def conditions(self, docs: list[Any], path: str) -> tuple[Condition, ...]:
        """Compile a list of condition documents found at ``path``."""
        predicates = []
        for index, doc in enumerate(docs):
            where = f"{path}.conditions[{index}]"
            obj = _object(doc, where)
            operator = _member(obj, "operator", where, str)
            # Only the presence operators may leave out their values.
            if operator in ("exists", "not_exists"):
                values = _optional(obj, "values", where, list, [])
            else:
                values = _member(obj, "values", where, list)
            predicates.append(
                compile_condition(
                    attribute=_key(obj.get("attribute"), f"{where}.attribute", "an attribute"),
                    operator=operator,
                    values=cast(Sequence[Any], values),
                    negate=_optional(obj, "negate", where, bool, False),
                    case_insensitive=_optional(obj, "case_insensitive", where, bool, False),
                    path=where,
                )
            )
        return tuple(predicates)

    def _prerequisites(
        self, docs: list[Any], key: str, off_value: Any, off_variant: str, path: str
    ) -> list[Prerequisite]:
        prerequisites = []
        for index, doc in enumerate(docs):
            where = f"{path}.prerequisites[{index}]"
            obj = _object(doc, where)
            parent = _key(obj.get("flag"), f"{where}.flag", "a prerequisite flag")
            listed = _optional(obj, "variants", where, list, [])
            for position, name in enumerate(listed):
                _key(name, f"{where}.variants[{position}]", "a variant")
            failed = EvaluationResult(
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
