"""Change requests: a person's change to a protected environment, applied once approved.

An environment with ``required_approvals > 0`` takes no direct change from a person
(``common.check_can_change``). The admin and the API run the person's edit inside
:func:`proposing`: the very service calls a direct change makes, inside a savepoint that is
rolled back, after reading each changed flag state's whole configuration
(``flags.history.as_of.StateConfig``). What is stored is that configuration and the version and
configuration it was proposed against. So a change request holds exactly what the edit would have
written, validated by the engine, and nothing is written to the flags until it is applied.

Reviewers (``flags.approve_changerequest``: release managers and administrators) approve or reject
it with a comment; the author may approve only where the environment allows it. The author or an
approver applies it (:func:`change_request_apply`) once it has its approvals: a restore of each
state to the proposed configuration (``flag_state_restore``), refused if the state's version moved
since (:class:`ChangeRequestConflictError`). :func:`change_request_rebase` brings it up to date:
the parts the proposal changed (switch, off variant, default serve, rules, prerequisites) are laid
over the state as it is now, the parts both changed are reported as overridden, and approvals are
cleared, since the reviewers approved another diff. Every step is saved with history and announced
as a ``change_request.*`` change event.

While FlagShip's own ``change-requests`` flag is off (``flags.capabilities``), no new change request
is opened (:class:`CapabilityDisabledError`). Approvals are never bypassed: an environment that
takes change requests still refuses direct changes, so it is frozen for people meanwhile; change
requests already open are still reviewed, applied and withdrawn as usual.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import capabilities
from ..delivery.changes import Kind
from ..errors import (
    CapabilityDisabledError,
    ChangeRequestClosedError,
    ChangeRequestConflictError,
    NotApprovedError,
    PermissionDeniedError,
    StaleVersionError,
)
from ..history import as_of
from ..history.recording import reason
from ..models import (
    ChangeRequest,
    ChangeRequestReview,
    Environment,
    FlagState,
    ProposedState,
)
from ..models.change_requests import APPROVE_PERMISSION
from .common import Proposal, announce, applying_approved, collecting, save
from .restore import flag_state_restore

PROPOSE_PERMISSION = "flags.add_changerequest"
APPROVE = f"flags.{APPROVE_PERMISSION}"
Status = ChangeRequest.Status
Decision = ChangeRequestReview.Decision
# The parts of a flag state a rebase merges one by one.
PARTS = ("enabled", "off_variant_id", "default_serve", "rules", "prerequisites")


class _DiscardError(Exception):
    """Raised to roll the proposal's savepoint back after reading what it changed."""


@dataclass
class Proposed:
    """What :func:`proposing` made: the change request (``None``: the edit changed nothing)."""

    change_request: ChangeRequest | None = None
    states: list[FlagState] = field(default_factory=list)


def _person(actor: Any | None) -> Any | None:
    return actor if getattr(actor, "is_authenticated", False) else None


def _check_may_propose(actor: Any | None, environment: Environment) -> None:
    if not environment.needs_change_requests:
        raise ValidationError(
            f"{environment.name} takes no change requests: change it directly.",
            code="no_change_requests",
        )
    if actor is not None and not actor.has_perm(PROPOSE_PERMISSION):
        raise PermissionDeniedError("You may not propose changes.")
    if not capabilities.enabled(capabilities.CHANGE_REQUESTS):
        raise CapabilityDisabledError(
            "Change requests are switched off on this FlagShip (its own flag change-requests): "
            f"{environment.name} takes no changes until an administrator turns them back on."
        )


