"""Writes to flags, their variants and their per-environment states."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..delivery.changes import Kind
from ..errors import InUseError, StaleVersionError
from ..formats import same_json
from ..models import Flag, FlagState, Prerequisite, Project, Tag, Variant
from .common import (
    announce,
    check_can_change,
    check_can_change_everywhere,
    delete,
    dependents_of,
    flag_summary,
    save,
    targeting_of,
    validate_states,
)
from .projects import initial_state

BOOLEAN_VARIANTS: tuple[tuple[str, Any], ...] = (("on", True), ("off", False))
UPDATABLE_FLAG_FIELDS = frozenset(
    {"name", "description", "owner", "lifecycle", "client_visible", "salt"}
)
# Fields whose change alters what SDKs receive, so every environment's version moves.
EVALUATED_FLAG_FIELDS = frozenset({"client_visible", "salt"})


@transaction.atomic
def flag_create(
    *,
    project: Project,
    key: str,
    name: str,
    kind: str = Flag.Kind.BOOLEAN,
    variants: Sequence[tuple[str, Any]] | None = None,
    description: str = "",
    tags: Iterable[Tag] = (),
    owner: Any | None = None,
    lifecycle: str = Flag.Lifecycle.RELEASE,
    client_visible: bool = False,
    salt: str = "",
    actor: Any | None = None,
) -> Flag:
    """Create a flag, its variants, and a switched-off state in every environment.

    A boolean flag always gets exactly ``on``/``off``; other kinds need at least one variant.
    """
    flag = Flag(
        project=project,
        key=key,
        name=name,
        kind=kind,
        description=description,
        owner=owner,
        lifecycle=lifecycle,
        client_visible=client_visible,
        salt=salt,
    )
    save(flag, actor)
    flag.tags.set(list(tags))
    if kind == Flag.Kind.BOOLEAN:
        if variants is not None and tuple(variants) != BOOLEAN_VARIANTS:
            raise ValidationError(
                {"variants": "A boolean flag has exactly the variants on (true) and off (false)."},
                code="invalid_variant",
            )
        variants = BOOLEAN_VARIANTS
    if not variants:
        raise ValidationError(
            {"variants": "Give the flag at least one variant."}, code="invalid_variant"
        )
    for order, (variant_key, value) in enumerate(variants):
        save(Variant(flag=flag, key=variant_key, value=value, order=order), actor)
    states = []
    for environment in project.environments.all():
        state = initial_state(flag, environment)
        save(state, actor)
        states.append(state)
    validate_states(states)
    announce(
        Kind.FLAG_CREATED,
        actor=actor,
        project_id=project.pk,
        rulesets=(state.environment_id for state in states),
        flags=[flag.key],
        after=flag_summary(flag),
    )
    return flag


@transaction.atomic
def flag_update(
    *, flag: Flag, actor: Any | None, tags: Iterable[Tag] | None = None, **changes: Any
) -> Flag:
    """Change a flag's descriptive fields, tags, client visibility or salt (never key or kind)."""
    unknown = set(changes) - UPDATABLE_FLAG_FIELDS
    if unknown:
        raise ValidationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    # Compare with the stored row, not ``flag``: a form may already have put the new values on it.
    stored = Flag.objects.get(pk=flag.pk)
    before = flag_summary(stored)
    evaluated = any(
        getattr(stored, field) != value
        for field, value in changes.items()
        if field in EVALUATED_FLAG_FIELDS
    )
    if evaluated:
        check_can_change_everywhere(actor, flag.pk)
    for field, value in changes.items():
        setattr(flag, field, value)
    saved = save(flag, actor)
    retagged = False
    if tags is not None:
        wanted = list(tags)
        if {tag.pk for tag in wanted} != set(flag.tags.values_list("pk", flat=True)):
            flag.tags.set(wanted)
            retagged = True
    if saved or retagged:
        announce(
            Kind.FLAG_UPDATED,
            actor=actor,
            project_id=flag.project_id,
            environments=flag.states.values_list("environment_id", flat=True),
            rulesets=flag.states.values_list("environment_id", flat=True) if evaluated else (),
            flags=[flag.key],
            before=before,
            after=flag_summary(flag),
        )
    return flag


@transaction.atomic
def flag_archive(*, flag: Flag, actor: Any | None) -> Flag:
    """Archive a flag: SDKs stop receiving it. Refused while another live flag depends on it."""
    check_can_change_everywhere(actor, flag.pk)
    _check_not_required(flag)
    before = flag_summary(flag)
    flag.archived = True
    save(flag, actor)
    announce(
        Kind.FLAG_ARCHIVED,
        actor=actor,
        project_id=flag.project_id,
        rulesets=flag.states.values_list("environment_id", flat=True),
        flags=[flag.key],
        before=before,
        after=flag_summary(flag),
    )
    return flag


