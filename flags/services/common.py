"""What every write shares: saving with history, version bumps, permission and engine checks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from flagship_sdk.engine import Ruleset, RulesetError

from .. import documents
from ..delivery import changes
from ..delivery.changes import Change, Kind
from ..errors import ChangeRequestRequiredError, PermissionDeniedError
from ..formats import same_json
from ..history.recording import acting
from ..models import Condition, Environment, Flag, FlagState, Prerequisite, Rule

PROTECTED_PERMISSION = "flags.change_protected_environment"


def save(instance: models.Model, actor: Any | None, *, validate: bool = True) -> bool:
    """Validate (``full_clean``) and save one object, recording ``actor`` in its history.

    An existing object whose stored row already holds these values is not written (no history
    row, nothing to announce): the result says whether it was.
    """
    _check_proposable(instance)
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
    _check_proposable(instance)
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
    with acting(actor):
        instance.delete()


class Proposal:
    """The change being proposed in one environment (``services.change_requests.proposing``).

    Service calls inside it may change that environment's flag states (the block is rolled back
    afterwards); each change event they announce names the flags they changed.
    """

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.flag_keys: list[str] = []

    def record(self, change: Change) -> None:
        """Note the flags a change touched; refuse one reaching beyond the environment."""
        outside = set(change.ruleset_environment_ids) - {self.environment.pk}
        if change.kind == Kind.SEGMENT_CHANGED or outside:
            raise ValidationError(
                f"This change reaches beyond {self.environment.name}'s flag states (a "
                "segment, or other environments): a change request holds flag states only.",
                code="outside_environment",
            )
        if change.ruleset_environment_ids:
            self.flag_keys.extend(key for key in change.flags if key not in self.flag_keys)


def _check_proposable(instance: models.Model) -> None:
    """Inside ``proposing``, refuse writing anything but a flag state's targeting."""
    proposal = _proposing.get()
    if proposal is None:
        return
    if isinstance(instance, FlagState | Rule | Prerequisite) or (
        isinstance(instance, Condition) and instance.rule_id is not None
    ):
        return
    raise ValidationError(
        f"A change request holds flag states only: this {instance._meta.verbose_name} is not "
        f"one of {proposal.environment.name}'s. Change it outside the change request.",
        code="outside_environment",
    )


# Set while a change request's approved change is applied (``services.change_requests``): the
# environment's own rule is satisfied, so no permission is checked again for it.
_applying: ContextVar[bool] = ContextVar("flagship_applying_change_request", default=False)
_proposing: ContextVar[Proposal | None] = ContextVar("flagship_proposal", default=None)


@contextmanager
def applying_approved() -> Iterator[None]:
    """Let the service calls inside change an environment that takes change requests."""
    token = _applying.set(True)
    try:
        yield
    finally:
        _applying.reset(token)


@contextmanager
def collecting(proposal: Proposal) -> Iterator[Proposal]:
    """Let the calls inside change ``proposal``'s environment, noting what they change."""
    token = _proposing.set(proposal)
    try:
        yield proposal
    finally:
        _proposing.reset(token)


def check_can_change(actor: Any | None, environment: Environment) -> None:
    """Refuse a person's direct change where change requests or the release permission rule.

    ``actor=None`` is the system itself (commands, migrations), which may change anything. In an
    environment that takes change requests, a person's change is refused unless it is being
    proposed (``proposing``) or an approved one is being applied.
    """
    if actor is None or _applying.get():
        return
    if environment.needs_change_requests:
        proposal = _proposing.get()
        if proposal is not None and proposal.environment.pk == environment.pk:
            return
        raise ChangeRequestRequiredError(
            f"{environment.name} takes change requests: propose this change for approval."
        )
    check_release_permission(actor, environment)


def check_release_permission(actor: Any | None, environment: Environment) -> None:
    """Refuse a change in a protected environment by someone without the release permission."""
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
        check_release_permission(actor, protected)


def announce(  # a change event's fields, by name
    kind: Kind,
    *,
    actor: Any | None,
    project_id: int | None,
    environments: Iterable[int] = (),
    rulesets: Iterable[int] = (),
    flags: Iterable[str] = (),
    before: Any = None,
    after: Any = None,
) -> None:
    """Emit the service's change event (``flags.delivery.changes``), once per service call.

    ``rulesets`` are the environments whose ruleset document changed: their version advances
    once per transaction however many changes name them, and caches, processes, streams and SDKs
    learn of it when the transaction commits. ``environments`` are the others the change
    concerns (webhooks of one environment match on either).
    """
    ruleset_ids = tuple(sorted(set(rulesets)))
    change = Change(
        kind=kind,
        project_id=project_id,
        environment_ids=tuple(sorted(set(environments) | set(ruleset_ids))),
        ruleset_environment_ids=ruleset_ids,
        flags=tuple(flags),
        before=before,
        after=after,
        actor=actor,
    )
    proposal = _proposing.get()
    if proposal is not None:
        proposal.record(change)
    changes.emit(change)


def flag_summary(flag: Flag) -> dict[str, Any]:
    """A flag as change events show it before and after (re-read: stored values only)."""
    stored = (
        Flag.objects.select_related("owner")
        .prefetch_related("tags", "variants")
        .filter(pk=flag.pk)
        .first()
    )
    if stored is None:
        return {"key": flag.key}
    return {
        "key": stored.key,
        "name": stored.name,
        "description": stored.description,
        "kind": stored.kind,
        "lifecycle": stored.lifecycle,
        "owner": stored.owner.get_username() if stored.owner is not None else None,
        "client_visible": stored.client_visible,
        "archived": stored.archived,
        "tags": sorted(tag.name for tag in stored.tags.all()),
        "variants": [
            {"key": variant.key, "name": variant.name, "value": variant.value}
            for variant in stored.variants.all()
        ],
    }


def targeting_of(state: FlagState) -> dict[str, Any] | None:
    """A flag's targeting in one environment, as SDKs receive it (``rules.changed`` data).

    ``None`` for an archived flag (SDKs receive nothing of it).
    """
    loaded = documents.states_for_ruleset(state.environment).filter(pk=state.pk).first()
    return None if loaded is None else documents.state_document(loaded)


def segment_summary(project_id: int, key: str) -> dict[str, Any] | None:
    """A segment as change events show it (its conditions as the ruleset format writes them)."""
    document = documents.segments_document(project_id, [key]).get(key)
    return None if document is None else {"key": key, **document}


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
        states = documents.states_for_ruleset(environment).filter(flag_id__in=frontier)
        next_frontier: set[int] = set()
        for loaded in states:
            document = documents.state_document(loaded)
            flags[loaded.flag.key] = document
            for rule in document.get("rules", []):
                segment_keys.update(rule.get("segments", []))
            next_frontier.update(p.flag_id for p in loaded.prerequisites.all())
        frontier = next_frontier - seen
    return documents.ruleset_document(
        version=environment.ruleset_version,
        flags=flags,
        segments=documents.segments_document(environment.project_id, segment_keys),
    )


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
