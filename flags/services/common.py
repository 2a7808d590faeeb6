"""What every write shares: saving with history, version bumps, permission and engine checks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from flagship_sdk.engine import Ruleset, RulesetError

from .. import snapshot
from ..delivery import versions
from ..errors import PermissionDeniedError
from ..formats import same_json
from ..history.recording import acting
from ..models import Environment, FlagState, Prerequisite

PROTECTED_PERMISSION = "flags.change_protected_environment"


def save(instance: models.Model, actor: Any | None, *, validate: bool = True) -> bool:
    """Validate (``full_clean``) and save one object, recording ``actor`` in its history.

    An existing object whose stored row already holds these values is not written (no history
    row, nothing to announce): the result says whether it was.
    """
    if validate:
        instance.full_clean()
    if not instance._state.adding and not differs_from_stored(instance):
        return False
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
    instance.save()
    return True


def differs_from_stored(instance: models.Model) -> bool:
    """Whether any field a person can change differs from the stored row (or there is none).

    JSON values are compared as JSON (``1``, ``1.0`` and ``true`` differ); timestamps that Django
    sets itself (``auto_now``) are not compared.
    """
    fields = [
        field
        for field in instance._meta.concrete_fields
        if not getattr(field, "auto_now", False) and not getattr(field, "auto_now_add", False)
    ]
    stored = (
        type(instance)
        ._default_manager.filter(pk=instance.pk)
        .values(*(field.attname for field in fields))
        .first()
    )
    if stored is None:
        return True
    for field in fields:
        new = getattr(instance, field.attname)
        if isinstance(field, models.JSONField):
            if not same_json(new, stored[field.attname]):
                return True
        elif new != stored[field.attname]:
            return True
    return False


def delete(instance: models.Model, actor: Any | None) -> None:
    """Delete one object, recording ``actor`` in its history and its cascades' (conditions)."""
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
    with acting(actor):
        instance.delete()


def check_can_change(actor: Any | None, environment: Environment) -> None:
    """Refuse a change in a protected environment by someone without the release permission.

    ``actor=None`` is the system itself (commands, migrations), which may change anything.
    """
    if actor is None or not environment.protected:
        return
    if not actor.has_perm(PROTECTED_PERMISSION):
        raise PermissionDeniedError(
            f"{environment.name} is protected: only release managers may change flags there."
        )


def check_can_change_everywhere(actor: Any | None, flag_id: int) -> None:
    """Refuse a change reaching all of a flag's environments if one is protected (and no right).

    Archiving a flag, its salt or client visibility, and a variant's value change what every
    environment serves, production included.
    """
    if actor is None:
        return
    protected = Environment.objects.filter(states__flag_id=flag_id, protected=True).first()
    if protected is not None:
        check_can_change(actor, protected)


def bump(environment_ids: Iterable[int]) -> None:
    """Advance the ruleset version of environments, once per transaction (``delivery.versions``).

    However many rows and service calls a transaction writes, each environment's version moves
    by one; SDKs and caches learn about it once, when the transaction commits
    (``versions.announce``).
    """
    versions.advance(environment_ids, versions.announce)


def validate_states(states: Iterable[FlagState]) -> None:
    """Compile the affected flags strictly with the engine; raise ``ValidationError`` if invalid.

    Each state is checked with every flag it can reach through prerequisites (so cycles, depth and
    variant references are caught) and the segments those flags use: what SDKs would receive.
    """
    for state in states:
        document = _closure_document(state)
        try:
            Ruleset.from_dict(document, strict=True)
        except RulesetError as error:
            raise ValidationError(humanize(error), code=error.code) from None


def _closure_document(state: FlagState) -> dict[str, Any]:
    environment = state.environment
    seen: set[int] = set()
    frontier = {state.flag_id}
    flags: dict[str, Any] = {}
    segment_keys: set[str] = set()
    # Breadth-first over prerequisites: one query per level, and chains are at most 10 deep
    # (a cycle stops because flags are visited once).
    while frontier:
        seen |= frontier
        states = snapshot.states_for_ruleset(environment).filter(flag_id__in=frontier)
        next_frontier: set[int] = set()
        for loaded in states:
            document = snapshot.state_document(loaded)
            flags[loaded.flag.key] = document
            for rule in document.get("rules", []):
                segment_keys.update(rule.get("segments", []))
            next_frontier.update(p.flag_id for p in loaded.prerequisites.all())
        frontier = next_frontier - seen
    return {
        "format": 1,
        "version": environment.ruleset_version,
        "segments": snapshot.segments_document(environment.project_id, segment_keys),
        "flags": flags,
    }


def humanize(error: RulesetError) -> str:
    """Turn an engine error path into words: 'Flag "x", rule 2, condition 1: ...'."""
    words = []
    path = error.path
    for part in path.replace("][", "] [").replace(".", " ").split():
        if part.startswith('flags["'):
            words.append(f'Flag "{part[7:-2]}"')
        elif part.startswith("rules["):
            words.append(f"rule {int(part[6:-1]) + 1}")
        elif part.startswith("conditions["):
            words.append(f"condition {int(part[11:-1]) + 1}")
        elif part.startswith("prerequisites["):
            words.append(f"prerequisite {int(part[14:-1]) + 1}")
        elif part.startswith('segments["'):
            words.append(f'segment "{part[10:-2]}"')
    prefix = ", ".join(words)
    return f"{prefix}: {error.message}" if prefix else error.message


def dependents_of(flag_id: int) -> list[Prerequisite]:
    """Prerequisites that name a flag as their parent, on flags that are not archived."""
    return list(
        Prerequisite.objects.filter(flag_id=flag_id, state__flag__archived=False).select_related(
            "state__flag", "state__environment"
        )
    )
