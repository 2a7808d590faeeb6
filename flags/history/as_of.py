"""A flag state as it was at a moment of its history, read from the history tables alone.

Its switch, serves, rules, conditions and prerequisites (rules deleted since come back too).
``state_as_of(state, moment)`` gives a ``StateConfig``; ``current(state)`` gives the same shape
from the live tables. Both turn into the ruleset format's flag document with ``document()``
(through ``flags.documents``'s writers), which is what the revert's preview compares and what
``services.flag_state_restore`` applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps

from .. import documents
from ..models import Flag, FlagState, Prerequisite, Rule, Segment, Variant


@dataclass(frozen=True)
class ConditionConfig:
    """One condition of a rule (``id``: the condition it was, which may be gone since)."""

    id: int | None
    attribute: str
    operator: str
    values: Any
    negate: bool
    case_insensitive: bool

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ConditionConfig:
        """From a mapping with a condition's columns (a history row, or :meth:`spec`)."""
        return cls(
            values["id"],
            values["attribute"],
            values["operator"],
            values["values"],
            values["negate"],
            values["case_insensitive"],
        )

    def spec(self) -> dict[str, Any]:
        """As the services take it (``rule_update(conditions=...)``)."""
        return {
            "id": self.id,
            "attribute": self.attribute,
            "operator": self.operator,
            "values": self.values,
            "negate": self.negate,
            "case_insensitive": self.case_insensitive,
        }


@dataclass(frozen=True)
class RuleConfig:
    """One rule, in its place (``id``: the rule it was, which may have been deleted since)."""

    id: int | None
    description: str
    segment_ids: tuple[int, ...]
    rollout: int | None
    bucket_by: str
    serve: Any
    conditions: tuple[ConditionConfig, ...]


