"""The flag-state endpoint: ETag and If-Match, all-or-nothing writes, and strict input."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import services
from flags.models import Environment, Flag, FlagState, Rule, Segment

URL = "/api/v1/projects/demo/flags/new-checkout/environments/staging/"


def signed_in(user: User) -> APIClient:
    """A client with ``user``'s session."""
    client = APIClient()
    client.login(username=user.username, password=PASSWORD)
    return client


def state_of(flag: Flag, environment: Environment) -> FlagState:
    """The stored state of ``flag`` in ``environment``."""
    return FlagState.objects.get(flag=flag, environment=environment)


def history_count(state: FlagState) -> int:
    """How many history rows the state itself has."""
    return int(state.history.count())


def test_state__get__returns_state_with_version_etag(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given a new flag, when its staging state is read, then the body and ETag "1"."""
    # When
    response = signed_in(editor).get(URL)

    # Then
    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    assert response.json() == {
        "flag": "new-checkout",
        "environment": "staging",
        "enabled": False,
        "off_variant": "off",
        "default_serve": {"variant": "off"},
        "rules": [],
        "prerequisites": [],
        "version": 1,
        "updated_at": response.json()["updated_at"],
    }


def test_state__patch_without_if_match__is_428_precondition_required(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given a state, when it is patched without If-Match, then 428 and nothing changes."""
    # When
    response = signed_in(editor).patch(URL, {"enabled": True}, format="json")

    # Then
    assert response.status_code == 428
    assert response.json()["code"] == "precondition_required"
    assert state_of(boolean_flag, staging).enabled is False


def test_state__patch_with_stale_if_match__is_412_stale_version(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given a state at version 1, when patched with If-Match "7", then 412 and no change."""
    # When
    response = signed_in(editor).patch(URL, {"enabled": True}, format="json", HTTP_IF_MATCH='"7"')

    # Then
    assert response.status_code == 412
    assert response.json()["code"] == "stale_version"
    assert state_of(boolean_flag, staging).enabled is False


def test_state__two_writers_with_same_etag__one_wins_other_412_one_history_row(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given two writers who read ETag "1", when both patch, then one 200, one 412, one change."""
    # Given
    state = state_of(boolean_flag, staging)
    before = history_count(state)
    first, second = signed_in(editor), signed_in(editor)

    # When
    one = first.patch(URL, {"enabled": True}, format="json", HTTP_IF_MATCH='"1"')
    two = second.patch(URL, {"enabled": False}, format="json", HTTP_IF_MATCH='"1"')

    # Then
    assert (one.status_code, two.status_code) == (200, 412)
    assert two.json()["code"] == "stale_version"
    assert one["ETag"] == '"2"'
    assert state_of(boolean_flag, staging).enabled is True
    assert history_count(state) == before + 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_state__concurrent_writers_with_same_etag__exactly_one_succeeds(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given two threads holding ETag "1", when they patch at once, then one 200 and one 412."""
    # Given
    state = state_of(boolean_flag, staging)
    before = history_count(state)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def write(change: dict[str, Any]) -> None:
        client = signed_in(editor)
        barrier.wait()
        response = client.patch(URL, change, format="json", HTTP_IF_MATCH='"1"')
        statuses.append(response.status_code)
        connection.close()

    # When (two writes that each change something: a write changing nothing succeeds and
    # leaves the version, so the other's ETag would still be current)
    changes = [{"enabled": True}, {"default_serve": {"variant": "on"}}]
    threads = [threading.Thread(target=write, args=(change,)) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then
    assert sorted(statuses) == [200, 412]
    assert state_of(boolean_flag, staging).version == 2
    assert history_count(state) == before + 1


def test_state__put_with_rules__replaces_rules_and_serves(
    editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    """Given a state, when PUT with a rule, then the rule is stored with segments by key."""
    # Given
    body: dict[str, Any] = {
        "enabled": True,
        "off_variant": "off",
        "default_serve": {"variant": "off"},
        "rules": [
            {
                "description": "Beta",
                "segments": ["beta-testers"],
                "conditions": [{"attribute": "country", "operator": "in", "values": ["NL"]}],
                "rollout": 50_000,
                "serve": {"variant": "on"},
            }
        ],
    }

    # When
    response = signed_in(editor).put(URL, body, format="json", HTTP_IF_MATCH='"1"')

    # Then
    assert response.status_code == 200, response.content
    rules = response.json()["rules"]
    assert [(r["description"], r["segments"], r["rollout"], r["serve"]) for r in rules] == [
        ("Beta", ["beta-testers"], 50_000, {"variant": "on"})
    ]
    assert rules[0]["conditions"] == [
        {
            "attribute": "country",
            "operator": "in",
            "values": ["NL"],
            "negate": False,
            "case_insensitive": False,
        }
    ]
    assert response["ETag"] == f'"{state_of(boolean_flag, staging).version}"'


def test_state__rule_with_bad_regex__is_400_with_field_errors_and_nothing_written(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given a state, when a PUT has a regex RE2 refuses, then 400 on the rule and no change."""
    # Given
    body = {
        "enabled": True,
        "off_variant": "off",
        "default_serve": {"variant": "on"},
        "rules": [
            {
                "conditions": [{"attribute": "email", "operator": "regex", "values": ["(a"]}],
                "serve": {"variant": "on"},
            }
        ],
    }

    # When
    response = signed_in(editor).put(URL, body, format="json", HTTP_IF_MATCH='"1"')

    # Then
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert [error["field"] for error in response.json()["errors"]] == ["rules[0].values"]
    state = state_of(boolean_flag, staging)
    assert (state.enabled, state.version, state.default_serve) == (False, 1, {"variant": "off"})
    assert Rule.objects.filter(state=state).count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled": True, "colour": "red"}, "colour"),
        ({"rules": [{"serve": {"variant": "on"}, "weight": 3}]}, "weight"),
        ({"enabled": "yes"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"default_serve": "on"}, "default_serve"),
        ({"rules": [{"serve": {"variant": "on"}, "rollout": "half"}]}, "rollout"),
        ({"rules": [{"serve": {"variant": "on"}, "rollout": 100_001}]}, "rollout"),
        ({"off_variant": "maybe"}, "off_variant"),
        ({"default_serve": {"variant": "maybe"}}, "default_serve"),
    ],
)
def test_state__invalid_body__is_400_naming_the_field_and_nothing_written(
    body: dict[str, Any], field: str, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given a state, when a PATCH has an unknown field or a wrong kind, then 400 on that field."""
    # When
    response = signed_in(editor).patch(URL, body, format="json", HTTP_IF_MATCH='"1"')

    # Then
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert state_of(boolean_flag, staging).version == 1


def test_state__toggle_with_matching_if_match__switches_on(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given ETag "1", when toggled on with it, then 200, enabled and ETag "2"."""
    # When
    response = signed_in(editor).post(
        URL + "toggle/", {"enabled": True}, format="json", HTTP_IF_MATCH='"1"'
    )

    # Then
    assert response.status_code == 200
    assert (response.json()["enabled"], response["ETag"]) == (True, '"2"')


def test_state__toggle_with_stale_if_match__is_412(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given ETag "1", when toggled with "5", then 412 and still off."""
    # When
    response = signed_in(editor).post(
        URL + "toggle/", {"enabled": True}, format="json", HTTP_IF_MATCH='"5"'
    )

    # Then
    assert response.status_code == 412
    assert state_of(boolean_flag, staging).enabled is False


def test_state__history_after_toggle__lists_the_change_with_old_and_new(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given a toggle by the editor, when the state history is read, then it shows enabled."""
    # Given
    client = signed_in(editor)
    client.post(URL + "toggle/", {"enabled": True}, format="json")

    # When
    response = client.get(URL + "history/")

    # Then
    assert response.status_code == 200
    newest = response.json()["results"][0]
    assert (newest["type"], newest["user"], newest["model"]) == ("changed", "editor", "flagstate")
    changes = {change["field"]: (change["old"], change["new"]) for change in newest["changes"]}
    assert changes["enabled"] == (False, True)
    assert changes["version"] == (1, 2)


def test_state__put_replacing_rules__ruleset_version_moves_once(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    """Given 3 rules, when a PUT replaces them with 4 and switches on, then one new version."""
    # Given
    state = state_of(boolean_flag, staging)
    for country in ("DE", "FR", "NL"):
        services.rule_create(
            state=state,
            serve={"variant": "on"},
            conditions=[{"attribute": "country", "operator": "in", "values": [country]}],
        )
    state = state_of(boolean_flag, staging)
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    body: dict[str, Any] = {
        "enabled": True,
        "off_variant": "off",
        "default_serve": {"variant": "off"},
        "rules": [
            {
                "conditions": [{"attribute": "plan", "operator": "in", "values": [plan]}],
                "serve": {"variant": "on"},
            }
            for plan in ("free", "pro", "team", "enterprise")
        ],
    }

    # When
    response = signed_in(editor).put(URL, body, format="json", HTTP_IF_MATCH=f'"{state.version}"')

    # Then
    assert response.status_code == 200, response.content
    assert [rule["conditions"][0]["values"] for rule in response.json()["rules"]] == [
        ["free"],
        ["pro"],
        ["team"],
        ["enterprise"],
    ]
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 1
