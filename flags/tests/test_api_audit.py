"""The audit feed's environment, flag and time filters (GET /api/v1/audit/)."""

from __future__ import annotations

from datetime import UTC, datetime

from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import services
from flags.models import Environment, Flag, FlagState, Project, Segment
from flags.services import common

AUDIT = "/api/v1/audit/"
COUNTRY = {"attribute": "country", "operator": "in", "values": ["DE"]}


def signed_in(user: User) -> APIClient:
    """A client with ``user``'s session."""
    client = APIClient()
    client.login(username=user.username, password=PASSWORD)
    return client


def _rows(client: APIClient, query: str) -> list[tuple[str, str]]:
    response = client.get(f"{AUDIT}?{query}")
    assert response.status_code == 200, response.content
    return [(row["model"], row["type"]) for row in response.json()["results"]]


def test_audit__filtered_by_flag__deleted_rule_conditions_and_segment_included(  # fixtures
    viewer: User,
    editor: User,
    boolean_flag: Flag,
    string_flag: Flag,
    staging: Environment,
    beta_testers: Segment,
) -> None:
    # Given new-checkout's rule (a condition, beta testers) created then deleted, and a change
    # to banner-text
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state,
        serve={"variant": "on"},
        conditions=[COUNTRY],
        segments=[beta_testers],
        actor=editor,
    )
    services.rule_delete(rule=rule, actor=editor)
    services.flag_toggle(
        state=string_flag.states.get(environment=staging), enabled=True, actor=editor
    )

    # When the feed is filtered by new-checkout
    rows = _rows(signed_in(viewer), "project=demo&flag=new-checkout&page_size=100")

    # Then every row of new-checkout's life, the deleted rule's included, and its segment's
    assert sorted(rows) == sorted(
        [
            ("flag", "created"),
            ("variant", "created"),
            ("variant", "created"),
            ("flagstate", "created"),
            ("flagstate", "created"),
            ("flagstate", "created"),
            ("rule", "created"),
            ("rule", "changed"),  # its segments
            ("condition", "created"),
            ("rule", "deleted"),
            ("condition", "deleted"),
            ("segment", "created"),
            ("condition", "created"),  # beta testers' own condition
        ]
    )


def test_audit__filtered_by_environment__that_environments_rows_only(
    viewer: User, editor: User, release_manager: User, boolean_flag: Flag
) -> None:
    # Given toggles in staging and in production
    for key, actor in (("staging", editor), ("production", release_manager)):
        state = boolean_flag.states.get(environment__key=key)
        services.flag_toggle(state=state, enabled=True, actor=actor)

    # When the feed is filtered by production
    response = signed_in(viewer).get(f"{AUDIT}?project=demo&environment=production")

    # Then production's environment and state rows, not staging's nor the flag's
    results = response.json()["results"]
    assert [(row["model"], row["type"], row["user"]) for row in results] == [
        ("flagstate", "changed", "release"),
        ("flagstate", "created", None),
        ("environment", "created", None),
    ]


def test_audit__since_and_until__changes_in_that_time_only(
    viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given two toggles recorded on 1 and 2 March
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=editor)
    services.flag_toggle(state=state, enabled=False, actor=editor)
    history = FlagState.history
    toggles = list(history.filter(history_type="~").order_by("history_id"))
    for toggle, day in zip(toggles, (1, 2), strict=True):
        moment = datetime(2026, 3, day, 12, tzinfo=UTC)
        history.filter(history_id=toggle.history_id).update(history_date=moment)

    # When the feed is asked for 2 March (since inclusive, until exclusive)
    response = signed_in(viewer).get(
        f"{AUDIT}?since=2026-03-02T00:00:00Z&until=2026-03-03T00:00:00%2B00:00"
    )

    # Then only the second toggle
    results = response.json()["results"]
    assert [(row["date"], row["changes"][0]) for row in results] == [
        ("2026-03-02T12:00:00Z", {"field": "enabled", "old": True, "new": False})
    ]


def test_audit__empty_filters__ignored(viewer: User, editor: User, boolean_flag: Flag) -> None:
    # Given a change recorded
    services.flag_toggle(
        state=boolean_flag.states.get(environment__key="staging"), enabled=True, actor=editor
    )
    client = signed_in(viewer)
    unfiltered = _rows(client, "")

    # When every filter is sent empty, or blank (as forms and clients send "any")
    empty = _rows(client, "project=&environment=&flag=&user=&since=&until=&page=&page_size=")
    blank = _rows(client, "user=%20&since=%20")

    # Then they are ignored: the whole feed, not a 400
    assert empty == blank == unfiltered
    assert ("flagstate", "changed") in unfiltered


def test_audit__environment_without_project__400_project_required(viewer: User) -> None:
    # When an environment is given without its project
    response = signed_in(viewer).get(f"{AUDIT}?environment=production&flag=f")

    # Then 400 naming both fields
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert [(error["field"], error["code"]) for error in body["errors"]] == [
        ("environment", "project_required"),
        ("flag", "project_required"),
    ]


def test_audit__until_before_since__400_invalid_range(viewer: User) -> None:
    # When the range ends before it starts
    response = signed_in(viewer).get(f"{AUDIT}?since=2026-03-02&until=2026-03-01")

    # Then 400 on until
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("until", "invalid_range")
    ]


def test_audit__since_not_a_time__400_invalid(viewer: User) -> None:
    # When since is not ISO 8601
    response = signed_in(viewer).get(f"{AUDIT}?since=yesterday")

    # Then 400 on since
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("since", "invalid")]


def test_audit__unknown_flag_of_the_project__404_saying_which(
    viewer: User, boolean_flag: Flag
) -> None:
    # When a flag the project does not have is asked for
    response = signed_in(viewer).get(f"{AUDIT}?project=demo&flag=nope")

    # Then 404, saying what was not found where
    assert response.status_code == 404
    assert (response.json()["code"], response.json()["detail"]) == (
        "not_found",
        "No flag nope in project demo.",
    )


def test_audit__deleted_flag_by_key__its_history_with_its_deletion(
    viewer: User, editor: User, project: Project
) -> None:
    # Given a flag toggled in staging, then deleted with its states (states first: a state's
    # off variant is protected, so a flag cannot take its states and variants with it)
    flag = services.flag_create(project=project, key="gone", name="Gone", actor=editor)
    state = flag.states.get(environment__key="staging")
    services.flag_toggle(state=state, enabled=True, actor=editor)
    for each in FlagState.objects.filter(flag=flag):
        common.delete(each, editor)
    common.delete(Flag.objects.get(pk=flag.pk), editor)

    # When the feed is asked for the deleted flag by its key
    rows = _rows(signed_in(viewer), "project=demo&flag=gone&page_size=100")

    # Then its whole life is there, its deletion included
    assert sorted(set(rows)) == [
        ("flag", "created"),
        ("flag", "deleted"),
        ("flagstate", "changed"),
        ("flagstate", "created"),
        ("flagstate", "deleted"),
        ("variant", "created"),
        ("variant", "deleted"),
    ]