@transaction.atomic
def flag_delete(*, flag: Flag, actor: Any | None) -> None:
    """Delete an archived flag with its variants, states and targeting; their history stays.

    Only an archived flag: SDKs no longer receive it, so no environment's ruleset changes and no
    version moves. Refused while a live flag depends on it (as archiving is), and, like archiving,
    for someone who may not change every environment it has a state in.
    """
    check_can_change_everywhere(actor, flag.pk)
    # Locked: a flag brought back meanwhile is live again, and is not deleted.
    locked = Flag.objects.select_for_update().get(pk=flag.pk)
    if not locked.archived:
        raise InUseError(f"{locked.key} is live: archive it first, so that SDKs stop receiving it.")
    _check_not_required(locked)
    before = flag_summary(locked)
    environment_ids = list(locked.states.values_list("environment_id", flat=True))
    delete(locked, actor)
    announce(
        Kind.FLAG_DELETED,
        actor=actor,
        project_id=locked.project_id,
        environments=environment_ids,
        flags=[locked.key],
        before=before,
    )


def _check_not_required(flag: Flag) -> None:
    """Refuse to take a flag from SDKs while a live flag has it as a prerequisite."""
    dependents = dependents_of(flag.pk)
    if dependents:
        names = ", ".join(sorted({p.state.flag.key for p in dependents}))
        raise InUseError(f"{flag.key} is a prerequisite of {names}; remove that first.")


@transaction.atomic
def flag_unarchive(*, flag: Flag, actor: Any | None) -> Flag:
    """Bring an archived flag back, in the states it had."""
    check_can_change_everywhere(actor, flag.pk)
    before = flag_summary(flag)
    flag.archived = False
    save(flag, actor)
    validate_states(flag.states.select_related("environment"))
    announce(
        Kind.FLAG_UNARCHIVED,
        actor=actor,
        project_id=flag.project_id,
        rulesets=flag.states.values_list("environment_id", flat=True),
        flags=[flag.key],
        before=before,
        after=flag_summary(flag),
    )
    return flag


def _lock(state: FlagState, expected_version: int | None) -> FlagState:
    """Re-read the state under a row lock and check the writer saw its current version."""
    locked = (
        FlagState.objects.select_for_update().select_related("environment", "flag").get(pk=state.pk)
    )
    if expected_version is not None and locked.version != expected_version:
        raise StaleVersionError(
            f"Someone changed {locked} since you loaded it (version {expected_version}, now "
            f"{locked.version}); reload and try again."
        )
    return locked


def flag_state_lock(*, state: FlagState, expected_version: int | None) -> FlagState:
    """Lock a state for a change made of several service calls, refusing a stale version.

    For the admin's rules panel: moving or deleting a rule on a page loaded at an older version
    could touch another rule than the one shown. Call inside the caller's transaction.
    """
    return _lock(state, expected_version)


@transaction.atomic
def flag_toggle(
    *, state: FlagState, enabled: bool, actor: Any | None, expected_version: int | None = None
) -> FlagState:
    """Switch a flag on or off in one environment (protected ones need the release permission)."""
    check_can_change(actor, state.environment)
    locked = _lock(state, expected_version)
    if locked.enabled == enabled:
        return locked
    locked.enabled = enabled
    locked.version += 1
    save(locked, actor, validate=False)
    announce(
        Kind.FLAG_TOGGLED,
        actor=actor,
        project_id=locked.flag.project_id,
        rulesets=[locked.environment_id],
        flags=[locked.flag.key],
        before={"enabled": not enabled},
        after={"enabled": enabled},
    )
    return locked


@transaction.atomic
def flag_state_update(
    *,
    state: FlagState,
    actor: Any | None,
    expected_version: int | None = None,
    enabled: bool | None = None,
    off_variant: Variant | None = None,
    default_serve: dict[str, Any] | None = None,
) -> FlagState:
    """Change a state's switch, off variant or default serve, validated by the engine."""
    check_can_change(actor, state.environment)
    locked = _lock(state, expected_version)
    unchanged = (
        (enabled is None or enabled == locked.enabled)
        and (off_variant is None or off_variant.pk == locked.off_variant_id)
        and (default_serve is None or same_json(default_serve, locked.default_serve))
    )
    if unchanged:
        return locked  # nothing to record, nothing for SDKs to download
    before = targeting_of(locked)
    if enabled is not None:
        locked.enabled = enabled
    if off_variant is not None:
        locked.off_variant = off_variant
    if default_serve is not None:
        locked.default_serve = default_serve
    locked.version += 1
    save(locked, actor)
    validate_states([locked])
    targeting_changed(locked, actor, before)
    return locked


