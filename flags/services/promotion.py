"""Promotion: one flag's targeting, or every flag's, copied from one environment to another.

What is copied is what a flag state serves: its rules (conditions, segments, rollout, serve), its
prerequisites, its default serve and its off variant; the switch only when asked
(``include_switch``), since "tested in staging" rarely means "on in production now". Variants
belong to the flag and segments to the project, so the ones the rules reference are the same in
both environments: nothing else needs copying.

A promotion is a restore (``services.flag_state_restore``) of the target state to the source's
configuration: one change and one version per environment, validated by the engine, audited with
the reason "Promoted from <source>" unless the caller gives one, and announced as one
``rules.changed`` event per flag. The target's rules are updated in place, position by position,
so SDKs see their rule ids stay where the rules stay. :func:`promotion_preview` shows the target's
document now and after, changing nothing. Into a protected environment it needs the release
permission, as any change there (change requests will take their place).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..history import as_of
from ..history.recording import current_reason, reason
from ..models import Environment, Flag, FlagState
from .common import check_can_change, targeting_of
from .restore import flag_state_restore


@dataclass(frozen=True)
class Promotion:
    """One flag's promotion: the target's flag document now, and after promoting."""

    flag: str
    before: dict[str, Any] | None
    after: dict[str, Any]

    @property
    def changes(self) -> bool:
        """Whether promoting changes what the target serves."""
        return self.before != self.after


def _states(flag: Flag, source: Environment, target: Environment) -> tuple[FlagState, FlagState]:
    if source.project_id != flag.project_id or target.project_id != flag.project_id:
        raise ValidationError(
            "Promote between environments of the flag's project.", code="invalid_environment"
        )
    if source.pk == target.pk:
        raise ValidationError("Choose two different environments.", code="same_environment")
    states = {
        state.environment_id: state
        for state in FlagState.objects.select_related("environment", "flag").filter(
            flag=flag, environment__in=[source, target]
        )
    }
    return states[source.pk], states[target.pk]


def _config(source: FlagState, target: FlagState, *, include_switch: bool) -> as_of.StateConfig:
    """The source's configuration, the target's rule ids (in place) and, unless asked, switch."""
    config = as_of.current(source)
    target_rules = list(target.rules.order_by("order", "id").values_list("pk", flat=True))
    rules = tuple(
        replace(rule, id=target_rules[index] if index < len(target_rules) else None)
        for index, rule in enumerate(config.rules)
    )
    return replace(
        config, rules=rules, enabled=config.enabled if include_switch else target.enabled
    )


def _plan(
    flag: Flag, source: Environment, target: Environment, *, include_switch: bool
) -> tuple[FlagState, as_of.StateConfig, Promotion]:
    """The target state, the configuration it would get, and the preview of that change."""
    source_state, target_state = _states(flag, source, target)
    config = _config(source_state, target_state, include_switch=include_switch)
    preview = Promotion(flag.key, targeting_of(target_state), config.document(target_state))
    return target_state, config, preview


def promotion_preview(
    *, flags: list[Flag], source: Environment, target: Environment, include_switch: bool = False
) -> list[Promotion]:
    """What promoting each flag would change in ``target`` (nothing is written)."""
    return [_plan(flag, source, target, include_switch=include_switch)[2] for flag in flags]


@transaction.atomic
def flags_promote(
    *,
    flags: list[Flag],
    source: Environment,
    target: Environment,
    actor: Any | None,
    include_switch: bool = False,
) -> list[Promotion]:
    """Promote each flag from ``source`` to ``target``, all or nothing; what changed.

    Flags whose target already serves what the source does are left alone (no event, no version).
    """
    check_can_change(actor, target)
    promoted = []
    with reason(current_reason() or f"Promoted from {source.name}"):
        for flag in flags:
            target_state, config, preview = _plan(
                flag, source, target, include_switch=include_switch
            )
            if preview.changes:
                flag_state_restore(state=target_state, config=config, actor=actor)
                promoted.append(preview)
    return promoted
