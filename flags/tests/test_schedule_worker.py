"""A scheduled step run by a real ``manage.py run_worker`` process on the test database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from flags import services
from flags.models import ChangeEvent, FlagState, ScheduledStep
from flagship.faults import wait_until
from flagship.processes import Processes

from .test_webhook_workers import start_worker

pytestmark = [pytest.mark.requires_postgres]


def test_run_worker__step_due_in_two_seconds__switches_the_flag_on_once(
    transactional_db: None, processes: Processes
) -> None:
    # Given a committed flag, off in staging, scheduled to switch on 2 s from now
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    state = flag.states.get(environment__key="staging")
    due = timezone.now() + timedelta(seconds=2)
    change = services.schedule_create(
        state=state, steps=[services.StepSpec(at=due, action="enable")], actor=None
    )
    # When a worker runs
    start_worker(processes, "worker", concurrency=1)
    # Then within a few seconds of its time the step is done, not early, and the flag is on
    step = change.steps.get()
    assert wait_until(
        lambda: ScheduledStep.objects.get(pk=step.pk).status == ScheduledStep.Status.DONE,
        timeout=20,
    )
    ran = ScheduledStep.objects.get(pk=step.pk)
    assert ran.ran_at is not None
    assert ran.ran_at >= due
    assert ran.late_seconds is None
    assert FlagState.objects.get(pk=state.pk).enabled is True
    # Then exactly one toggle and one schedule.run were recorded
    assert ChangeEvent.objects.filter(kind="flag.toggled").count() == 1
    assert ChangeEvent.objects.filter(kind="schedule.run").count() == 1
