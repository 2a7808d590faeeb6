"""Putting a flag state back as it was (``flags.history.as_of``): one change, one version.

Rules that still exist are changed in place (their conditions too, by id), rules deleted since are
created again, rules added since are removed; prerequisites likewise. Everything is validated by
the engine before the transaction commits, and recorded with the actor (and the reason given
around the call, ``flags.history.recording.reason``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..formats import same_json
from ..history.as_of import RuleConfig, StateConfig
from ..models import Flag, FlagState, Prerequisite, Rule, Segment, Variant
from .common import check_can_change, delete, save, targeting_of, validate_states
from .flags import flag_state_lock, targeting_changed
from .targeting import _conditions, _renumber, _sync_conditions


@transaction.atomic
def flag_state_restore(
    *,
    state: FlagState,
    config: StateConfig,
    actor: Any | None,
    expected_version: int | None = None,
) -> FlagState:
    """Make ``state`` what ``config`` describes, in one transaction and one version bump.

    Refused (``ValidationError``, nothing written) when something it names is gone: a variant, a
    segment, or a prerequisite's flag.
    """
    check_can_change(actor, state.environment)
    locked = flag_state_lock(state=state, expected_version=expected_version)
    _check_references(locked, config)
    before = targeting_of(locked)
    changed = False
    if (
        locked.enabled != config.enabled
        or locked.off_variant_id != config.off_variant_id
        or not same_json(locked.default_serve, config.default_serve)
    ):
        locked.enabled = config.enabled
        locked.off_variant_id = config.off_variant_id
        locked.default_serve = config.default_serve
        changed = save(locked, actor)
    changed = _restore_rules(locked, config.rules, actor) or changed
    changed = _restore_prerequisites(locked, config, actor) or changed
    if changed:
        locked.version += 1
        FlagState.objects.filter(pk=locked.pk).update(version=locked.version)
        validate_states([locked])
        targeting_changed(locked, actor, before)
    return locked


def _check_references(state: FlagState, config: StateConfig) -> None:
    variants = set(Variant.objects.filter(flag_id=state.flag_id).values_list("pk", flat=True))
    if config.off_variant_id not in variants:
        raise ValidationError("The off variant it had has been removed since.", code="gone")
    wanted = {segment for rule in config.rules for segment in rule.segment_ids}
    found = set(Segment.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if wanted - found:
        raise ValidationError("A segment its rules used has been deleted since.", code="gone")
    parents = {parent for parent, _ in config.prerequisites}
    live = set(Flag.objects.filter(pk__in=parents, archived=False).values_list("pk", flat=True))
    if parents - live:
        raise ValidationError("A flag it required has been archived or deleted since.", code="gone")


def _restore_rules(state: FlagState, rules: tuple[RuleConfig, ...], actor: Any | None) -> bool:
    current = {rule.pk: rule for rule in state.rules.all()}
    kept: list[Rule] = []
    changed = False
    for config in rules:
        rule = current.pop(config.id, None) if config.id is not None else None
        if rule is None:
            rule = Rule(state=state, order=len(kept))
        rule.description = config.description
        rule.rollout = config.rollout
        rule.bucket_by = config.bucket_by
        rule.serve = config.serve
        created = rule.pk is None
        changed = save(rule, actor) or changed
        segments = set(config.segment_ids)
        if set(rule.segments.values_list("pk", flat=True)) != segments:
            rule.segments.set(list(Segment.objects.filter(pk__in=segments)))
            changed = True
        specs = [condition.spec() for condition in config.conditions]
        if created:
            for condition in _conditions(specs, rule=rule):
                save(condition, actor)
        else:
            existing = rule.conditions.order_by("order", "id")
            changed = _sync_conditions(existing, specs, actor, rule=rule) or changed
        kept.append(rule)
    for rule in current.values():
        delete(rule, actor)
        changed = True
    return _renumber(kept, actor) or changed


def _restore_prerequisites(state: FlagState, config: StateConfig, actor: Any | None) -> bool:
    wanted = dict(config.prerequisites)
    changed = False
    for prerequisite in list(state.prerequisites.all()):
        variants = wanted.pop(prerequisite.flag_id, None)
        if variants is None:
            delete(prerequisite, actor)
            changed = True
        elif list(variants) != list(prerequisite.variants):
            prerequisite.variants = list(variants)
            changed = save(prerequisite, actor) or changed
    order = state.prerequisites.count()
    for parent, variants in wanted.items():
        save(
            Prerequisite(state=state, flag_id=parent, variants=list(variants), order=order),
            actor,
        )
        order += 1
        changed = True
    return changed
