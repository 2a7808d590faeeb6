"""Building ruleset documents from the database: the one place ORM objects meet the engine's format.

``environment_ruleset`` builds one environment's whole document (docs/ruleset-format.md) in a fixed
number of queries, whatever the number of flags. ``flag_document`` and ``rule_document`` are the
per-object pieces, shared with validation (services) so that what is validated is exactly what SDKs
will receive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch

from flagship_sdk.engine import FORMAT

from .models import Condition, Environment, Flag, FlagState, Prerequisite, Rule, Segment, Variant

DEFAULT_BUCKET_BY = "targetingKey"


def conditions_document(conditions: Iterable[Condition]) -> list[dict[str, object]]:
    """Conditions in their stored order."""
    return [condition.as_document() for condition in conditions]


def rule_document(
    rule: Rule, *, segment_keys: list[str], conditions: Iterable[Condition]
) -> dict[str, Any]:
    """One rule; members holding their default are left out (format section 1, "Size")."""
    document: dict[str, Any] = {"id": str(rule.pk) if rule.pk else "new"}
    listed = conditions_document(conditions)
    if listed:
        document["conditions"] = listed
    if segment_keys:
        document["segments"] = segment_keys
    if rule.rollout is not None:
        document["rollout"] = rule.rollout
    attributes = rule.bucket_attributes()
    if attributes and attributes != [DEFAULT_BUCKET_BY]:
        document["bucket_by"] = attributes[0] if len(attributes) == 1 else attributes
    document["serve"] = rule.serve
    return document


def flag_document(
    flag: Flag,
    state: FlagState,
    *,
    variants: Iterable[Variant],
    off_variant_key: str,
    rules: Iterable[dict[str, Any]],
    prerequisites: Iterable[Prerequisite],
) -> dict[str, Any]:
    """One flag in one environment."""
    document: dict[str, Any] = {
        "kind": flag.kind,
        "variants": {variant.key: variant.value for variant in variants},
        "enabled": state.enabled,
        "off_variant": off_variant_key,
    }
    listed_rules = list(rules)
    if listed_rules:
        document["rules"] = listed_rules
    document["default_serve"] = state.default_serve
    listed_prerequisites = [
        {
            "flag": prerequisite.flag.key,
            **({"variants": prerequisite.variants} if prerequisite.variants else {}),
        }
        for prerequisite in prerequisites
    ]
    if listed_prerequisites:
        document["prerequisites"] = listed_prerequisites
    if flag.salt and flag.salt != flag.key:
        document["salt"] = flag.salt
    if flag.client_visible:
        document["client_visible"] = True
    return document


def _rules_prefetch() -> Any:
    return Prefetch(
        "rules",
        queryset=Rule.objects.order_by("order", "id").prefetch_related(
            Prefetch("conditions", queryset=Condition.objects.order_by("order", "id")),
            Prefetch("segments", queryset=Segment.objects.only("id", "key")),
        ),
    )


def states_for_ruleset(environment: Environment) -> Any:
    """The environment's live flag states with everything a document needs, prefetched."""
    return (
        FlagState.objects.filter(environment=environment, flag__archived=False)
        .select_related("flag", "off_variant")
        .prefetch_related(
            Prefetch("flag__variants", queryset=Variant.objects.order_by("order", "id")),
            _rules_prefetch(),
            Prefetch(
                "prerequisites",
                queryset=Prerequisite.objects.select_related("flag").order_by("order", "id"),
            ),
        )
        .order_by("flag__key")
    )


def state_document(state: FlagState) -> dict[str, Any]:
    """The document of a state loaded by ``states_for_ruleset`` (or with the same prefetches)."""
    rules = [
        rule_document(
            rule,
            segment_keys=sorted(segment.key for segment in rule.segments.all()),
            conditions=rule.conditions.all(),
        )
        for rule in state.rules.all()
    ]
    return flag_document(
        state.flag,
        state,
        variants=state.flag.variants.all(),
        off_variant_key=state.off_variant.key,
        rules=rules,
        prerequisites=state.prerequisites.all(),
    )


def segments_document(project_id: int, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The project's segments (or only ``keys``) as the format writes them."""
    segments = Segment.objects.filter(project_id=project_id).prefetch_related(
        Prefetch("conditions", queryset=Condition.objects.order_by("order", "id"))
    )
    if keys is not None:
        segments = segments.filter(key__in=list(keys))
    return {
        segment.key: {"conditions": conditions_document(segment.conditions.all())}
        for segment in segments.order_by("key")
    }


def environment_ruleset(environment: Environment) -> dict[str, Any]:
    """Build an environment's complete ruleset document (a constant number of queries)."""
    environment = Environment.objects.select_related("project").get(pk=environment.pk)
    flags = {state.flag.key: state_document(state) for state in states_for_ruleset(environment)}
    return {
        "format": FORMAT,
        "project": environment.project.key,
        "environment": environment.key,
        "version": environment.ruleset_version,
        "segments": segments_document(environment.project_id),
        "flags": flags,
    }