@contextmanager
def proposing(
    *,
    environment: Environment,
    actor: Any | None,
    title: str,
    description: str = "",
    kind: str = ChangeRequest.Kind.STATE,
) -> Iterator[Proposed]:
    """Turn the service calls made inside the block into one change request.

    The calls run as ``actor`` inside a savepoint that is rolled back; a call that would fail
    (validation, the engine, a stale version) fails here the same way and nothing is stored.
    After the block, ``result.change_request`` is the new change request, or ``None`` when the
    calls changed nothing.
    """
    _check_may_propose(actor, environment)
    result = Proposed()
    proposal = Proposal(environment)
    captured: dict[int, as_of.StateConfig] = {}
    with transaction.atomic():
        try:
            with transaction.atomic(), collecting(proposal):
                yield result
                for state in _states(environment, proposal.flag_keys):
                    captured[state.pk] = as_of.current(state)
                raise _DiscardError
        except _DiscardError:
            pass
        result.states = _states(environment, proposal.flag_keys)
        items = []
        for state in result.states:
            base = as_of.current(state)
            proposed = _known_ids(state, captured[state.pk])
            if proposed != base:
                items.append((state, base, proposed))
        if items:
            result.change_request = _create(
                environment=environment,
                actor=actor,
                title=title,
                description=description,
                kind=kind,
                items=items,
            )


def _states(environment: Environment, keys: Sequence[str]) -> list[FlagState]:
    return list(
        FlagState.objects.select_related("flag", "environment")
        .filter(environment=environment, flag__key__in=keys)
        .order_by("flag__key")
    )


def _known_ids(state: FlagState, config: as_of.StateConfig) -> as_of.StateConfig:
    """``config`` without the ids of rules and conditions created in the rolled-back savepoint.

    Those rows are gone (and SQLite may hand their ids out again): applying creates them anew.
    """
    rules = {rule.pk: rule for rule in state.rules.prefetch_related("conditions")}
    kept = []
    for rule in config.rules:
        stored = rules.get(rule.id) if rule.id is not None else None
        if stored is None:
            conditions = tuple(replace(c, id=None) for c in rule.conditions)
            kept.append(replace(rule, id=None, conditions=conditions))
            continue
        known = {c.pk for c in stored.conditions.all()}
        conditions = tuple(c if c.id in known else replace(c, id=None) for c in rule.conditions)
        kept.append(replace(rule, conditions=conditions))
    return replace(config, rules=tuple(kept))


def _create(
    *,
    environment: Environment,
    actor: Any | None,
    title: str,
    description: str,
    kind: str,
    items: Sequence[tuple[FlagState, as_of.StateConfig, as_of.StateConfig]] = (),
    schedule: dict[str, Any] | None = None,
) -> ChangeRequest:
    change_request = ChangeRequest(
        environment=environment,
        kind=kind,
        title=title.strip() or _default_title(kind, items),
        description=description,
        author=_person(actor),
        schedule=schedule,
    )
    save(change_request, actor)
    for state, base, proposed in items:
        ProposedState.objects.create(
            change_request=change_request,
            state=state,
            base_version=state.version,
            base=base.as_json(),
            proposed=proposed.as_json(),
        )
    _announce(Kind.CHANGE_REQUEST_CREATED, change_request, actor)
    return change_request


def _default_title(kind: str, items: Sequence[tuple[FlagState, Any, Any]]) -> str:
    keys = ", ".join(state.flag.key for state, _, _ in items[:3])
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    verb = "Promote" if kind == ChangeRequest.Kind.PROMOTION else "Change"
    return f"{verb} {keys}{more}"[:200]


@transaction.atomic
def schedule_propose(
    *,
    state: FlagState,
    steps: Sequence[Any],
    actor: Any | None,
    note: str = "",
    title: str = "",
) -> ChangeRequest:
    """Propose a scheduled change (``services.schedules.StepSpec``) for approval.

    The steps are validated now, as ``schedule_create`` would; applying the change request
    creates the schedule, whose steps then run as its author.
    """
    from .schedules import validate_steps  # noqa: PLC0415  # schedules imports this module

    environment = state.environment
    _check_may_propose(actor, environment)
    validate_steps(state, steps)
    schedule = {
        "state": state.pk,
        "note": note,
        "steps": [
            {"at": step.at.isoformat(), "action": step.action, "percentage": step.percentage}
            for step in steps
        ],
    }
    first = ", ".join(f"{step.action} at {step.at:%Y-%m-%d %H:%M}" for step in steps[:2])
    return _create(
        environment=environment,
        actor=actor,
        title=title.strip() or f"Schedule {state.flag.key}: {first}"[:200],
        description=note,
        kind=ChangeRequest.Kind.SCHEDULE,
        schedule=schedule,
    )


