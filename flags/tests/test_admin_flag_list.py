"""The flag list: columns per environment of one project, filters, search, constant queries."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.html import Element
from django.test.utils import CaptureQueriesContext
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, Project

from .admin_pages import attributes, find_all, page, text

URL = "/admin/flags/flag/"


def _flags(project: Project, first: int, last: int) -> None:
    tag = services.tag_create(name=f"team-{first}")
    for number in range(first, last):
        flag = services.flag_create(
            project=project, key=f"flag-{number:03}", name=f"Flag {number}", tags=[tag]
        )
        if number % 2:
            state = flag.states.get(environment__key="development")
            services.flag_toggle(state=state, enabled=True, actor=None)


def _shown(client: Client) -> tuple[int, int]:
    """The number of queries of one flag list page, and the number of flags it lists."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


def _columns(root: Element) -> list[str]:
    return [
        text(th)
        for th, _ in find_all(root, "th")
        if "column-environment_" in (attributes(th).get("class") or "")
    ]


def test_flag_list__5_and_50_flags__same_number_of_queries(
    client: Client,
    release_manager: User,
    project: Project,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    # Given 5 flags with tags and states, seen once (caches warm)
    _flags(project, 0, 5)
    client.force_login(release_manager)
    client.get(URL)

    # When the list is shown with 5, then with 50 flags (stale flags: 6 queries of flags.stale)
    with django_assert_max_num_queries(26):
        queries_5, listed_5 = _shown(client)
    _flags(project, 5, 50)
    with django_assert_max_num_queries(26):
        queries_50, listed_50 = _shown(client)

    # Then it costs the same number of queries
    assert (listed_5, listed_50) == (5, 50)
    assert queries_5 == queries_50


def test_flag_list__no_project_chosen__columns_are_first_projects_environments(
    client: Client, viewer: User, project: Project, boolean_flag: Flag
) -> None:
    # Given a second project whose name sorts after "Demo", with a flag of its own
    other = services.project_create(
        key="zeta",
        name="Zeta",
        environments=(("qa", "QA", False, "#123456"), ("live", "Live", True, "#654321")),
    )
    services.flag_create(project=other, key="zeta-flag", name="Zeta flag")
    client.force_login(viewer)

    # When the list is opened without choosing a project, then with ?project=zeta
    default = page(client.get(URL))
    chosen = page(client.get(URL, {"project": "zeta"}))

    # Then the columns are the chosen project's environments, in order, and only its flags
    assert _columns(default) == ["Development", "Staging", "Production protected"]
    assert find_all(default, data_testid="state-new-checkout-production") != []
    assert find_all(default, data_testid="state-zeta-flag-qa") == []
    assert _columns(chosen) == ["QA", "Live protected"]
    assert find_all(chosen, data_testid="state-zeta-flag-live") != []
    assert find_all(chosen, data_testid="state-new-checkout-production") == []


def test_flag_list__filtered_on_in_staging__lists_only_flags_on_there(
    client: Client, viewer: User, boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout on in staging, banner-text off
    services.flag_toggle(
        state=boolean_flag.states.get(environment=staging), enabled=True, actor=None
    )
    client.force_login(viewer)

    # When the list is filtered on "Staging: On", then "Staging: Off"
    on = client.get(URL, {"in_staging": "on"})
    off = client.get(URL, {"in_staging": "off"})

    # Then each lists exactly the matching flag
    assert [flag.key for flag in on.context["cl"].result_list] == ["new-checkout"]
    assert [flag.key for flag in off.context["cl"].result_list] == ["banner-text"]


def test_flag_list__archived_flag__listed_only_with_the_archived_filter(
    client: Client, release_manager: User, boolean_flag: Flag, string_flag: Flag
) -> None:
    # Given an archived flag
    services.flag_archive(flag=string_flag, actor=None)
    client.force_login(release_manager)

    # When the list is shown by default, and with archived=yes
    live = client.get(URL)
    archived = client.get(URL, {"archived": "yes"})

    # Then the archived flag shows only in the archived view
    assert [flag.key for flag in live.context["cl"].result_list] == ["new-checkout"]
    assert [flag.key for flag in archived.context["cl"].result_list] == ["banner-text"]


def test_flag_list__search_tag_and_lifecycle__narrow_the_list(
    client: Client, viewer: User, project: Project, boolean_flag: Flag
) -> None:
    # Given flags that differ by description, tag and lifecycle
    tag = services.tag_create(name="payments")
    services.flag_create(
        project=project,
        key="pay-later",
        name="Pay later",
        description="Klarna instalments",
        tags=[tag],
        lifecycle=Flag.Lifecycle.EXPERIMENT,
    )
    client.force_login(viewer)

    # When searching the description, filtering by tag, and by lifecycle
    searched = client.get(URL, {"q": "klarna"})
    tagged = client.get(URL, {"tags__id__exact": str(tag.pk)})
    experiments = client.get(URL, {"lifecycle__exact": "experiment"})

    # Then each finds the one flag
    for response in (searched, tagged, experiments):
        assert [flag.key for flag in response.context["cl"].result_list] == ["pay-later"]


def test_flag_list__row_checkbox__joined_to_the_action_form(
    client: Client, release_manager: User, boolean_flag: Flag
) -> None:
    # Given a flag
    client.force_login(release_manager)

    # When the list is shown
    root = page(client.get(URL))

    # Then its row has a checkbox for the actions, outside the table's forms, named for the flag
    (checkbox, _), *others = find_all(root, "input", name="_selected_action")
    assert others == []
    assert attributes(checkbox) == {
        "type": "checkbox",
        "name": "_selected_action",
        "value": str(boolean_flag.pk),
        "class": "action-select",
        "form": "changelist-form",
        "aria-label": "Select new-checkout for an action",
    }
