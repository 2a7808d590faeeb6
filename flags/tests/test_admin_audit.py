"""The audit log in the admin (/admin/audit/) and everyone's recent changes on the index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from pytest_django import DjangoAssertNumQueries
from pytest_django.live_server_helper import LiveServer

from accounts import roles
from accounts.models import User
from accounts.tests.factories import make_user
from flags import services
from flags.history import feed
from flags.history.recording import reason
from flags.models import Environment, Flag, FlagState, Project, Segment
from flags.services import common

from .browser import MARKS, PHONE, chromium, sign_in

AUDIT = "/admin/audit/"
COUNTRY = {"attribute": "country", "operator": "in", "values": ["DE"]}


def _page(client: Client, user: User, query: str = "") -> Any:
    client.force_login(user)
    return client.get(f"{AUDIT}{query}")


def _entries(response: Any) -> list[Any]:
    return [row.entry for row in response.context["rows"]]


def _toggle(flag: Flag, environment: Environment, actor: User | None, enabled: bool = True) -> None:
    state = FlagState.objects.get(flag=flag, environment=environment)
    services.flag_toggle(state=state, enabled=enabled, actor=actor)


@pytest.mark.parametrize("role", roles.ROLES)
def test_audit_page__each_role__200_with_changes_in_words(
    role: str, client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout turned on in staging by the editor
    _toggle(boolean_flag, staging, editor)
    reader = make_user(username=f"reader-{role.lower().replace(' ', '-')}", role=role)

    # When someone in the role opens the audit log
    response = _page(client, reader)

    # Then it lists the toggle in words
    assert response.status_code == 200
    newest = _entries(response)[0]
    assert (newest.subject, newest.username) == ("new-checkout in Staging", "editor")
    assert "Enabled: off → on" in response.content.decode()


def test_audit_page__user_without_a_role__403(client: Client, project: Project) -> None:
    # Given a staff user in no role
    nobody = make_user(username="nobody")

    # When they open the audit log
    response = _page(client, nobody)

    # Then they may not
    assert response.status_code == 403


def test_audit_page__signed_out__sent_to_the_login_page(client: Client) -> None:
    # When someone not signed in opens the audit log
    response = client.get(AUDIT)

    # Then the admin's login page takes them
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/audit/"


def test_audit_page__administrator__changed_by_links_to_the_person(
    client: Client, administrator: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a toggle by the editor
    _toggle(boolean_flag, staging, editor)

    # When an administrator (who may see people) opens the audit log
    response = _page(client, administrator)

    # Then the editor's name links to their page, and the subject to the flag
    html = response.content.decode()
    person = f"/admin/accounts/user/{editor.pk}/change/"
    assert f'<a href="{person}" data-testid="history-user-link">editor</a>' in html
    assert f'href="/admin/flags/flag/{boolean_flag.pk}/change/"' in html


def test_audit_page__viewer__changed_by_is_plain_text(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a toggle by the editor
    _toggle(boolean_flag, staging, editor)

    # When a viewer (who may not see people) opens the audit log
    response = _page(client, viewer)

    # Then the name is there, without a link to the person
    html = response.content.decode()
    assert response.context["rows"][0].user_url is None
    assert 'data-testid="history-user-link"' not in html
    assert '<td data-label="Changed by" data-testid="history-who">editor</td>' in html


def test_audit_page__reasons__shown_when_given_and_blank_otherwise(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a toggle with a reason, then one without
    with reason("Incident 4711"):
        _toggle(boolean_flag, staging, editor)
    _toggle(boolean_flag, staging, editor, enabled=False)

    # When the audit log is opened
    response = _page(client, viewer)

    # Then the reason is shown for the first, the second's cell is empty, and "None" is nowhere
    html = response.content.decode()
    assert [e.reason for e in _entries(response)[:2]] == [None, "Incident 4711"]
    cell = '<td class="fs-history-reason" data-label="Reason" data-testid="history-reason">'
    assert f"{cell}Incident 4711</td>" in html
    assert f"{cell}</td>" in html
    assert "None" not in html


def test_audit_page__filtered_by_project__only_that_projects_changes(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a change in demo and a new project other with a flag
    _toggle(boolean_flag, staging, editor)
    other = services.project_create(key="other", name="Other")
    services.flag_create(project=other, key="elsewhere", name="Elsewhere", actor=editor)

    # When filtered by project other
    response = _page(client, viewer, f"?project={other.pk}")

    # Then only other's project, environments, flag, variants and states are listed
    found = _entries(response)
    assert {e.flag_key for e in found} == {None, "elsewhere"}
    assert {e.model for e in found} == {"project", "environment", "flag", "variant", "flagstate"}
    assert response.context["page_obj"].paginator.count == 1 + 3 + 1 + 2 + 3


def test_audit_page__filtered_by_environment__its_states_rules_and_conditions(  # fixtures
    client: Client,
    viewer: User,
    editor: User,
    release_manager: User,
    boolean_flag: Flag,
    staging: Environment,
    production: Environment,
) -> None:
    # Given changes in staging (a rule with a condition) and in production
    state = boolean_flag.states.get(environment=staging)
    services.rule_create(state=state, serve={"variant": "on"}, conditions=[COUNTRY], actor=editor)
    _toggle(boolean_flag, production, release_manager)

    # When filtered by staging
    response = _page(client, viewer, f"?environment={staging.pk}")

    # Then only staging's rows: its environment, its state, the rule and its condition
    found = _entries(response)
    assert {e.environment_name for e in found} == {"Staging"}
    assert sorted((e.model, e.kind) for e in found) == [
        ("condition", "created"),
        ("environment", "created"),
        ("flagstate", "created"),
        ("rule", "created"),
    ]


def test_audit_page__filtered_by_flag__deleted_rule_and_used_segment_still_listed(  # fixtures
    client: Client,
    viewer: User,
    editor: User,
    project: Project,
    boolean_flag: Flag,
    string_flag: Flag,
    staging: Environment,
    beta_testers: Segment,
) -> None:
    # Given a rule of new-checkout using beta testers, with a condition, then deleted; beta
    # testers renamed afterwards; banner-text toggled
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state,
        serve={"variant": "on"},
        description="EU",
        conditions=[COUNTRY],
        segments=[beta_testers],
        actor=editor,
    )
    services.rule_delete(rule=rule, actor=editor)
    services.segment_update(segment=beta_testers, actor=editor, name="Beta people")
    _toggle(string_flag, staging, editor)

    # When filtered by new-checkout
    response = _page(client, viewer, f"?project={project.pk}&flag=new-checkout")

    # Then the deleted rule, its deleted condition and the segment's changes are there, and
    # nothing of banner-text
    found = _entries(response)
    kinds = {(e.model, e.kind) for e in found}
    assert {("rule", "deleted"), ("condition", "deleted"), ("segment", "changed")} <= kinds
    assert "Condition of rule “EU” in Staging · new-checkout" in {e.subject for e in found}
    assert "Segment Beta people" in {e.subject for e in found}
    assert {e.flag_key for e in found} == {"new-checkout", None}
    assert {e.model for e in found if e.flag_key is None} == {"segment", "condition"}


def test_audit_page__filtered_by_a_deleted_flags_key__its_history_still_listed(
    client: Client, viewer: User, editor: User, project: Project
) -> None:
    # Given a flag deleted with its states (states first: their off variant is protected)
    flag = services.flag_create(project=project, key="gone", name="Gone", actor=editor)
    for state in FlagState.objects.filter(flag=flag):
        common.delete(state, editor)
    common.delete(Flag.objects.get(pk=flag.pk), editor)

    # When the audit log is filtered by its key
    response = _page(client, viewer, f"?project={project.pk}&flag=gone")

    # Then its deletion is there, named, with no link to a page that no longer exists
    deleted = next(row for row in response.context["rows"] if row.entry.model == "flag")
    assert (deleted.entry.kind, deleted.entry.subject, deleted.flag_url) == (
        "deleted",
        "Flag gone",
        None,
    )
    assert response.context["form"].errors == {}


def test_audit_page__filtered_by_person__only_their_changes(  # fixtures
    client: Client,
    viewer: User,
    editor: User,
    release_manager: User,
    boolean_flag: Flag,
    staging: Environment,
    production: Environment,
) -> None:
    # Given toggles by the editor and by the release manager
    _toggle(boolean_flag, staging, editor)
    _toggle(boolean_flag, production, release_manager)

    # When filtered by the release manager's username
    response = _page(client, viewer, "?actor=release")

    # Then only theirs
    found = _entries(response)
    assert [(e.username, e.subject) for e in found] == [("release", "new-checkout in Production")]


def test_audit_page__filtered_by_dates__days_inclusive(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given three toggles recorded on 9, 10 (late evening) and 11 January
    for enabled in (True, False, True):
        _toggle(boolean_flag, staging, editor, enabled=enabled)
    toggles = FlagState.history.filter(history_type="~").order_by("history_id")
    for toggle, moment in zip(
        toggles,
        (
            datetime(2026, 1, 9, 12, tzinfo=UTC),
            datetime(2026, 1, 10, 23, 59, tzinfo=UTC),
            datetime(2026, 1, 11, 0, 0, tzinfo=UTC),
        ),
        strict=True,
    ):
        FlagState.history.filter(history_id=toggle.history_id).update(history_date=moment)

    # When filtered from 10 to 10 January
    response = _page(client, viewer, "?since=2026-01-10&until=2026-01-10")

    # Then only the toggle of the 10th, late as it was
    found = _entries(response)
    assert [(e.date, e.changes[0].new) for e in found] == [
        (datetime(2026, 1, 10, 23, 59, tzinfo=UTC), "off")
    ]


def test_audit_page__environment_of_another_project__error_next_to_the_field(
    client: Client, viewer: User, project: Project
) -> None:
    # Given another project
    other = services.project_create(key="other", name="Other")
    elsewhere = other.environments.get(key="staging")

    # When demo is chosen with other's staging
    response = _page(client, viewer, f"?project={project.pk}&environment={elsewhere.pk}")

    # Then the form says so and lists nothing
    assert response.status_code == 200
    message = f"Select a valid choice. {elsewhere.pk} is not one of the available choices."
    assert response.context["form"].errors == {"environment": [message]}
    assert response.context["rows"] == []


def test_audit_page__unknown_flag_key__error_next_to_the_field(
    client: Client, viewer: User, project: Project
) -> None:
    # When a flag key that does not exist is asked for
    response = _page(client, viewer, f"?project={project.pk}&flag=nope")

    # Then the form says so
    assert response.context["form"].errors == {"flag": ["There is no flag nope in Demo."]}
    assert "There is no flag nope in Demo." in response.content.decode()


def test_audit_page__65_changes__50_then_15_in_feed_order(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given 65 toggles by the editor
    for number in range(65):
        _toggle(boolean_flag, staging, editor, enabled=number % 2 == 0)
    expected = [row["history_id"] for row in feed.audit_rows(user_id=editor.pk)]

    # When both pages are read
    first = _page(client, viewer, "?actor=editor")
    second = _page(client, viewer, "?actor=editor&page=2")

    # Then 50 then 15, newest first, exactly the feed's order (the second page is read from the
    # end of the feed, so this checks that it is put back in order)
    assert [e.history_id for e in _entries(first)] == expected[:50]
    assert [e.history_id for e in _entries(second)] == expected[50:]
    assert 'href="?actor=editor&amp;page=2"' in first.content.decode()
    assert "65 changes" in second.content.decode()


def test_audit_page__more_changes_than_counted__more_than_n_and_every_page_reachable(
    client: Client,
    viewer: User,
    editor: User,
    boolean_flag: Flag,
    staging: Environment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 65 toggles by the editor, and pages that count at most 40 rows (10 000 in use)
    for number in range(65):
        _toggle(boolean_flag, staging, editor, enabled=number % 2 == 0)
    expected = [row["history_id"] for row in feed.audit_rows(user_id=editor.pk)]
    monkeypatch.setattr(feed, "COUNTED_AT_MOST", 40)
    monkeypatch.setattr("flagship.admin_site.PER_PAGE", 20)

    # When the first, the last counted, the one past them and the empty fifth page are read
    first, second, third, fourth = (
        _page(client, viewer, f"?actor=editor&page={number}") for number in (1, 2, 3, 4)
    )

    # Then it says "more than 40 changes", pages 1 to 3 are linked, and past the counted rows
    # the pages go on, newest first in the feed's order, with a link to older changes while full
    html = first.content.decode()
    assert 'data-testid="audit-count">more than 40 changes<' in html, html[
        html.find("audit-pagination") :
    ][:1500]
    assert 'href="?actor=editor&amp;page=3"' in html
    assert [e.history_id for e in _entries(first)] == expected[:20]
    assert [e.history_id for e in _entries(second)] == expected[20:40]
    assert [e.history_id for e in _entries(third)] == expected[40:60]
    assert 'data-testid="audit-older"' in third.content.decode()
    assert [e.history_id for e in _entries(fourth)] == expected[60:]
    assert 'data-testid="audit-older"' not in fourth.content.decode()
    # And a page past every row is the last numbered page (Django's get_page)
    assert [e.history_id for e in _entries(_page(client, viewer, "?actor=editor&page=9"))] == (
        expected[40:60]
    )


@pytest.mark.parametrize("count", [3, 12])
def test_audit_page__3_or_12_changed_flags__same_number_of_queries(  # fixtures
    count: int,
    client: Client,
    viewer: User,
    editor: User,
    project: Project,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    # Given flags toggled and given a rule with a condition, by the editor
    for number in range(count):
        flag = services.flag_create(project=project, key=f"f-{number:02}", name="F", actor=editor)
        state = flag.states.get(environment__key="staging")
        services.flag_toggle(state=state, enabled=True, actor=editor)
        services.rule_create(
            state=state, serve={"variant": "on"}, conditions=[COUNTRY], actor=editor
        )
    client.force_login(viewer)

    # When / Then: session, user, two for permissions, the form's environments, chosen project
    # and person, the count, the page, the entries (14: see test_history_entries), which flags
    # still exist, the flag keys offered and the projects listed; and, once per process,
    # FlagShip's own project (left out for a viewer: flags.capabilities.hidden_project_id),
    # with the ids of its live flags, environments and states and of their history's flags,
    # environments, segments, states and rules (flags.history.feed.hidden_scope: six here, as
    # the history of its flags is empty, so no query reads its states' and rules' ids)
    with django_assert_num_queries(33):
        response = client.get(f"{AUDIT}?actor=editor&project={project.pk}")
    assert response.status_code == 200
    assert len(response.context["rows"]) == min(50, count * 9)


def test_admin_index__recent_changes__another_persons_toggle_linked_to_its_flag(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given the editor turned new-checkout on in staging
    _toggle(boolean_flag, staging, editor)
    client.force_login(viewer)

    # When the viewer opens the admin's index
    response = client.get("/admin/")

    # Then its sidebar lists the editor's toggle first, linked to the flag, with a link to all
    # changes, and the quick links lead to the audit log
    html = response.content.decode()
    newest = response.context["recent_changes"][0]
    assert (newest.entry.subject, newest.entry.username) == ("new-checkout in Staging", "editor")
    assert newest.flag_url == f"/admin/flags/flag/{boolean_flag.pk}/change/"
    assert len(response.context["recent_changes"]) == 10
    assert (
        f'<a href="/admin/flags/flag/{boolean_flag.pk}/change/">new-checkout in Staging</a>' in html
    )
    assert "Enabled: off → on" in html
    assert '<a href="/admin/audit/" data-testid="all-changes-link">All changes →</a>' in html
    assert 'data-testid="audit-link"' in html
    assert "Recent actions" not in html


def test_admin_index__user_without_a_role__no_recent_changes(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a change, and a staff user in no role
    _toggle(boolean_flag, staging, editor)
    client.force_login(make_user(username="nobody"))

    # When they open the index
    response = client.get("/admin/")

    # Then no history is shown to them, nor a link to it
    html = response.content.decode()
    assert response.status_code == 200
    assert "recent_changes" not in response.context
    assert 'data-testid="recent-changes"' not in html
    assert 'data-testid="audit-link"' not in html


# --- In a real browser, 390 px wide --------------------------------------------------------------


def browser_test(test: Any) -> Any:
    """The marks of a browser test (flags/tests/browser.py)."""
    for mark in reversed(MARKS):
        test = mark(test)
    return test


@pytest.fixture
def phone(live_server: LiveServer) -> Iterator[Any]:
    """A function opening a page of the admin as a user, in a 390 px wide Chromium."""
    with chromium() as browser:

        def open_page(user: User, path: str) -> Any:
            page = sign_in(browser, live_server.url, user, PHONE)
            page.goto(path)
            return page

        yield open_page


@browser_test
def test_audit_page__390_px_wide__no_sideways_scrolling(phone: Any) -> None:
    # Given a flag with a long key, a rule with long values and a reason, read by a viewer
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(
        project=project, key="a-flag-with-a-rather-long-key-for-a-phone", name="Long"
    )
    editor = make_user(username="eddie", role=roles.EDITOR)
    state = flag.states.get(environment__key="staging")
    with reason("A reason long enough to need more than one line on a phone screen"):
        services.rule_create(
            state=state,
            serve={"variant": "on"},
            conditions=[
                {
                    "attribute": "email",
                    "operator": "in",
                    "values": [f"someone-{n}@example.com" for n in range(8)],
                }
            ],
            actor=editor,
        )
    viewer = make_user(username="vera", role=roles.VIEWER)

    # When the viewer opens the audit log on a phone
    page = phone(viewer, AUDIT)

    # Then the rows are there and the page is no wider than the screen
    assert page.get_by_test_id("history-row").count() > 0
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 390
