"""Scheduled changes: creating and cancelling them, and running their due steps (the worker).

A step runs through the same services as a person's change (``flag_toggle``,
``flag_state_update``) as the person who scheduled it, with the reason "Scheduled change #12,
step 2 of 4" (and "late by 3 min" when the worker was down at its time): audited, versioned,
announced. :func:`run_due` claims one due step at a time with ``FOR NO KEY UPDATE SKIP LOCKED``
and marks it in the transaction that applies it, so any number of workers run each step once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from flagship import metrics

from ..delivery.changes import Kind
from ..errors import FlagShipError, PermissionDeniedError, ScheduleFinishedError
from ..history.recording import reason
from ..models import Flag, FlagState, ScheduledChange, ScheduledStep
from ..models.schedules import FULL
from .common import announce, applying_approved, check_can_change, save
from .flags import flag_state_update, flag_toggle

logger = logging.getLogger(__name__)

# A step that runs later than this after its time ran late (the worker was down or behind):
# its reason, its ``late_seconds`` and its ``schedule.run`` event say so.
LATE_AFTER = timedelta(seconds=60)
# The model permission a person needs to keep running what they scheduled.
SCHEDULE_PERMISSION = "flags.add_scheduledchange"
Action = ScheduledStep.Action
Status = ScheduledStep.Status


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step as a caller asks for it: when, what, and for a rollout the share (thousandths)."""

    at: datetime
    action: str
    percentage: int | None = None


def rollout_serve(state: FlagState, percentage: int) -> dict[str, Any]:
    """The default serve of a boolean flag serving ``on`` to ``percentage`` thousandths.

    ``off`` comes first in the split: a subject without the bucket-by attribute gets the split's
    first variant (format: "A missing bucket-by attribute"), so it stays off; raising the
    percentage keeps everyone already on. 0 and 100 % are plain ``off`` and ``on`` serves. A
    ``bucket_by`` of the current default split is kept.
    """
    if percentage >= FULL:
        return {"variant": "on"}
    if percentage <= 0:
        return {"variant": "off"}
    serve: dict[str, Any] = {
        "split": [
            {"variant": "off", "weight": FULL - percentage},
            {"variant": "on", "weight": percentage},
        ]
    }
    current = state.default_serve if isinstance(state.default_serve, dict) else {}
    if "split" in current and "bucket_by" in current:
        serve["bucket_by"] = current["bucket_by"]
    return serve


def validate_steps(state: FlagState, steps: Sequence[StepSpec]) -> None:
    """Refuse steps that are empty, unknown, out of order, or a rollout of a non-boolean flag."""
    if not steps:
        raise ValidationError({"steps": "Give at least one step."}, code="required")
    errors: dict[str, str] = {}
    previous: datetime | None = None
    for index, step in enumerate(steps):
        if step.action not in Action.values:
            errors[str(index)] = f"Unknown action {step.action!r}: one of {', '.join(Action)}."
        elif step.action == Action.ROLLOUT:
            if state.flag.kind != Flag.Kind.BOOLEAN:
                errors[str(index)] = "A rollout step needs a boolean flag (it serves on and off)."
            elif step.percentage is None or not 0 <= step.percentage <= FULL:
                errors[str(index)] = "A rollout needs a percentage from 0 to 100000 thousandths."
        elif step.percentage is not None:
            errors[str(index)] = "Only a rollout step has a percentage."
        if previous is not None and step.at <= previous:
            errors.setdefault(str(index), "Each step must come after the one before it.")
        previous = step.at
    if errors:
        raise ValidationError({"steps": [f"Step {int(k) + 1}: {v}" for k, v in errors.items()]})


def schedule_summary(change: ScheduledChange) -> dict[str, Any]:
    """A scheduled change as events and the API show it: its steps and where each is."""
    return {
        "id": change.pk,
        "note": change.note,
        "cancelled": change.cancelled_at is not None,
        "steps": [
            {
                "order": step.order,
                "at": step.at.isoformat(),
                "action": step.action,
                "percentage": step.percentage,
                "status": step.status,
            }
            for step in change.steps.order_by("order")
        ],
    }


