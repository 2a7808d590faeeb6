"""The change event: what every write announces, and the subscribers that act on it.

Every service that writes calls :func:`emit` once, inside its transaction, with a :class:`Change`:
the kind of change, the project, environments and flags concerned, and before/after of what
changed (the actor comes from the service, the reason from ``flags.history.recording.reason``).
:func:`emit` then, in order:

1. advances the ruleset version of the environments whose rulesets moved
   (``flags.delivery.versions.advance``; announced to caches, processes and streams on commit);
2. records the event (:class:`flags.models.ChangeEvent`: the change feed, ``/api/v1/.../events``);
3. runs the in-transaction subscribers (:func:`subscribe`): the webhook outbox writes one
   delivery row per matching webhook, so the promise to announce commits with the change;
4. hands the event to the after-commit subscribers once the transaction commits (never for a
   rolled-back one).

Subscribers are registered in ``FlagsConfig.ready`` with plain imports: this module knows none of
them, and each knows only :class:`Change` and the event row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone

from flags.history.recording import current_reason
from flags.models import ChangeEvent, Environment, Project

from . import versions

logger = logging.getLogger(__name__)


class Kind(StrEnum):
    """The event types (``type`` in the payload); webhooks filter on them."""

    PROJECT_CREATED = "project.created"
    PROJECT_UPDATED = "project.updated"
    ENVIRONMENT_CREATED = "environment.created"
    ENVIRONMENT_UPDATED = "environment.updated"
    TAG_CHANGED = "tag.changed"
    FLAG_CREATED = "flag.created"
    FLAG_UPDATED = "flag.updated"
    FLAG_ARCHIVED = "flag.archived"
    FLAG_UNARCHIVED = "flag.unarchived"
    FLAG_DELETED = "flag.deleted"
    FLAG_TOGGLED = "flag.toggled"
    RULES_CHANGED = "rules.changed"
    SEGMENT_CHANGED = "segment.changed"
    RULESET_IMPORTED = "ruleset.imported"
    PROJECT_IMPORTED = "project.imported"
    API_KEY_ISSUED = "api_key.issued"
    API_KEY_REVOKED = "api_key.revoked"
    API_KEY_RENAMED = "api_key.renamed"
    WEBHOOK_TEST = "webhook.test"
    SCHEDULE_CREATED = "schedule.created"
    SCHEDULE_CANCELLED = "schedule.cancelled"
    SCHEDULE_RUN = "schedule.run"
    CHANGE_REQUEST_CREATED = "change_request.created"
    CHANGE_REQUEST_APPROVED = "change_request.approved"
    CHANGE_REQUEST_REJECTED = "change_request.rejected"
    CHANGE_REQUEST_REBASED = "change_request.rebased"
    CHANGE_REQUEST_APPLIED = "change_request.applied"
    CHANGE_REQUEST_WITHDRAWN = "change_request.withdrawn"


KIND_DESCRIPTIONS: Mapping[Kind, str] = {
    Kind.PROJECT_CREATED: "a project was created",
    Kind.PROJECT_UPDATED: "a project's name, description or settings changed",
    Kind.ENVIRONMENT_CREATED: "an environment was added",
    Kind.ENVIRONMENT_UPDATED: "an environment's name, colour, order or protection changed",
    Kind.TAG_CHANGED: "a tag was created, renamed, recoloured or deleted",
    Kind.FLAG_CREATED: "a flag was created (in every environment, switched off)",
    Kind.FLAG_UPDATED: "a flag's description, owner, tags, variants, salt or visibility changed",
    Kind.FLAG_ARCHIVED: "a flag was archived (SDKs stop receiving it)",
    Kind.FLAG_UNARCHIVED: "an archived flag was brought back",
    Kind.FLAG_DELETED: "a flag was deleted",
    Kind.FLAG_TOGGLED: "a flag was switched on or off in one environment",
    Kind.RULES_CHANGED: "a flag's targeting changed in one environment (rules, rollout, serve)",
    Kind.SEGMENT_CHANGED: "a segment was created, changed or deleted",
    Kind.RULESET_IMPORTED: "a ruleset document was imported into an environment",
    Kind.PROJECT_IMPORTED: "a project export was imported (once per import, after its changes)",
    Kind.API_KEY_ISSUED: "an environment key or admin token was issued",
    Kind.API_KEY_REVOKED: "an environment key or admin token was revoked",
    Kind.API_KEY_RENAMED: "an environment key or admin token was renamed",
    Kind.WEBHOOK_TEST: "a person asked for a test delivery",
    Kind.SCHEDULE_CREATED: "a change (or a ramp) was scheduled for a flag in one environment",
    Kind.SCHEDULE_CANCELLED: "a scheduled change was cancelled (its pending steps never run)",
    Kind.SCHEDULE_RUN: "the worker ran (or failed) one step of a scheduled change, late or not",
    Kind.CHANGE_REQUEST_CREATED: "a change in a protected environment was proposed for approval",
    Kind.CHANGE_REQUEST_APPROVED: "a reviewer approved a change request (with their comment)",
    Kind.CHANGE_REQUEST_REJECTED: "a reviewer rejected a change request (it is closed)",
    Kind.CHANGE_REQUEST_REBASED: "a change request was brought up to date with its flags' states",
    Kind.CHANGE_REQUEST_APPLIED: "an approved change request was applied (its changes follow)",
    Kind.CHANGE_REQUEST_WITHDRAWN: "the author withdrew a change request",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One write, as its service describes it.

    ``ruleset_environment_ids`` are the environments whose ruleset document moves (their version
    advances once per transaction, however many changes name them); ``environment_ids`` are the
    environments the change concerns (webhooks filtered to one environment match on them), and
    include the ruleset ones.
    """

    kind: Kind
    project_id: int | None
    environment_ids: tuple[int, ...] = ()
    ruleset_environment_ids: tuple[int, ...] = ()
    flags: tuple[str, ...] = ()
    before: Any = None
    after: Any = None
    actor: Any = field(default=None, compare=False)

    @property
    def concerned(self) -> set[int]:
        """Every environment the change concerns."""
        return set(self.environment_ids) | set(self.ruleset_environment_ids)


