"""Scheduled changes through the management API: who may schedule where, and what is stored."""

from __future__ import annotations

from typing import Any

import pytest

from flags import services
from flags.models import Environment, Flag, ScheduledChange, ScheduledStep
from flags.tests.api_clients import client_for

STAGING = "/api/v1/projects/demo/flags/new-checkout/environments/staging/schedules/"
PRODUCTION = "/api/v1/projects/demo/flags/new-checkout/environments/production/schedules/"
RAMP: dict[str, Any] = {
    "note": "FS-12 ramp",
    "steps": [
        {"at": "2030-03-04T09:00:00Z", "action": "rollout", "percentage": 10_000},
        {"at": "2030-03-05T09:00:00Z", "action": "rollout", "percentage": 100_000},
    ],
}


def test_create__editor_in_staging__stores_the_ramp_and_answers_201(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given an Editor
    client = client_for("editor", staging)
    # When they schedule a two-step ramp in staging
    response = client.post(STAGING, RAMP, format="json")
    # Then it is stored with its steps, pending, made by them
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["flag"], body["environment"], body["status"], body["created_by"]) == (
        "new-checkout",
        "staging",
        "pending",
        "editor",
    )
    change = ScheduledChange.objects.get(pk=body["id"])
    assert list(change.steps.values_list("order", "action", "percentage", "status")) == [
        (1, "rollout", 10_000, "pending"),
        (2, "rollout", 100_000, "pending"),
    ]
    # When the list is read
    listed = client.get(STAGING)
    # Then it shows the change
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["results"]] == [change.pk]


@pytest.mark.parametrize(
    ("caller", "url", "expected"),
    [
        ("editor", PRODUCTION, 403),
        ("release_manager", PRODUCTION, 201),
        ("viewer", STAGING, 403),
        ("server_key", STAGING, 403),
        ("client_key", STAGING, 403),
        ("anonymous", STAGING, 401),
    ],
)
def test_create__each_caller__answers_by_role_and_protection(
    boolean_flag: Flag, staging: Environment, caller: str, url: str, expected: int
) -> None:
    # Given a caller
    client = client_for(caller, staging)
    # When they schedule a ramp
    response = client.post(url, RAMP, format="json")
    # Then Editors may in staging but not in protected production, release managers may there,
    # and Viewers and SDK keys may not at all; a refusal stores nothing
    assert response.status_code == expected
    if expected == 403:
        assert response.json()["code"] == "permission_denied"
        assert not ScheduledChange.objects.exists()


def test_create__rollout_without_percentage__answers_400_naming_the_step(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given an Editor
    client = client_for("editor", staging)
    # When a rollout step has no percentage
    response = client.post(
        STAGING, {"steps": [{"at": "2030-03-04T09:00:00Z", "action": "rollout"}]}, format="json"
    )
    # Then it is refused as invalid, naming the step, and nothing is stored
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "Step 1" in response.content.decode()
    assert not ScheduledChange.objects.exists()


def test_delete__pending_change__cancels_it_and_a_second_delete_answers_409(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given a scheduled ramp in staging
    client = client_for("editor", staging)
    created = client.post(STAGING, RAMP, format="json").json()
    # When an Editor deletes it
    response = client.delete(f"{STAGING}{created['id']}/")
    # Then it is cancelled (kept, with its steps cancelled)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert set(
        ScheduledStep.objects.filter(change_id=created["id"]).values_list("status", flat=True)
    ) == {"cancelled"}
    # When it is deleted again
    again = client.delete(f"{STAGING}{created['id']}/")
    # Then it is refused: nothing is pending any more
    assert again.status_code == 409
    assert again.json()["code"] == "schedule_finished"


def test_retrieve__change_of_another_environment__answers_404(
    boolean_flag: Flag, staging: Environment, production: Environment
) -> None:
    # Given a change scheduled in production
    change = services.schedule_create(
        state=boolean_flag.states.get(environment=production),
        steps=[services.StepSpec(at=boolean_flag.created_at, action="enable")],
        actor=None,
    )
    # When it is read under staging's URL
    response = client_for("viewer", staging).get(f"{STAGING}{change.pk}/")
    # Then it is not found there
    assert response.status_code == 404