@transaction.atomic
def schedule_create(
    *, state: FlagState, steps: Sequence[StepSpec], actor: Any | None, note: str = ""
) -> ScheduledChange:
    """Schedule one change or a ramp for a flag state (protected: the release permission).

    Scheduling needs the permission a direct change needs, checked now and again when each step
    runs: in a protected environment the release permission; in one that takes change requests,
    an approved change request (``change_requests.schedule_propose``, applied).
    """
    check_can_change(actor, state.environment)
    validate_steps(state, steps)
    person = actor if getattr(actor, "is_authenticated", False) else None
    change = ScheduledChange(state=state, note=note, created_by=person)
    save(change, actor)
    for order, spec in enumerate(steps, start=1):
        step = ScheduledStep(
            change=change,
            order=order,
            at=spec.at,
            action=spec.action,
            percentage=spec.percentage if spec.action == Action.ROLLOUT else None,
        )
        save(step, actor)
    announce(
        Kind.SCHEDULE_CREATED,
        actor=actor,
        project_id=state.flag.project_id,
        environments=[state.environment_id],
        flags=[state.flag.key],
        after=schedule_summary(change),
    )
    return change


@transaction.atomic
def schedule_cancel(*, change: ScheduledChange, actor: Any | None) -> ScheduledChange:
    """Cancel a scheduled change: its pending steps never run (refused when none is left)."""
    locked = (
        ScheduledChange.objects.select_for_update()
        .select_related("state__environment", "state__flag")
        .get(pk=change.pk)
    )
    _check_can_cancel(actor, locked)
    pending = list(locked.steps.select_for_update().filter(status=Status.PENDING))
    if locked.cancelled_at is not None or not pending:
        raise ScheduleFinishedError(
            f"{locked} has no pending step left: it cannot be cancelled any more."
        )
    before = schedule_summary(locked)
    locked.cancelled_at = timezone.now()
    locked.cancelled_by = actor if getattr(actor, "is_authenticated", False) else None
    save(locked, actor)
    for step in pending:
        step.status = Status.CANCELLED
        step.error = "Cancelled."
        save(step, actor)
    announce(
        Kind.SCHEDULE_CANCELLED,
        actor=actor,
        project_id=locked.state.flag.project_id,
        environments=[locked.state.environment_id],
        flags=[locked.state.flag.key],
        before=before,
        after=schedule_summary(locked),
    )
    return locked


def _check_can_cancel(actor: Any | None, change: ScheduledChange) -> None:
    """Who may change the flag may cancel; where change requests rule, reviewers and its author.

    Stopping a planned change needs no approval: it leaves the flag as it is.
    """
    environment = change.state.environment
    if (
        actor is not None
        and environment.needs_change_requests
        and (actor.pk == change.created_by_id or actor.has_perm("flags.approve_changerequest"))
    ):
        return
    check_can_change(actor, environment)


def due_steps(now: datetime) -> QuerySet[ScheduledStep]:
    """Pending steps due by ``now`` whose plan is live and whose earlier steps are all finished."""
    earlier_pending = ScheduledStep.objects.filter(
        change=OuterRef("change"), status=Status.PENDING, order__lt=OuterRef("order")
    )
    return (
        ScheduledStep.objects.filter(
            status=Status.PENDING, at__lte=now, change__cancelled_at__isnull=True
        )
        .exclude(Exists(earlier_pending))
        .order_by("at", "change_id", "order")
    )


def run_due(*, now: datetime | None = None) -> int:
    """Run every step due by ``now`` (default: the clock), each once, in order; return how many.

    A step missed while no worker ran is run now, once, and marked late; the steps of a ramp run
    in their order even when several were missed.
    """
    ran = 0
    while run_next(now=now) is not None:
        ran += 1
    return ran


def run_next(*, now: datetime | None = None) -> ScheduledStep | None:
    """Claim and run one due step (``None`` when none is due or every due one is claimed)."""
    now = now or timezone.now()
    with transaction.atomic():
        step = (
            due_steps(now)
            .select_for_update(skip_locked=True, no_key=True, of=("self",))
            .select_related("change__created_by", "change__state__environment__project")
            .select_related("change__state__flag")
            .first()
        )
        if step is None:
            return None
        _run(step, now)
        return step


