"""Writes to rules, conditions, segments and prerequisites."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..delivery.changes import Kind
from ..errors import InUseError
from ..models import Condition, Environment, Flag, FlagState, Prerequisite, Project, Rule, Segment
from .common import announce, check_can_change, delete, save, segment_summary, targeting_of
from .flags import targeting_changed, touch_state

# attribute, operator, values, negate?, case_insensitive?, and id? (the condition it changes)
ConditionSpec = dict[str, Any]


class Unset(enum.Enum):
    """Marks an argument that was not given (where ``None`` is a meaningful value)."""

    TOKEN = enum.auto()


UNSET = Unset.TOKEN


def _conditions(specs: Iterable[ConditionSpec], **owner: Any) -> list[Condition]:
    return [
        Condition(
            order=order,
            attribute=spec["attribute"],
            operator=spec["operator"],
            # A tuple is a list; anything else (a lone string) is kept for validation to refuse,
            # rather than split into characters.
            values=_listed(spec.get("values", [])),
            negate=bool(spec.get("negate", False)),
            case_insensitive=bool(spec.get("case_insensitive", False)),
            **owner,
        )
        for order, spec in enumerate(specs)
    ]


def _listed(values: Any) -> Any:
    return list(values) if isinstance(values, list | tuple) else values


def _locked_state(state: FlagState) -> FlagState:
    return FlagState.objects.select_for_update().select_related("environment").get(pk=state.pk)


@transaction.atomic
def rule_create(
    *,
    state: FlagState,
    serve: dict[str, Any],
    conditions: Sequence[ConditionSpec] = (),
    segments: Iterable[Segment] = (),
    rollout: int | None = None,
    bucket_by: str = "targetingKey",
    description: str = "",
    order: int | None = None,
    position: int | None = None,
    actor: Any | None = None,
) -> Rule:
    """Add a targeting rule, validated by the engine.

    It goes last, unless ``order`` gives its order number as it is, or ``position`` inserts it
    at that index among the state's rules (0 = first), moving the rules from there down by one.
    """
    check_can_change(actor, state.environment)
    state = _locked_state(state)
    before = targeting_of(state)
    ordered = list(state.rules.order_by("order", "id"))
    if order is None:
        order = ordered[-1].order + 1 if ordered else 0
    rule = Rule(
        state=state,
        serve=serve,
        rollout=rollout,
        bucket_by=bucket_by,
        description=description,
        order=order,
    )
    save(rule, actor)
    rule.segments.set(list(segments))
    for condition in _conditions(conditions, rule=rule):
        save(condition, actor)
    if position is not None:
        index = max(0, min(position, len(ordered)))
        _renumber([*ordered[:index], rule, *ordered[index:]], actor)
    _changed(state, actor, before)
    return rule


@transaction.atomic
def rule_duplicate(*, rule: Rule, actor: Any | None) -> Rule:
    """Copy a rule (conditions, segments, rollout, serve) right below it."""
    state = _locked_state(rule.state)
    check_can_change(actor, state.environment)
    before = targeting_of(state)
    ordered = list(state.rules.order_by("order", "id"))
    index = next(i for i, other in enumerate(ordered) if other.pk == rule.pk)
    copy = Rule(
        state=state,
        serve=rule.serve,
        rollout=rule.rollout,
        bucket_by=rule.bucket_by,
        description=f"{rule.description} (copy)" if rule.description else "",
        order=rule.order,
    )
    save(copy, actor)
    copy.segments.set(list(rule.segments.all()))
    for condition in rule.conditions.order_by("order", "id"):
        save(
            Condition(
                rule=copy,
                order=condition.order,
                attribute=condition.attribute,
                operator=condition.operator,
                values=condition.values,
                negate=condition.negate,
                case_insensitive=condition.case_insensitive,
            ),
            actor,
        )
    _renumber([*ordered[: index + 1], copy, *ordered[index + 1 :]], actor)
    _changed(state, actor, before)
    return copy


def _renumber(rules: Sequence[Rule], actor: Any | None) -> bool:
    """Give rules the orders 0, 1, 2 ... in this sequence; whether any order changed."""
    moved = False
    for order, rule in enumerate(rules):
        if rule.order != order:
            rule.order = order
            moved = save(rule, actor, validate=False) or moved
    return moved


@transaction.atomic
def rule_update(
    *,
    rule: Rule,
    actor: Any | None,
    serve: dict[str, Any] | None = None,
    conditions: Sequence[ConditionSpec] | None = None,
    segments: Iterable[Segment] | None = None,
    rollout: int | Unset | None = UNSET,
    bucket_by: str | None = None,
    description: str | None = None,
) -> Rule:
    """Change a rule; ``conditions`` and ``segments``, when given, replace the old ones.

    Nothing is recorded, and no version moves, when everything given is what is stored.
    """
    state = _locked_state(rule.state)
    check_can_change(actor, state.environment)
    before = targeting_of(state)
    if serve is not None:
        rule.serve = serve
    if not isinstance(rollout, Unset):
        rule.rollout = rollout
    if bucket_by is not None:
        rule.bucket_by = bucket_by
    if description is not None:
        rule.description = description
    changed = save(rule, actor)
    if segments is not None:
        wanted = list(segments)
        if {segment.pk for segment in wanted} != set(rule.segments.values_list("pk", flat=True)):
            rule.segments.set(wanted)
            changed = True
    if conditions is not None:
        changed = (
            _sync_conditions(rule.conditions.order_by("order", "id"), conditions, actor, rule=rule)
            or changed
        )
    if changed:
        _changed(state, actor, before)
    return rule


def _sync_conditions(
    current: Iterable[Condition], specs: Sequence[ConditionSpec], actor: Any | None, **owner: Any
) -> bool:
    """Make an owner's conditions these, in this order; whether anything changed.

    A spec with the ``id`` of a current condition changes that condition in place (its history
    reads as a change); specs without ids replace the current conditions unless they say the same.
    """
    existing = list(current)
    by_id = {condition.pk: condition for condition in existing}
    wanted = _conditions(specs, **owner)
    if not any(spec.get("id") in by_id for spec in specs):
        if [_spec(c) for c in wanted] == [_spec(c) for c in existing]:
            return False
        for old in existing:
            delete(old, actor)
        for condition in wanted:
            save(condition, actor)
        return True
    changed = False
    kept = set()
    for spec, condition in zip(specs, wanted, strict=True):
        stored = by_id.get(spec["id"]) if "id" in spec else None
        if stored is None:
            save(condition, actor)
            changed = True
            continue
        kept.add(stored.pk)
        for name in ("order", "attribute", "operator", "values", "negate", "case_insensitive"):
            setattr(stored, name, getattr(condition, name))
        changed = save(stored, actor) or changed
    for old in existing:
        if old.pk not in kept:
            delete(old, actor)
            changed = True
    return changed


def _spec(condition: Condition) -> str:
    """A condition's meaning, to tell whether a replacement changes anything."""
    return json.dumps(
        [
            condition.attribute,
            condition.operator,
            condition.values,
            condition.negate,
            condition.case_insensitive,
        ],
        sort_keys=True,
    )