InTransaction = Callable[[Change, ChangeEvent], object]
AfterCommit = Callable[[ChangeEvent], None]
_in_transaction: list[InTransaction] = []
_after_commit: list[AfterCommit] = []


def subscribe(
    *, in_transaction: InTransaction | None = None, after_commit: AfterCommit | None = None
) -> None:
    """Register a subscriber (once; ``FlagsConfig.ready`` does it at start-up).

    ``in_transaction(change, event)`` runs inside the writer's transaction: what it writes commits
    or rolls back with the change, and an exception it raises undoes the change. ``after_commit(
    event)`` runs once the change has committed; its failures are logged, never raised.
    """
    if in_transaction is not None and in_transaction not in _in_transaction:
        _in_transaction.append(in_transaction)
    if after_commit is not None and after_commit not in _after_commit:
        _after_commit.append(after_commit)


def emit(change: Change) -> ChangeEvent:
    """Announce a change from inside its service's transaction (see the module's docstring)."""
    if change.ruleset_environment_ids:
        versions.advance(change.ruleset_environment_ids, versions.announce)
    event = _record(change)
    for subscriber in _in_transaction:
        subscriber(change, event)
    if _after_commit:
        transaction.on_commit(lambda: _dispatch(event))
    return event


def _record(change: Change) -> ChangeEvent:
    concerned = sorted(change.concerned)
    environments = (
        [
            {"id": pk, "key": key}
            for pk, key in Environment.objects.filter(pk__in=concerned)
            .order_by("order", "pk")
            .values_list("pk", "key")
        ]
        if concerned
        else []
    )
    project_key = (
        Project.objects.filter(pk=change.project_id).values_list("key", flat=True).first() or ""
        if change.project_id is not None
        else ""
    )
    actor = change.actor if getattr(change.actor, "is_authenticated", False) else None
    return ChangeEvent.objects.create(
        kind=str(change.kind),
        project_id=change.project_id,
        project_key=project_key,
        environments=environments,
        flags=sorted(set(change.flags)),
        actor_id=actor.pk if actor is not None else None,
        actor_name=actor.get_username() if actor is not None else "",
        reason=current_reason() or "",
        before=change.before,
        after=change.after,
        occurred_at=timezone.now(),
    )


def _dispatch(event: ChangeEvent) -> None:
    for subscriber in _after_commit:
        try:
            subscriber(event)
        except Exception:  # the change has committed: a subscriber's failure is only logged
            logger.exception("change.subscriber_failed", extra={"event_id": str(event.id)})


def fields(instance: Any, names: Iterable[str]) -> dict[str, Any]:
    """Plain JSON values of ``instance``'s fields (the before/after of a descriptive change)."""
    values: dict[str, Any] = {}
    for name in names:
        value = getattr(instance, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif hasattr(value, "pk"):
            value = value.pk
        values[name] = value
    return values