def summary(change_request: ChangeRequest) -> dict[str, Any]:
    """A change request as events and the API show it (without the configurations)."""
    environment = change_request.environment
    return {
        "id": change_request.pk,
        "kind": change_request.kind,
        "title": change_request.title,
        "status": change_request.status,
        "author": change_request.author.get_username() if change_request.author else None,
        "environment": environment.key,
        "flags": flag_keys(change_request),
        "approvals": approval_count(change_request),
        "required_approvals": environment.required_approvals,
    }


def flag_keys(change_request: ChangeRequest) -> list[str]:
    """The keys of the flags it changes (or schedules)."""
    if change_request.schedule is not None:
        state = FlagState.objects.select_related("flag").filter(pk=change_request.schedule["state"])
        return [s.flag.key for s in state]
    return [
        item.state.flag.key
        for item in change_request.proposed_states.select_related("state__flag").order_by("id")
    ]


def approval_count(change_request: ChangeRequest) -> int:
    """Approvals that count: every approving reviewer (the author only if the setting allows)."""
    approvals = change_request.reviews.filter(decision=Decision.APPROVED)
    if not change_request.environment.allow_self_approval and change_request.author_id:
        approvals = approvals.exclude(reviewer_id=change_request.author_id)
    return approvals.count()


def _announce(kind: Kind, change_request: ChangeRequest, actor: Any | None, **extra: Any) -> None:
    announce(
        kind,
        actor=actor,
        project_id=change_request.environment.project_id,
        environments=[change_request.environment_id],
        flags=flag_keys(change_request),
        after={**summary(change_request), **extra},
    )


def _lock(change_request: ChangeRequest) -> ChangeRequest:
    locked = (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("environment", "author")
        .get(pk=change_request.pk)
    )
    if locked.status != Status.OPEN:
        raise ChangeRequestClosedError(f"{locked} is {locked.get_status_display().lower()}.")
    return locked


def _check_reviewer(actor: Any | None) -> None:
    if actor is not None and not actor.has_perm(APPROVE):
        raise PermissionDeniedError("Only release managers may review change requests.")


@transaction.atomic
def change_request_approve(
    *, change_request: ChangeRequest, actor: Any, comment: str = ""
) -> ChangeRequest:
    """Approve (a reviewer; the author only where the environment allows self-approval)."""
    locked = _lock(change_request)
    _check_reviewer(actor)
    if locked.author_id == actor.pk and not locked.environment.allow_self_approval:
        raise PermissionDeniedError(
            f"{locked.environment.name} does not let authors approve their own changes."
        )
    _review(locked, actor, Decision.APPROVED, comment)
    _announce(Kind.CHANGE_REQUEST_APPROVED, locked, actor, comment=comment)
    return locked


@transaction.atomic
def change_request_reject(
    *, change_request: ChangeRequest, actor: Any, comment: str = ""
) -> ChangeRequest:
    """Reject (a reviewer): the change request is closed and never applies."""
    locked = _lock(change_request)
    _check_reviewer(actor)
    _review(locked, actor, Decision.REJECTED, comment)
    _close(locked, actor, Status.REJECTED)
    _announce(Kind.CHANGE_REQUEST_REJECTED, locked, actor, comment=comment)
    return locked


def _review(change_request: ChangeRequest, actor: Any, decision: str, comment: str) -> None:
    review = ChangeRequestReview.objects.filter(
        change_request=change_request, reviewer=actor
    ).first() or ChangeRequestReview(change_request=change_request, reviewer=actor)
    review.decision = decision
    review.comment = comment.strip()
    save(review, actor)
    save(change_request, actor, validate=False)  # updated_at, and a history row per step