def _run(step: ScheduledStep, now: datetime) -> None:
    change = step.change
    state = change.state
    actor = change.created_by
    total = ScheduledStep.objects.filter(change=change).count()
    late = now - step.at if now - step.at > LATE_AFTER else None
    text = f"Scheduled change #{change.pk}, step {step.order} of {total}"
    if late is not None:
        text += f" (late by {_duration(late)})"
    if change.note:
        text += f": {change.note}"
    with reason(text):
        try:
            with transaction.atomic():  # a savepoint: a refused step changes nothing
                _check_creator(change)
                if change.change_request_id is not None:
                    with applying_approved():  # approved where change requests rule
                        _apply(step, state, actor)
                else:
                    _apply(step, state, actor)
            step.status = Status.DONE
        except (FlagShipError, ValidationError) as error:
            step.status = Status.FAILED
            step.error = (
                "; ".join(error.messages) if isinstance(error, ValidationError) else error.message
            )
            logger.warning(
                "schedule.step_failed", extra={"schedule": change.pk, "step": step.order}
            )
        except DatabaseError:
            raise  # the transaction is gone: the step stays pending for the next look
        except Exception:
            # A bug must not block every later step: the savepoint undid the step's writes.
            step.status = Status.FAILED
            step.error = "An unexpected error stopped this step (see the worker's log)."
            logger.exception(
                "schedule.step_crashed", extra={"schedule": change.pk, "step": step.order}
            )
        step.ran_at = now
        step.late_seconds = int(late.total_seconds()) if late is not None else None
        save(step, actor, validate=False)
        if step.status == Status.FAILED:
            _cancel_rest(step, actor)
        announce(
            Kind.SCHEDULE_RUN,
            actor=actor,
            project_id=state.environment.project_id,
            environments=[state.environment_id],
            flags=[state.flag.key],
            after={
                "schedule": change.pk,
                "step": step.order,
                "steps": total,
                "action": step.action,
                "percentage": step.percentage,
                "at": step.at.isoformat(),
                "ran_at": now.isoformat(),
                "status": step.status,
                "error": step.error,
                "late": late is not None,
                "late_seconds": step.late_seconds,
            },
        )
    metrics.schedule_steps.labels(str(step.status)).inc()
    logger.info(
        "schedule.step_ran",
        extra={"schedule": change.pk, "step": step.order, "status": step.status},
    )


def _check_creator(change: ScheduledChange) -> None:
    """The creator must still be active and allowed to schedule (protected: release manager)."""
    actor = change.created_by
    if actor is None:
        return
    if not actor.is_active:
        raise PermissionDeniedError(f"{actor.get_username()} who scheduled it is deactivated.")
    if not actor.has_perm(SCHEDULE_PERMISSION):
        raise PermissionDeniedError(
            f"{actor.get_username()} who scheduled it may no longer schedule changes."
        )
    if change.change_request_id is not None:
        return  # approved by a change request: reviewers, not the creator's role, allowed it
    try:
        check_can_change(actor, change.state.environment)
    except PermissionDeniedError as error:
        raise PermissionDeniedError(
            f"{actor.get_username()} who scheduled it may no longer change it: {error.message}"
        ) from None


def _apply(step: ScheduledStep, state: FlagState, actor: Any | None) -> None:
    if step.action == Action.ENABLE:
        flag_toggle(state=state, enabled=True, actor=actor)
    elif step.action == Action.DISABLE:
        flag_toggle(state=state, enabled=False, actor=actor)
    else:
        current = FlagState.objects.get(pk=state.pk)
        flag_state_update(
            state=state, actor=actor, default_serve=rollout_serve(current, step.percentage or 0)
        )


def _cancel_rest(step: ScheduledStep, actor: Any | None) -> None:
    """A failed step stops its plan: the later steps are cancelled, saying why."""
    for later in ScheduledStep.objects.filter(
        change_id=step.change_id, status=Status.PENDING, order__gt=step.order
    ):
        later.status = Status.CANCELLED
        later.error = f"Step {step.order} failed."
        save(later, actor, validate=False)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


__all__ = [
    "LATE_AFTER",
    "StepSpec",
    "rollout_serve",
    "run_due",
    "run_next",
    "schedule_cancel",
    "schedule_create",
    "validate_steps",
]
