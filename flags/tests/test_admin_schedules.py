"""Scheduled changes in the admin: scheduling with the form, the flag page's panel, cancelling.

Forms are sent back the way a browser sends them (``html_forms``); then the stored rows are read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState, ScheduledChange
from flags.services import StepSpec, run_due

from .admin_pages import find_one, messages_of, page, text
from .html_forms import FORM_CONTENT_TYPE, encoded, submission

ADD = "/admin/flags/scheduledchange/add/"
CHANGELIST = "/admin/flags/scheduledchange/"
RAMP_LINES = "2030-03-04 09:00 10 %\n2030-03-05 09:00 50 %\n2030-03-06 09:00 on"


def _schedule(client: Client, state: FlagState, steps: str, note: str = "") -> Any:
    """Open the add page for ``state`` and save it with ``steps`` typed in."""
    html = client.get(f"{ADD}?state={state.pk}").content.decode()
    entries = [
        (name, value)
        for name, value in submission(html, "scheduledchange_form", "_save")
        if name not in ("steps", "note")
    ]
    entries += [("steps", steps), ("note", note)]
    return client.post(ADD, encoded(entries), content_type=FORM_CONTENT_TYPE, follow=True)


def test_add__editor_types_a_ramp_in_staging__stored_through_the_service(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given an Editor on the add page of the staging state
    client.force_login(editor)
    state = boolean_flag.states.get(environment=staging)
    # When they type a ramp 10 → 50 % then on, with a note
    response = _schedule(client, state, RAMP_LINES, note="FS-12")
    # Then it is stored as typed, made by them, all pending
    assert response.status_code == 200
    change = ScheduledChange.objects.get()
    assert (change.state, change.note, change.created_by) == (state, "FS-12", editor)
    assert list(change.steps.values_list("at", "action", "percentage", "status")) == [
        (datetime(2030, 3, 4, 9, 0, tzinfo=UTC), "rollout", 10_000, "pending"),
        (datetime(2030, 3, 5, 9, 0, tzinfo=UTC), "rollout", 50_000, "pending"),
        (datetime(2030, 3, 6, 9, 0, tzinfo=UTC), "enable", None, "pending"),
    ]


def test_add__editor_in_protected_production__refused_nothing_stored(
    client: Client, editor: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given an Editor on the add page of the production state
    client.force_login(editor)
    state = boolean_flag.states.get(environment=production)
    # When they schedule a switch-on
    response = _schedule(client, state, "2030-03-04 09:00 on")
    # Then they are told production is protected, and nothing is stored
    assert any("protected" in message for message in messages_of(response))
    assert not ScheduledChange.objects.exists()


def test_add__line_without_a_step__error_next_to_the_steps(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given an Editor on the add page
    client.force_login(editor)
    # When a line says neither on, off nor a percentage
    response = _schedule(client, boolean_flag.states.get(environment=staging), "tomorrow maybe")
    # Then the form says which line, and nothing is stored
    errors = response.context["adminform"].form.errors["steps"]
    assert errors == [
        "Line 1: write a time and on, off or a percentage, for example 2030-03-04 09:00 25 %."
    ]
    assert not ScheduledChange.objects.exists()


def test_flag_page__done_late_and_pending_steps__shown_in_the_panel(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a ramp whose first step ran an hour late
    change = services.schedule_create(
        state=boolean_flag.states.get(environment=staging),
        steps=[
            StepSpec(at=datetime(2030, 3, 4, 9, tzinfo=UTC), action="rollout", percentage=10_000),
            StepSpec(at=datetime(2030, 3, 5, 9, tzinfo=UTC), action="enable"),
        ],
        actor=editor,
    )
    run_due(now=datetime(2030, 3, 4, 10, tzinfo=UTC))
    client.force_login(editor)
    # When the flag's page is opened
    response = client.get(f"/admin/flags/flag/{boolean_flag.pk}/change/")
    # Then its panel lists the change with each step and where it is
    assert response.status_code == 200
    shown, _ = find_one(page(response), "tr", data_testid=f"schedule-{change.pk}")
    assert "pending" in text(shown)
    assert "serve on to 10 % · done, late by 60 min" in text(shown)
    assert "switch on · pending" in text(shown)
    find_one(page(response), "a", data_testid="schedule-in-staging")


def test_list_cancel_action__pending_and_finished__cancels_one_refuses_the_other(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a pending change and one whose only step ran
    state = boolean_flag.states.get(environment=staging)
    pending = services.schedule_create(
        state=state,
        steps=[StepSpec(at=datetime(2030, 3, 5, tzinfo=UTC), action="enable")],
        actor=None,
    )
    finished = services.schedule_create(
        state=state,
        steps=[StepSpec(at=datetime(2030, 3, 1, tzinfo=UTC), action="enable")],
        actor=None,
    )
    run_due(now=datetime(2030, 3, 2, tzinfo=UTC))
    client.force_login(editor)
    # When an Editor cancels both from the list
    response = client.post(
        CHANGELIST,
        {"action": "cancel_changes", "_selected_action": [str(pending.pk), str(finished.pk)]},
        follow=True,
    )
    # Then the pending one is cancelled and the finished one is refused, saying why
    assert ScheduledChange.objects.get(pk=pending.pk).status == "cancelled"
    assert ScheduledChange.objects.get(pk=finished.pk).status == "done"
    shown = messages_of(response)
    assert "Cancelled 1 scheduled change(s)." in shown
    assert any(f"#{finished.pk}" in message and "no pending step" in message for message in shown)


def test_timeline__scheduled_then_run__shows_the_schedule_its_step_and_the_change_it_made(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a one-step rollout scheduled by an Editor and run by the worker
    change = services.schedule_create(
        state=boolean_flag.states.get(environment=staging),
        steps=[
            StepSpec(at=datetime(2030, 3, 4, 9, tzinfo=UTC), action="rollout", percentage=25_000)
        ],
        actor=editor,
    )
    run_due(now=datetime(2030, 3, 4, 9, tzinfo=UTC))
    client.force_login(editor)
    # When the flag's timeline is opened
    response = client.get(f"/admin/flags/flag/{boolean_flag.pk}/history/")
    # Then it shows the scheduled change, its step (created, then done) and the state's change
    # with the step's reason
    html = " ".join(response.content.decode().split())
    assert response.status_code == 200
    assert f"Scheduled change #{change.pk} in Staging · new-checkout" in html
    assert f"Step 1 of scheduled change #{change.pk} in Staging · new-checkout" in html
    assert "25 %" in html
    assert f"Scheduled change #{change.pk}, step 1 of 1" in html


def test_add_page__viewer__forbidden_and_cancel_action_not_offered(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a Viewer
    client.force_login(viewer)
    # When they open the add page and the list
    add = client.get(f"{ADD}?state={boolean_flag.states.get(environment=staging).pk}")
    listed = client.get(CHANGELIST)
    # Then they may not schedule, and the list offers no cancel action
    assert add.status_code == 403
    assert listed.status_code == 200
    assert "cancel_changes" not in listed.content.decode()