def _close(change_request: ChangeRequest, actor: Any | None, status: str) -> None:
    change_request.status = status
    change_request.closed_at = timezone.now()
    change_request.closed_by = _person(actor)
    save(change_request, actor)


@transaction.atomic
def change_request_withdraw(*, change_request: ChangeRequest, actor: Any) -> ChangeRequest:
    """The author closes their own change request (it never applies)."""
    locked = _lock(change_request)
    if actor is not None and locked.author_id != actor.pk:
        raise PermissionDeniedError("Only its author may withdraw a change request.")
    _close(locked, actor, Status.WITHDRAWN)
    _announce(Kind.CHANGE_REQUEST_WITHDRAWN, locked, actor)
    return locked


def _check_may_apply(change_request: ChangeRequest, actor: Any | None) -> None:
    if actor is None or actor.pk == change_request.author_id or actor.has_perm(APPROVE):
        return
    raise PermissionDeniedError("Only its author or a reviewer may apply a change request.")


@dataclass(frozen=True)
class Conflict:
    """A flag state changed since the change request was proposed (or rebased)."""

    flag: str
    base_version: int
    version: int


def conflicts(change_request: ChangeRequest) -> list[Conflict]:
    """The flag states it changes whose version moved since its base (empty: it applies)."""
    return [
        Conflict(item.state.flag.key, item.base_version, item.state.version)
        for item in change_request.proposed_states.select_related("state__flag").order_by("id")
        if item.state.version != item.base_version
    ]


@transaction.atomic
def change_request_apply(*, change_request: ChangeRequest, actor: Any | None) -> ChangeRequest:
    """Apply an approved change request: each flag state restored to what was proposed.

    Refused without enough approvals (:class:`NotApprovedError`) and, with nothing written, when
    a state changed since its base (:class:`ChangeRequestConflictError`: rebase it first).
    """
    locked = _lock(change_request)
    _check_may_apply(locked, actor)
    required = locked.environment.required_approvals
    approvals = approval_count(locked)
    if approvals < required:
        raise NotApprovedError(
            f"{locked} has {approvals} of the {required} approvals "
            f"{locked.environment.name} requires."
        )
    if locked.schedule is None and not locked.proposed_states.exists():
        raise ValidationError(
            f"{locked} has nothing left to apply: its flags were deleted since.", code="gone"
        )
    text = f"Change request #{locked.pk}: {locked.title}"
    with applying_approved(), reason(text):
        if locked.schedule is not None:
            _apply_schedule(locked)
        for item in locked.proposed_states.select_related("state__environment", "state__flag"):
            config = as_of.StateConfig.from_json(item.proposed)
            try:
                flag_state_restore(
                    state=item.state,
                    config=config,
                    actor=actor,
                    expected_version=item.base_version,
                )
            except StaleVersionError:
                raise ChangeRequestConflictError(
                    f"{item.state.flag.key} changed in {locked.environment.name} since "
                    f"{locked} was proposed: rebase it, review it again, then apply it."
                ) from None
        _close(locked, actor, Status.APPLIED)
        _announce(Kind.CHANGE_REQUEST_APPLIED, locked, actor)
    return locked


def _apply_schedule(change_request: ChangeRequest) -> None:
    from datetime import datetime  # noqa: PLC0415

    from .schedules import StepSpec, schedule_create  # noqa: PLC0415  # imports this module

    plan = change_request.schedule or {}
    state = FlagState.objects.select_related("environment", "flag").get(pk=plan["state"])
    steps = [
        StepSpec(datetime.fromisoformat(s["at"]), s["action"], s["percentage"])
        for s in plan["steps"]
    ]
    created = schedule_create(
        state=state, steps=steps, actor=change_request.author, note=plan.get("note", "")
    )
    created.change_request = change_request
    save(created, change_request.author, validate=False)


