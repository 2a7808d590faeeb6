"""Scheduled changes and ramps: run by ``run_due(now=...)`` with a controllable clock.

Each test gives ``now`` explicitly, so a ramp's hours pass in microseconds; the stored state, the
ruleset version, the change events and the history rows are read back from the database.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connections

from accounts import roles
from accounts.tests.factories import make_user
from flags import services
from flags.errors import PermissionDeniedError, ScheduleFinishedError
from flags.models import (
    ChangeEvent,
    Environment,
    Flag,
    FlagState,
    Project,
    ScheduledChange,
    ScheduledStep,
)
from flags.services import StepSpec, run_due
from flags.services.schedules import rollout_serve

T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
Status = ScheduledStep.Status
RAMP = (10_000, 25_000, 50_000, 100_000)


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.get(flag=flag, environment=environment)


def _version(environment: Environment) -> int:
    return Environment.objects.values_list("ruleset_version", flat=True).get(pk=environment.pk)


def _ramp(state: FlagState, actor: object = None) -> ScheduledChange:
    """A ramp 10 → 25 → 50 → 100 % at T0, T0+1h, T0+2h, T0+3h."""
    return services.schedule_create(
        state=state,
        steps=[
            StepSpec(at=T0 + n * HOUR, action="rollout", percentage=p) for n, p in enumerate(RAMP)
        ],
        actor=actor,
        note="checkout ramp",
    )


def _step_lateness(event: ChangeEvent) -> tuple[int, bool, int | None]:
    after = event.after or {}
    return after["step"], after["late"], after["late_seconds"]


def _statuses(change: ScheduledChange) -> list[str]:
    return list(change.steps.order_by("order").values_list("status", flat=True))


def test_ramp__run_before_at_and_after_each_step__applies_exactly_the_due_steps(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given a ramp 10 → 25 → 50 → 100 % on a flag switched on in staging
    state = services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    change = _ramp(state)
    events_before = ChangeEvent.objects.count()
    version = _version(staging)
    # When the worker looks one second before the first step
    ran = run_due(now=T0 - timedelta(seconds=1))
    # Then nothing runs and nothing moves
    assert ran == 0
    assert _version(staging) == version
    assert _statuses(change) == ["pending"] * 4
    for n, percentage in enumerate(RAMP):
        # When the worker looks at the step's time, and again a little after
        ran_at = run_due(now=T0 + n * HOUR)
        ran_after = run_due(now=T0 + n * HOUR + timedelta(seconds=30))
        # Then exactly this step ran, once: the default serve holds its percentage and the
        # ruleset version moved by one
        assert (ran_at, ran_after) == (1, 0)
        stored = _state(boolean_flag, staging)
        assert stored.default_serve == rollout_serve(stored, percentage)
        assert _version(staging) == version + n + 1
        assert _statuses(change) == ["done"] * (n + 1) + ["pending"] * (3 - n)
    # Then the last step serves on to everyone, the flag still on
    stored = _state(boolean_flag, staging)
    assert stored.default_serve == {"variant": "on"}
    assert stored.enabled is True
    # Then each step wrote one rules.changed and one schedule.run event, with the step's reason
    new = ChangeEvent.objects.filter(kind__in=["rules.changed", "schedule.run"])
    assert ChangeEvent.objects.count() == events_before + 8
    assert new.filter(kind="rules.changed").count() == 4
    assert new.filter(kind="schedule.run").count() == 4
    for n in range(4):
        text = f"Scheduled change #{change.pk}, step {n + 1} of 4: checkout ramp"
        assert set(new.filter(reason=text).values_list("kind", flat=True)) == {
            "rules.changed",
            "schedule.run",
        }
        run = new.get(kind="schedule.run", reason=text)
        assert (run.after or {})["late"] is False
        assert (run.after or {})["status"] == "done"
    # Then the state's history has one row per step, each with its reason
    reasons = list(
        state.history.filter(history_change_reason__startswith="Scheduled change")
        .order_by("history_id")
        .values_list("history_change_reason", flat=True)
    )
    assert reasons == [
        f"Scheduled change #{change.pk}, step {n} of 4: checkout ramp" for n in range(1, 5)
    ]


def test_switch_on_and_off__at_their_times__toggle_the_flag_with_flag_toggled_events(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given a flag off in staging, scheduled on at T0 and off at T0+1h
    state = _state(boolean_flag, staging)
    change = services.schedule_create(
        state=state,
        steps=[StepSpec(at=T0, action="enable"), StepSpec(at=T0 + HOUR, action="disable")],
        actor=None,
    )
    # When the worker runs at T0
    run_due(now=T0)
    # Then the flag is on, announced as flag.toggled with the schedule's reason
    assert _state(boolean_flag, staging).enabled is True
    toggled = ChangeEvent.objects.filter(kind="flag.toggled").latest("occurred_at")
    assert toggled.reason == f"Scheduled change #{change.pk}, step 1 of 2"
    # When the worker runs at T0+1h
    run_due(now=T0 + HOUR)
    # Then it is off again and both steps are done
    assert _state(boolean_flag, staging).enabled is False
    assert _statuses(change) == ["done", "done"]


def test_missed_steps__worker_back_an_hour_late__each_runs_once_in_order_marked_late(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given a ramp whose first two steps (T0, T0+1h) passed while no worker ran
    state = services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    change = _ramp(state)
    version = _version(staging)
    # When the worker comes back at T0+2h-1min
    back = T0 + 2 * HOUR - timedelta(minutes=1)
    ran = run_due(now=back)
    # Then both missed steps ran once, in order, each marked late by its delay
    assert ran == 2
    steps = list(change.steps.order_by("order"))
    assert [s.status for s in steps] == ["done", "done", "pending", "pending"]
    assert [s.late_seconds for s in steps[:2]] == [119 * 60, 59 * 60]
    assert _version(staging) == version + 2
    assert _state(boolean_flag, staging).default_serve == rollout_serve(state, 25_000)
    runs = list(ChangeEvent.objects.filter(kind="schedule.run").order_by("occurred_at"))
    assert [_step_lateness(r) for r in runs] == [
        (1, True, 119 * 60),
        (2, True, 59 * 60),
    ]
    assert runs[0].reason == (
        f"Scheduled change #{change.pk}, step 1 of 4 (late by 119 min): checkout ramp"
    )
    # When the worker looks again a second later
    # Then nothing runs twice
    assert run_due(now=back + timedelta(seconds=1)) == 0
    assert ChangeEvent.objects.filter(kind="schedule.run").count() == 2


def test_cancel__pending_steps__never_run(boolean_flag: Flag, staging: Environment) -> None:
    # Given a ramp whose first step ran
    state = _state(boolean_flag, staging)
    change = _ramp(state)
    run_due(now=T0)
    editor = make_user(role=roles.EDITOR)
    # When an editor cancels it
    services.schedule_cancel(change=change, actor=editor)
    # Then the later steps are cancelled and never run, even long after their time
    assert run_due(now=T0 + 10 * HOUR) == 0
    assert _statuses(change) == ["done", "cancelled", "cancelled", "cancelled"]
    assert ChangeEvent.objects.filter(kind="schedule.cancelled").count() == 1
    stored = ScheduledChange.objects.get(pk=change.pk)
    assert stored.cancelled_by == editor
    assert stored.cancelled_at is not None


def test_cancel__change_with_every_step_done__is_refused(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given a one-step change that ran
    change = services.schedule_create(
        state=_state(boolean_flag, staging), steps=[StepSpec(at=T0, action="enable")], actor=None
    )
    run_due(now=T0)
    # When someone cancels it
    # Then it is refused: nothing is left to cancel
    with pytest.raises(ScheduleFinishedError):
        services.schedule_cancel(change=change, actor=None)
    assert ScheduledChange.objects.get(pk=change.pk).cancelled_at is None


def test_create__editor_in_protected_production__is_refused(
    boolean_flag: Flag, production: Environment
) -> None:
    # Given an Editor
    editor = make_user(role=roles.EDITOR)
    # When they schedule a change in protected production
    # Then it is refused like a direct change, and nothing is stored
    with pytest.raises(PermissionDeniedError):
        services.schedule_create(
            state=_state(boolean_flag, production),
            steps=[StepSpec(at=T0, action="enable")],
            actor=editor,
        )
    assert not ScheduledChange.objects.exists()


def test_run__creator_lost_release_right__step_fails_saying_why_and_rest_is_cancelled(
    boolean_flag: Flag, production: Environment
) -> None:
    # Given a release manager's two-step schedule in production
    manager = make_user(role=roles.RELEASE_MANAGER)
    change = services.schedule_create(
        state=_state(boolean_flag, production),
        steps=[StepSpec(at=T0, action="enable"), StepSpec(at=T0 + HOUR, action="disable")],
        actor=manager,
    )
    version = _version(production)
    # When they become an Editor before it runs
    manager.groups.clear()
    manager.groups.add(Group.objects.get(name=roles.EDITOR))
    ran = run_due(now=T0 + 2 * HOUR)
    # Then the first step failed saying why, the second was cancelled, the flag did not move
    steps = list(change.steps.order_by("order"))
    assert ran == 1
    assert [s.status for s in steps] == ["failed", "cancelled"]
    assert "may no longer change it" in steps[0].error
    assert "protected" in steps[0].error
    assert _state(boolean_flag, production).enabled is False
    assert _version(production) == version
    run = ChangeEvent.objects.get(kind="schedule.run")
    assert (run.after or {})["status"] == "failed"


def test_create__rollout_on_a_string_flag_or_out_of_order__is_refused(
    string_flag: Flag, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a string flag and a boolean one
    # When a rollout is scheduled for the string flag, or steps go back in time
    # Then each is refused with the step named
    with pytest.raises(ValidationError, match="boolean flag"):
        services.schedule_create(
            state=_state(string_flag, staging),
            steps=[StepSpec(at=T0, action="rollout", percentage=10_000)],
            actor=None,
        )
    with pytest.raises(ValidationError, match="Step 2: Each step must come after"):
        services.schedule_create(
            state=_state(boolean_flag, staging),
            steps=[StepSpec(at=T0, action="enable"), StepSpec(at=T0, action="disable")],
            actor=None,
        )
    assert not ScheduledChange.objects.exists()


@pytest.mark.requires_postgres
def test_two_workers__run_due_at_once__apply_each_step_once(
    transactional_db: None,
) -> None:
    # Given a committed ramp whose four steps are all due
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    staging = project.environments.get(key="staging")
    change = _ramp(_state(flag, staging))
    version = _version(staging)
    counts: list[int] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait()
            counts.append(run_due(now=T0 + 5 * HOUR))
        finally:
            connections.close_all()

    # When two workers, each with its own connection, run the due steps at the same moment
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Then the four steps ran once each, in order, and the version moved four times
    assert sum(counts) == 4
    assert _statuses(change) == ["done"] * 4
    assert _version(staging) == version + 4
    assert ChangeEvent.objects.filter(kind="schedule.run").count() == 4
    assert ChangeEvent.objects.filter(kind="rules.changed").count() == 4
    assert project.pk == Project.objects.get(key="demo").pk


def test_run__service_raises_unexpectedly__step_fails_later_changes_still_run(
    boolean_flag: Flag, staging: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two changes due, and a bug that makes switching on crash
    state = _state(boolean_flag, staging)
    broken = services.schedule_create(
        state=state, steps=[StepSpec(at=T0, action="enable")], actor=None
    )
    fine = services.schedule_create(
        state=state,
        steps=[StepSpec(at=T0 + timedelta(seconds=1), action="rollout", percentage=30_000)],
        actor=None,
    )

    def crash(**kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("flags.services.schedules.flag_toggle", crash)
    # When the worker runs
    ran = run_due(now=T0 + HOUR)
    # Then the crashing step failed (nothing changed by it) and the other change still ran
    assert ran == 2
    assert _statuses(broken) == ["failed"]
    assert _statuses(fine) == ["done"]
    stored = _state(boolean_flag, staging)
    assert stored.enabled is False
    assert stored.default_serve == rollout_serve(stored, 30_000)