@dataclass(frozen=True)
class StateConfig:
    """Everything of a flag state that a revert puts back."""

    enabled: bool
    off_variant_id: int
    default_serve: Any
    rules: tuple[RuleConfig, ...]
    prerequisites: tuple[tuple[int, tuple[str, ...]], ...]  # (parent flag id, variants)

    def as_json(self) -> dict[str, Any]:
        """As JSON (a change request stores the configuration it proposes this way)."""
        return {
            "enabled": self.enabled,
            "off_variant_id": self.off_variant_id,
            "default_serve": self.default_serve,
            "rules": [
                {
                    "id": rule.id,
                    "description": rule.description,
                    "segment_ids": list(rule.segment_ids),
                    "rollout": rule.rollout,
                    "bucket_by": rule.bucket_by,
                    "serve": rule.serve,
                    "conditions": [condition.spec() for condition in rule.conditions],
                }
                for rule in self.rules
            ],
            "prerequisites": [[parent, list(variants)] for parent, variants in self.prerequisites],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StateConfig:
        """The configuration :meth:`as_json` wrote."""
        return cls(
            enabled=bool(data["enabled"]),
            off_variant_id=int(data["off_variant_id"]),
            default_serve=data["default_serve"],
            rules=tuple(
                RuleConfig(
                    id=rule["id"],
                    description=rule["description"],
                    segment_ids=tuple(rule["segment_ids"]),
                    rollout=rule["rollout"],
                    bucket_by=rule["bucket_by"],
                    serve=rule["serve"],
                    conditions=tuple(ConditionConfig.from_values(c) for c in rule["conditions"]),
                )
                for rule in data["rules"]
            ),
            prerequisites=tuple(
                (int(parent), tuple(variants)) for parent, variants in data["prerequisites"]
            ),
        )

    def document(self, state: FlagState) -> dict[str, Any]:
        """The ruleset format's flag document of this configuration (with today's variants)."""
        flag: Flag = state.flag
        variants = {v.pk: v for v in Variant.objects.filter(flag=flag).order_by("order", "id")}
        segment_ids = {i for rule in self.rules for i in rule.segment_ids}
        segments = dict(Segment.objects.filter(pk__in=segment_ids).values_list("pk", "key"))
        parents = dict(
            Flag.objects.filter(pk__in=[p for p, _ in self.prerequisites]).values_list("pk", "key")
        )
        rules = [
            documents.rule_values_document(
                rule.id,
                conditions=[
                    documents.condition_values_document(
                        c.attribute, c.operator, c.values, c.negate, c.case_insensitive
                    )
                    for c in rule.conditions
                ],
                segment_keys=sorted(
                    segments.get(i, f"(deleted segment {i})") for i in rule.segment_ids
                ),
                rollout=rule.rollout,
                bucket_by=documents.bucket_by_document(rule.bucket_by),
                serve=rule.serve,
            )
            for rule in self.rules
        ]
        off = variants.get(self.off_variant_id)
        off_key = off.key if off is not None else f"(deleted variant {self.off_variant_id})"
        return documents.flag_values_document(
            kind=flag.kind,
            key=flag.key,
            salt=flag.salt,
            client_visible=flag.client_visible,
            variants={variant.key: variant.value for variant in variants.values()},
            enabled=self.enabled,
            off_variant_key=off_key,
            rules=rules,
            default_serve=self.default_serve,
            prerequisites=[
                documents.prerequisite_values_document(
                    parents.get(parent, f"(deleted flag {parent})"), list(variants_)
                )
                for parent, variants_ in self.prerequisites
            ],
        )


def current(state: FlagState) -> StateConfig:
    """The state as it is now."""
    rules = (
        Rule.objects.filter(state=state)
        .order_by("order", "id")
        .prefetch_related("conditions", "segments")
    )
    return StateConfig(
        enabled=state.enabled,
        off_variant_id=state.off_variant_id,
        default_serve=state.default_serve,
        rules=tuple(
            RuleConfig(
                id=rule.pk,
                description=rule.description,
                segment_ids=tuple(sorted(segment.pk for segment in rule.segments.all())),
                rollout=rule.rollout,
                bucket_by=rule.bucket_by,
                serve=rule.serve,
                conditions=tuple(
                    ConditionConfig(
                        c.pk, c.attribute, c.operator, c.values, c.negate, c.case_insensitive
                    )
                    for c in sorted(rule.conditions.all(), key=lambda c: (c.order, c.pk))
                ),
            )
            for rule in rules
        ),
        prerequisites=tuple(
            (p.flag_id, tuple(p.variants))
            for p in Prerequisite.objects.filter(state=state).order_by("order", "id")
        ),
    )


def state_as_of(state: FlagState, moment: datetime) -> StateConfig | None:
    """The state right after ``moment`` (every row up to it included); None before it existed."""
    states = _latest(_history("flagstate").filter(id=state.pk, history_date__lte=moment))
    if not states:
        return None
    row = next(iter(states.values()))
    rules = {
        rule_id: record
        for rule_id, record in _latest(
            _history("rule").filter(state_id=state.pk, history_date__lte=moment)
        ).items()
        if record["history_type"] != "-"
    }
    segments = _rule_segments([record["history_id"] for record in rules.values()])
    conditions: dict[int, list[Mapping[str, Any]]] = {rule_id: [] for rule_id in rules}
    for record in _latest(
        _history("condition").filter(rule_id__in=list(rules), history_date__lte=moment)
    ).values():
        if record["history_type"] != "-":
            conditions[record["rule_id"]].append(record)
    prerequisites = [
        record
        for record in _latest(
            _history("prerequisite").filter(state_id=state.pk, history_date__lte=moment)
        ).values()
        if record["history_type"] != "-"
    ]
    ordered_rules = sorted(rules.values(), key=lambda record: (record["order"], record["id"]))
    return StateConfig(
        enabled=row["enabled"],
        off_variant_id=row["off_variant_id"],
        default_serve=row["default_serve"],
        rules=tuple(
            RuleConfig(
                id=record["id"],
                description=record["description"],
                segment_ids=tuple(sorted(segments.get(record["history_id"], ()))),
                rollout=record["rollout"],
                bucket_by=record["bucket_by"],
                serve=record["serve"],
                conditions=tuple(
                    ConditionConfig.from_values(c)
                    for c in sorted(conditions[record["id"]], key=lambda c: (c["order"], c["id"]))
                ),
            )
            for record in ordered_rules
        ),
        prerequisites=tuple(
            (record["flag_id"], tuple(record["variants"] or ()))
            for record in sorted(prerequisites, key=lambda r: (r["order"], r["id"]))
        ),
    )


def _history(label: str) -> Any:
    return apps.get_model("flags", f"Historical{label}")._default_manager


def _latest(rows: Any) -> dict[int, dict[str, Any]]:
    """The newest history row of each object among ``rows`` (one query)."""
    latest: dict[int, dict[str, Any]] = {}
    for record in rows.order_by("id", "history_date", "history_id").values():
        latest[record["id"]] = record
    return latest


def _rule_segments(history_ids: Iterable[int]) -> dict[int, list[int]]:
    """The segments each historical rule row had (simple-history copies them on every row)."""
    table = apps.get_model("flags", "HistoricalRule_segments")._default_manager
    found: dict[int, list[int]] = {}
    for history_id, segment_id in table.filter(history_id__in=list(history_ids)).values_list(
        "history_id", "segment_id"
    ):
        found.setdefault(history_id, []).append(segment_id)
    return found