@transaction.atomic
def rule_delete(*, rule: Rule, actor: Any | None) -> None:
    """Remove a rule."""
    state = _locked_state(rule.state)
    check_can_change(actor, state.environment)
    before = targeting_of(state)
    delete(rule, actor)
    _changed(state, actor, before)


@transaction.atomic
def rules_reorder(*, state: FlagState, rule_ids: Sequence[int], actor: Any | None) -> None:
    """Put a state's rules in the given order (every rule id exactly once)."""
    state = _locked_state(state)
    check_can_change(actor, state.environment)
    rules = {rule.pk: rule for rule in state.rules.all()}
    if sorted(rules) != sorted(rule_ids):
        raise ValidationError("Give every rule of this flag exactly once.", code="invalid_order")
    before = targeting_of(state)
    if _renumber([rules[rule_id] for rule_id in rule_ids], actor):
        _changed(state, actor, before)


@transaction.atomic
def condition_save(*, condition: Condition, actor: Any | None) -> Condition:
    """Save one condition of a rule or a segment (as the admin's inline forms do)."""
    affected = _affected_states(condition)
    for state in affected:
        check_can_change(actor, state.environment)
    before = _before(condition, affected)
    if save(condition, actor):
        _condition_changed(condition, affected, actor, before)
    return condition


@transaction.atomic
def condition_delete(*, condition: Condition, actor: Any | None) -> None:
    """Remove one condition of a rule or a segment."""
    affected = _affected_states(condition)
    for state in affected:
        check_can_change(actor, state.environment)
    before = _before(condition, affected)
    delete(condition, actor)
    _condition_changed(condition, affected, actor, before)


def _before(condition: Condition, affected: Sequence[FlagState]) -> Any:
    """What a condition's change changes, before it: its rule's targeting, or its segment."""
    if condition.segment_id is None:
        return targeting_of(affected[0]) if affected else None
    segment = Segment.objects.get(pk=condition.segment_id)
    return segment_summary(segment.project_id, segment.key)


def _condition_changed(
    condition: Condition, affected: Sequence[FlagState], actor: Any | None, before: Any
) -> None:
    if condition.segment_id is None:
        for state in affected:
            _changed(state, actor, before)
    else:
        segment = Segment.objects.get(pk=condition.segment_id)
        _segments_changed(segment, affected, actor, before)