@transaction.atomic
def change_request_rebase(*, change_request: ChangeRequest, actor: Any | None) -> ChangeRequest:
    """Lay the proposal over its flags' current states; clear the approvals.

    For each state that changed since its base: every part the proposal changes takes the
    proposed value, every other part keeps the current one. Parts both changed are listed in the
    ``change_request.rebased`` event as ``overridden``.
    """
    locked = _lock(change_request)
    _check_may_apply(locked, actor)
    overridden: dict[str, list[str]] = {}
    rebased = False
    items = locked.proposed_states.select_related("state__flag", "state__environment")
    for item in items:
        state = FlagState.objects.select_for_update().get(pk=item.state_id)
        if state.version == item.base_version:
            continue
        base = as_of.StateConfig.from_json(item.base)
        proposed = as_of.StateConfig.from_json(item.proposed)
        current = as_of.current(state)
        merged, parts = merge(base, proposed, current)
        if parts:
            overridden[item.state.flag.key] = parts
        item.base_version = state.version
        item.base = current.as_json()
        item.proposed = merged.as_json()
        item.save()
        rebased = True
    if not rebased:
        raise ValidationError(f"{locked} is up to date: nothing to rebase.", code="up_to_date")
    cleared = list(locked.reviews.all())
    for review in cleared:
        review._history_user = _person(actor)  # type: ignore[attr-defined]  # simple-history
        review.delete()
    save(locked, actor, validate=False)
    _announce(
        Kind.CHANGE_REQUEST_REBASED,
        locked,
        actor,
        overridden=overridden,
        approvals_cleared=len(cleared),
    )
    return locked


def merge(
    base: as_of.StateConfig, proposed: as_of.StateConfig, current: as_of.StateConfig
) -> tuple[as_of.StateConfig, list[str]]:
    """``current`` with the parts ``proposed`` changed from ``base``; the parts both changed."""
    merged = current
    overridden = []
    for part in PARTS:
        mine, theirs, was = (getattr(c, part) for c in (proposed, current, base))
        if mine == was:
            continue
        merged = replace(merged, **{part: mine})
        if theirs not in (was, mine):
            overridden.append(part)
    if "rules" in overridden:
        # The proposal's rules were written against the base's ids: keep the current ones in
        # place so applying updates the rules that are there (as a promotion does).
        ids = [rule.id for rule in current.rules]
        merged = replace(
            merged,
            rules=tuple(
                replace(rule, id=ids[index] if index < len(ids) else None)
                for index, rule in enumerate(merged.rules)
            ),
        )
    return merged, overridden


def diff(item: ProposedState) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The flag document at the base, as proposed, and now (``None`` if unchanged since)."""
    state = item.state
    base = as_of.StateConfig.from_json(item.base).document(state)
    proposed = as_of.StateConfig.from_json(item.proposed).document(state)
    now = None
    if state.version != item.base_version:
        now = as_of.current(state).document(state)
    return base, proposed, now


__all__ = [
    "Conflict",
    "Proposed",
    "change_request_apply",
    "change_request_approve",
    "change_request_rebase",
    "change_request_reject",
    "change_request_withdraw",
    "conflicts",
    "diff",
    "merge",
    "promotion_propose",
    "proposing",
    "schedule_propose",
]


def promotion_propose(
    *,
    flags: Sequence[Any],
    source: Environment,
    target: Environment,
    actor: Any | None,
    include_switch: bool = False,
    title: str = "",
    description: str = "",
) -> ChangeRequest | None:
    """Propose promoting ``flags`` into ``target``, which takes change requests.

    ``None`` when the target already serves what the source does.
    """
    from .promotion import flags_promote  # noqa: PLC0415  # promotion imports restore, as we do

    with proposing(
        environment=target,
        actor=actor,
        title=title,
        description=description or f"Promoted from {source.name}.",
        kind=ChangeRequest.Kind.PROMOTION,
    ) as result:
        flags_promote(
            flags=list(flags),
            source=source,
            target=target,
            actor=actor,
            include_switch=include_switch,
        )
    return result.change_request