def touch_state(state: FlagState) -> None:
    """Record that a state's targeting changed (its rules, conditions or prerequisites)."""
    FlagState.objects.filter(pk=state.pk).update(version=state.version + 1)
    state.version += 1
    validate_states([state])


def targeting_changed(state: FlagState, actor: Any | None, before: Any) -> None:
    """Emit ``rules.changed`` for one state: its targeting ``before`` and as it is now."""
    announce(
        Kind.RULES_CHANGED,
        actor=actor,
        project_id=state.environment.project_id,
        rulesets=[state.environment_id],
        flags=[state.flag.key],
        before=before,
        after=targeting_of(state),
    )


@transaction.atomic
def variant_create(
    *, flag: Flag, key: str, value: Any, name: str = "", actor: Any | None
) -> Variant:
    """Add a variant to a non-boolean flag."""
    if flag.kind == Flag.Kind.BOOLEAN:
        raise ValidationError(
            "A boolean flag has exactly the variants on and off.", code="invalid_variant"
        )
    last = flag.variants.order_by("-order").values_list("order", flat=True).first()
    variant = Variant(flag=flag, key=key, value=value, name=name, order=(last or 0) + 1)
    before = flag_summary(flag)
    save(variant, actor)
    states = list(flag.states.select_related("environment"))
    validate_states(states)
    # Every environment's ruleset lists the flag's variants, so each one changed.
    _variants_changed(flag, states, actor, before, rulesets=True)
    return variant


@transaction.atomic
def variant_update(
    *, variant: Variant, actor: Any | None, value: Any = None, name: str | None = None
) -> Variant:
    """Change a variant's value or name (its key never changes).

    A new value reaches every environment (protected ones need the release permission); a new
    name is for people only and leaves the rulesets alone.
    """
    revalued = value is not None and _json(value) != _json(variant.value)
    before = flag_summary(variant.flag)
    if revalued:
        if variant.flag.kind == Flag.Kind.BOOLEAN:
            raise ValidationError("The values of on and off cannot change.", code="invalid_variant")
        check_can_change_everywhere(actor, variant.flag_id)
        variant.value = value
    if name is not None:
        variant.name = name
    if not save(variant, actor):
        return variant
    states = list(variant.flag.states.select_related("environment"))
    if revalued:
        validate_states(states)
    _variants_changed(variant.flag, states, actor, before, rulesets=revalued)
    return variant


@transaction.atomic
def variant_delete(*, variant: Variant, actor: Any | None) -> None:
    """Remove a variant nobody serves, refers to, or falls back on."""
    flag = variant.flag
    if flag.kind == Flag.Kind.BOOLEAN:
        raise InUseError("The variants of a boolean flag cannot be removed.")
    if flag.variants.count() == 1:
        raise InUseError("A flag needs at least one variant.")
    for state in flag.states.prefetch_related("rules"):
        serves = [state.default_serve, *(rule.serve for rule in state.rules.all())]
        if state.off_variant_id == variant.pk or any(
            _names(serve, variant.key) for serve in serves
        ):
            raise InUseError(f"{variant.key} is served in {state.environment}; change that first.")
    # JSON containment is not portable to SQLite, and prerequisites on one parent are few.
    for prerequisite in Prerequisite.objects.filter(flag=flag).select_related("state__flag"):
        if variant.key in prerequisite.variants:
            raise InUseError(
                f"{variant.key} is named by a prerequisite of {prerequisite.state.flag.key}."
            )
    before = flag_summary(flag)
    delete(variant, actor)
    _variants_changed(flag, list(flag.states.all()), actor, before, rulesets=True)


def _variants_changed(
    flag: Flag, states: Sequence[FlagState], actor: Any | None, before: Any, *, rulesets: bool
) -> None:
    environment_ids = [state.environment_id for state in states]
    announce(
        Kind.FLAG_UPDATED,
        actor=actor,
        project_id=flag.project_id,
        environments=environment_ids,
        rulesets=environment_ids if rulesets else (),
        flags=[flag.key],
        before=before,
        after=flag_summary(flag),
    )


def _json(value: Any) -> str:
    """A value as JSON text: 1 and 1.0, or true and 1, are different values to SDKs."""
    return json.dumps(value, sort_keys=True)


def _names(serve: Any, variant_key: str) -> bool:
    if not isinstance(serve, dict):
        return False
    if serve.get("variant") == variant_key:
        return True
    return any(entry.get("variant") == variant_key for entry in serve.get("split", []))