def _affected_states(condition: Condition) -> list[FlagState]:
    if condition.rule_id is not None:
        return [FlagState.objects.select_related("environment").get(rules=condition.rule_id)]
    return segment_states(condition.segment_id)


def segment_states(segment_id: int | None) -> list[FlagState]:
    """States whose rules use a segment: changing the segment changes what they serve."""
    if segment_id is None:
        return []
    return list(
        FlagState.objects.filter(rules__segments=segment_id)
        .select_related("environment")
        .distinct()
    )


def _changed(state: FlagState, actor: Any | None, before: Any) -> None:
    """A state's targeting changed: its version moves, the engine checks it, the event goes."""
    touch_state(state)
    targeting_changed(state, actor, before)


def _segments_changed(
    segment: Segment, states: Sequence[FlagState], actor: Any | None, before: Any
) -> None:
    """A segment was created, changed or removed: every environment of its project moves.

    Each environment's document lists all of the project's segments (used there or not), and a
    version stands for exactly one document. One ``segment.changed`` event names the flags
    whose rules use it.
    """
    for state in states:
        touch_state(state)
    announce(
        Kind.SEGMENT_CHANGED,
        actor=actor,
        project_id=segment.project_id,
        rulesets=Environment.objects.filter(project_id=segment.project_id).values_list(
            "pk", flat=True
        ),
        flags=sorted({state.flag.key for state in states}),
        before=before,
        after=segment_summary(segment.project_id, segment.key),
    )


@transaction.atomic
def segment_create(
    *,
    project: Project,
    key: str,
    name: str,
    description: str = "",
    conditions: Sequence[ConditionSpec] = (),
    actor: Any | None = None,
) -> Segment:
    """Create a segment with its conditions."""
    segment = Segment(project=project, key=key, name=name, description=description)
    save(segment, actor)
    for condition in _conditions(conditions, segment=segment):
        save(condition, actor)
    _segments_changed(segment, [], actor, None)
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    actor: Any | None,
    name: str | None = None,
    description: str | None = None,
    conditions: Sequence[ConditionSpec] | None = None,
) -> Segment:
    """Rename a segment or replace its conditions (every flag using it is re-validated)."""
    affected = segment_states(segment.pk)
    for state in affected:
        check_can_change(actor, state.environment)
    before = segment_summary(segment.project_id, segment.key)
    if name is not None:
        segment.name = name
    if description is not None:
        segment.description = description
    save(segment, actor)
    if conditions is not None:
        current = segment.conditions.order_by("order", "id")
        if _sync_conditions(current, conditions, actor, segment=segment):
            _segments_changed(segment, affected, actor, before)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor: Any | None) -> None:
    """Remove a segment no rule uses (a silent removal would widen those rules to everyone)."""
    users = Rule.objects.filter(segments=segment).select_related(
        "state__flag", "state__environment"
    )
    if users.exists():
        places = ", ".join(sorted({str(rule.state) for rule in users}))
        raise InUseError(f"Segment {segment.key} is used by {places}; remove it there first.")
    before = segment_summary(segment.project_id, segment.key)
    delete(segment, actor)
    _segments_changed(segment, [], actor, before)


@transaction.atomic
def prerequisite_add(
    *, state: FlagState, parent: Flag, variants: Sequence[str] = (), actor: Any | None
) -> Prerequisite:
    """Make ``parent`` a prerequisite of a state (cycles and depth are checked by the engine)."""
    state = _locked_state(state)
    check_can_change(actor, state.environment)
    before = targeting_of(state)
    if parent.project_id != state.flag.project_id:
        raise ValidationError({"flag": "A prerequisite must be a flag of the same project."})
    last = state.prerequisites.order_by("-order").values_list("order", flat=True).first()
    prerequisite = Prerequisite(
        state=state, flag=parent, variants=list(variants), order=0 if last is None else last + 1
    )
    save(prerequisite, actor)
    try:
        touch_state(state)
    except ValidationError as error:
        # The new prerequisite is what the engine refused (a cycle, a chain too deep, a variant
        # the parent lacks): say so next to the field a person filled in.
        field = "variants" if getattr(error, "code", None) == "invalid_variant" else "flag"
        raise ValidationError({field: error}) from None
    targeting_changed(state, actor, before)
    return prerequisite


@transaction.atomic
def prerequisite_remove(*, prerequisite: Prerequisite, actor: Any | None) -> None:
    """Remove a prerequisite."""
    state = _locked_state(prerequisite.state)
    check_can_change(actor, state.environment)
    before = targeting_of(state)
    delete(prerequisite, actor)
    _changed(state, actor, before)
