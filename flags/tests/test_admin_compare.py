"""Environments side by side: one flag in each environment, or every flag of a project at once."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import Client
from django.test.html import Element
from django.test.utils import CaptureQueriesContext
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from accounts.tests.factories import make_user
from flags import services
from flags.admin.compare import differing_parts
from flags.models import Environment, Flag, FlagState, Project, Segment

from .admin_pages import attributes, find_all, find_one, page, text

ALL_URL = "/admin/flags/flag/compare/"
ENVIRONMENTS = ("development", "staging", "production")


def _url(flag: Flag) -> str:
    return f"/admin/flags/flag/{flag.pk}/compare/"


def _state(flag: Flag, environment: str) -> FlagState:
    return flag.states.select_related("environment").get(environment__key=environment)


def _row_keys(root: Element) -> list[str]:
    return [
        str(attributes(row)["data-testid"]).removeprefix("row-")
        for row, _ in find_all(root, "tr")
        if str(attributes(row).get("data-testid", "")).startswith("row-")
    ]


def _values(root: Element, row: str) -> list[str]:
    """The text of a row's cell in each environment, without the screen-reader "differs"."""
    return [text(find_one(root, data_testid=f"value-{row}-{env}")[0]) for env in ENVIRONMENTS]


def _differs(root: Element, row: str) -> list[str | None]:
    return [
        attributes(find_one(root, data_testid=f"cell-{row}-{env}")[0]).get("data-differs")
        for env in ENVIRONMENTS
    ]


def _summaries(root: Element, key: str, environments: tuple[str, ...] = ENVIRONMENTS) -> list[str]:
    return [text(find_one(root, data_testid=f"summary-{key}-{env}")[0]) for env in environments]


def _listed(root: Element) -> list[tuple[str, str | None]]:
    """The project page's flags in order, each with its data-differs."""
    return [
        (str(attributes(row)["data-testid"]).removeprefix("flag-"), attributes(row)["data-differs"])
        for row, _ in find_all(root, "tr")
        if str(attributes(row).get("data-testid", "")).startswith("flag-")
    ]


# --- One flag ----------------------------------------------------------------------------------


def test_compare_flag__same_everywhere__no_row_differs(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    # Given new-checkout as created: off, serving off, in every environment
    client.force_login(viewer)

    # When a viewer compares its environments
    response = client.get(_url(boolean_flag))

    # Then every part reads the same in every column and nothing is marked as differing
    assert response.status_code == 200
    root = page(response)
    assert _row_keys(root) == ["enabled", "off-variant", "prerequisites", "default-serve"]
    assert find_all(root, data_differs="true") == []
    assert len(find_all(root, data_differs="false")) == 12
    assert _values(root, "enabled") == ["Off", "Off", "Off"]
    assert _values(root, "off-variant") == ["off", "off", "off"]
    assert _values(root, "prerequisites") == ["none", "none", "none"]
    assert _values(root, "default-serve") == ["off", "off", "off"]


def test_compare_flag__columns__environment_order_dot_protected_mark_and_state_link(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    # Given new-checkout in demo's three environments (production protected)
    client.force_login(viewer)

    # When its comparison is shown
    root = page(client.get(_url(boolean_flag)))

    # Then the columns follow the environments' order, each linking to that flag state's page,
    # with the environment's colour dot, and production marked as protected
    headers = [find_one(root, "th", data_testid=f"column-{env}")[0] for env in ENVIRONMENTS]
    assert [text(header) for header in headers] == [
        "Development",
        "Staging",
        "Production protected",
    ]
    for env in ENVIRONMENTS:
        link = find_one(root, "a", data_testid=f"state-link-{env}")[0]
        assert attributes(link)["href"] == (
            f"/admin/flags/flagstate/{_state(boolean_flag, env).pk}/change/"
        )
        dot = find_one(link, "i")[0]
        color = _state(boolean_flag, env).environment.color
        assert attributes(dot) == {"class": "fs-dot", "style": f"background:{color}"}


def test_compare_flag__rule_only_in_production__row_differs_and_reads_dash_elsewhere(
    client: Client, release_manager: User, boolean_flag: Flag, beta_testers: Segment
) -> None:
    # Given a rule for beta testers in Germany, in production only
    services.rule_create(
        state=_state(boolean_flag, "production"),
        serve={"variant": "on"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
        segments=[beta_testers],
    )
    client.force_login(release_manager)

    # When the flag's environments are compared
    root = page(client.get(_url(boolean_flag)))

    # Then rule 1 differs in every column: "—" where it is missing, in words (the segment by its
    # name) in production; nothing else differs
    assert _row_keys(root) == ["enabled", "off-variant", "prerequisites", "rule-1", "default-serve"]
    assert _differs(root, "rule-1") == ["true", "true", "true"]
    assert _values(root, "rule-1") == [
        "—",
        "—",
        "If country is one of DE Segments Beta testers Rollout everyone Serves on",
    ]
    assert len(find_all(root, data_differs="true")) == 3
    cell = find_one(root, data_testid="cell-rule-1-development")[0]
    hidden = find_one(cell, "span", **{"class": "visually-hidden"})[0]
    assert text(hidden) == "(differs)"
    assert "fs-differs" in str(attributes(cell)["class"]).split()


def test_compare_flag__rollout_25_and_50__differs_showing_both(
    client: Client, release_manager: User, boolean_flag: Flag
) -> None:
    # Given a catch-all rule rolled out to 25 % in development and staging, 50 % in production
    for env, rollout in (("development", 25_000), ("staging", 25_000), ("production", 50_000)):
        services.rule_create(
            state=_state(boolean_flag, env), serve={"variant": "on"}, rollout=rollout
        )
    client.force_login(release_manager)

    # When the environments are compared
    root = page(client.get(_url(boolean_flag)))

    # Then rule 1 differs (rule ids, which always differ, are not compared), showing each rollout
    assert _differs(root, "rule-1") == ["true", "true", "true"]
    rollouts = [
        text(find_one(root, data_testid=f"value-rule-1-{env}")[0]).split(" Rollout ")[1]
        for env in ENVIRONMENTS
    ]
    assert rollouts == ["25 % Serves on", "25 % Serves on", "50 % Serves on"]
    assert _differs(root, "default-serve") == ["false", "false", "false"]


def test_compare_flag__same_rule_everywhere__not_marked_although_rule_ids_differ(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    # Given the same 30 % rule in every environment (each with its own id)
    for env in ENVIRONMENTS:
        services.rule_create(
            state=_state(boolean_flag, env), serve={"variant": "on"}, rollout=30_000
        )
    client.force_login(viewer)

    # When the environments are compared
    root = page(client.get(_url(boolean_flag)))

    # Then rule 1 is the same everywhere
    assert _differs(root, "rule-1") == ["false", "false", "false"]
    assert find_all(root, data_differs="true") == []


def test_compare_flag__split_default_serve__shown_in_words(
    client: Client, release_manager: User, string_flag: Flag
) -> None:
    # Given banner-text on with a 50/50 split of sale and new as staging's default serve
    split = {"split": [{"variant": "sale", "weight": 50_000}, {"variant": "new", "weight": 50_000}]}
    services.flag_state_update(
        state=_state(string_flag, "staging"), actor=None, default_serve=split
    )
    client.force_login(release_manager)

    # When the environments are compared
    root = page(client.get(_url(string_flag)))

    # Then the default serve reads as words and differs; the off variant does not
    assert _values(root, "default-serve") == ["none", "sale 50 %, new 50 %", "none"]
    assert _differs(root, "default-serve") == ["true", "true", "true"]
    assert _differs(root, "off-variant") == ["false", "false", "false"]


def test_compare_flag__prerequisite_and_on_in_staging__both_rows_differ(
    client: Client, viewer: User, boolean_flag: Flag, string_flag: Flag
) -> None:
    # Given banner-text on in staging, where it needs new-checkout to serve on
    state = _state(string_flag, "staging")
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.prerequisite_add(state=state, parent=boolean_flag, variants=["on"], actor=None)
    client.force_login(viewer)

    # When banner-text's environments are compared
    root = page(client.get(_url(string_flag)))

    # Then on/off and prerequisites differ, in words
    assert _values(root, "enabled") == ["Off", "On", "Off"]
    assert _differs(root, "enabled") == ["true", "true", "true"]
    assert _values(root, "prerequisites") == ["none", "new-checkout serves on", "none"]
    assert _differs(root, "prerequisites") == ["true", "true", "true"]


def test_compare_flag__archived__says_sdks_receive_it_nowhere(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    # Given an archived flag
    services.flag_archive(flag=boolean_flag, actor=None)
    client.force_login(viewer)

    # When its comparison is opened
    response = client.get(_url(boolean_flag))

    # Then the page says there is nothing to compare, and shows no table
    assert response.status_code == 200
    root = page(response)
    assert text(find_one(root, data_testid="in-no-ruleset")[0]) == (
        "This flag is archived: SDKs receive it in no environment, so there is nothing to compare."
    )
    assert find_all(root, data_testid="comparison") == []


def test_flag_page__object_tools__link_to_the_comparison_and_the_app_form_kept(
    client: Client, editor: User, boolean_flag: Flag
) -> None:
    # Given an editor
    client.force_login(editor)

    # When the flag's page is shown
    root = page(client.get(f"/admin/flags/flag/{boolean_flag.pk}/change/"))

    # Then its object tools link to the comparison (history stays there too), and the flags
    # app's change form (its reason for the change) is still the one extended
    link = find_one(root, "a", data_testid="compare-link")[0]
    assert attributes(link)["href"] == _url(boolean_flag)
    assert text(link) == "Compare environments"
    assert len(find_all(root, "a", **{"class": "historylink"})) == 1
    assert len(find_all(root, data_testid="reason-fieldset")) == 1


def _document(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "enabled": True,
        "off_variant": "off",
        "rules": [rule],
        "default_serve": {"variant": "off"},
    }


def test_differing_parts__1_and_1_0_in_a_condition__rule_differs() -> None:
    # Given the same rule in two documents but for a number written 1 in one and 1.0 in the other
    condition = {"attribute": "tier", "operator": "num_eq"}
    one = _document(
        {"id": "7", "conditions": [{**condition, "values": [1]}], "serve": {"variant": "on"}}
    )
    one_point_zero = _document(
        {"id": "9", "conditions": [{**condition, "values": [1.0]}], "serve": {"variant": "on"}}
    )

    # When their parts are compared
    differing = differing_parts([one, one_point_zero])

    # Then the rule differs (documents are compared as JSON, as SDKs read them), nothing else
    assert differing == ["rule-1"]


def test_differing_parts__members_in_another_order__same() -> None:
    # Given the same rule written with its members in another order, and another id
    first = _document({"id": "1", "rollout": 5_000, "serve": {"variant": "on"}})
    second = _document({"serve": {"variant": "on"}, "rollout": 5_000, "id": "2"})

    # When their parts are compared
    differing = differing_parts([first, second])

    # Then nothing differs
    assert differing == []


# --- Every flag of a project -------------------------------------------------------------------


def _on_everywhere_but_production(flag: Flag) -> None:
    for env in ("development", "staging"):
        state = _state(flag, env)
        services.flag_state_update(
            state=state, actor=None, enabled=True, default_serve={"variant": "on"}
        )


def test_compare_project__default__only_differing_flags_with_summaries(
    client: Client, viewer: User, boolean_flag: Flag, string_flag: Flag, production: Environment
) -> None:
    # Given new-checkout on (serving on) except in production, a third flag rolled out to 30 % in
    # production only, and banner-text the same everywhere
    _on_everywhere_but_production(boolean_flag)
    dark = services.flag_create(project=boolean_flag.project, key="dark-mode", name="Dark mode")
    state = _state(dark, "production")
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(state=state, serve={"variant": "on"}, rollout=30_000)
    client.force_login(viewer)

    # When the project comparison is opened with no choice made
    response = client.get(ALL_URL)

    # Then only the two differing flags are listed, by key, with each environment's summary and
    # what differs, each linking to its own comparison
    assert response.status_code == 200
    root = page(response)
    assert _listed(root) == [("dark-mode", "true"), ("new-checkout", "true")]
    assert _summaries(root, "new-checkout") == ["On · serves on", "On · serves on", "Off"]
    assert _summaries(root, "dark-mode") == ["Off", "Off", "On · 30 %"]
    assert text(find_one(root, data_testid="differs-in-new-checkout")[0]) == (
        "On/off, Default serve"
    )
    assert text(find_one(root, data_testid="differs-in-dark-mode")[0]) == "On/off, Rule 1"
    link = find_one(root, "a", data_testid="compare-new-checkout")[0]
    assert attributes(link)["href"] == _url(boolean_flag)
    assert text(find_one(root, data_testid="differing-count")[0]) == (
        "2 of 3 live flags differ between environments."
    )


def test_compare_project__show_all__differing_first_then_the_same(
    client: Client, viewer: User, boolean_flag: Flag, string_flag: Flag
) -> None:
    # Given new-checkout differing between environments, aa-first and banner-text the same
    _on_everywhere_but_production(boolean_flag)
    services.flag_create(project=boolean_flag.project, key="aa-first", name="First by key")
    client.force_login(viewer)

    # When every flag is asked for
    root = page(client.get(ALL_URL, {"project": "demo", "show": "all"}))

    # Then the differing flag comes first, then the others by key, unmarked
    assert _listed(root) == [
        ("new-checkout", "true"),
        ("aa-first", "false"),
        ("banner-text", "false"),
    ]
    assert _summaries(root, "banner-text") == ["Off", "Off", "Off"]
    assert text(find_one(root, data_testid="differs-in-banner-text")[0]) == "—"


def test_compare_project__other_project_chosen__its_environments_and_flags(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    # Given a second project with two environments, its flag on in qa only
    other = services.project_create(
        key="zeta",
        name="Zeta",
        environments=(("qa", "QA", False, "#123456"), ("live", "Live", True, "#654321")),
    )
    flag = services.flag_create(project=other, key="zeta-flag", name="Zeta flag")
    services.flag_toggle(state=_state(flag, "qa"), enabled=True, actor=None)
    client.force_login(viewer)

    # When zeta is chosen
    root = page(client.get(ALL_URL, {"project": "zeta"}))

    # Then its environments are the columns and its flag the only row
    columns = [
        text(th)
        for th, _ in find_all(root, "th")
        if str(attributes(th).get("data-testid", "")).startswith("column-")
    ]
    assert columns == ["QA", "Live protected"]
    assert _listed(root) == [("zeta-flag", "true")]
    assert _summaries(root, "zeta-flag", ("qa", "live")) == ["On · serves off", "Off"]
    current = find_one(root, "a", data_testid="project-zeta")[0]
    assert attributes(current)["aria-current"] == "page"


def test_flag_list__object_tools__link_to_the_project_comparison(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    # Given a viewer
    client.force_login(viewer)

    # When the flag list of demo is shown
    root = page(client.get("/admin/flags/flag/", {"project": "demo"}))

    # Then it links to demo's comparison next to "Evaluate as…"
    link = find_one(root, "a", data_testid="compare-all-link")[0]
    assert attributes(link)["href"] == f"{ALL_URL}?project=demo"
    assert len(find_all(root, "a", data_testid="evaluate-link")) == 1


# --- Permissions and cost ----------------------------------------------------------------------


def test_compare__viewer__both_pages_200(client: Client, viewer: User, boolean_flag: Flag) -> None:
    # Given a viewer (flags.view_flag)
    client.force_login(viewer)

    # When they open both comparisons
    responses = [client.get(_url(boolean_flag)), client.get(ALL_URL)]

    # Then both are shown
    assert [response.status_code for response in responses] == [200, 200]


def test_compare__staff_without_a_role__both_pages_403(client: Client, boolean_flag: Flag) -> None:
    # Given a staff user in no role group
    client.force_login(make_user(username="nobody"))

    # When they open both comparisons
    responses = [client.get(_url(boolean_flag)), client.get(ALL_URL)]

    # Then both are refused
    assert [response.status_code for response in responses] == [403, 403]


def _flags(project: Project, first: int, last: int) -> None:
    """Flags with a rule and a prerequisite in staging, on in development for odd numbers."""
    parent = Flag.objects.get(project=project, key="new-checkout")
    for number in range(first, last):
        flag = services.flag_create(project=project, key=f"flag-{number:03}", name=f"F{number}")
        state = _state(flag, "staging")
        services.rule_create(
            state=state,
            serve={"variant": "on"},
            rollout=10_000,
            conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
        )
        services.prerequisite_add(state=state, parent=parent, actor=None)
        if number % 2:
            services.flag_toggle(state=_state(flag, "development"), enabled=True, actor=None)


def _cost(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_compare_project__5_and_15_flags__same_number_of_queries(
    client: Client,
    viewer: User,
    project: Project,
    boolean_flag: Flag,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    # Given 5 flags with rules and prerequisites, the page seen once (caches warm)
    _flags(project, 0, 5)
    client.force_login(viewer)
    client.get(ALL_URL, {"show": "all"})

    # When the project comparison is shown with 5, then with 15 flags
    with django_assert_max_num_queries(38):
        queries_5 = _cost(client, f"{ALL_URL}?show=all")
    _flags(project, 5, 15)
    with django_assert_max_num_queries(38):
        queries_15 = _cost(client, f"{ALL_URL}?show=all")

    # Then both cost the same, and every flag is listed
    assert queries_5 == queries_15
    root = page(client.get(ALL_URL, {"show": "all"}))
    assert len(_listed(root)) == 16


def test_compare_flag__5_and_15_flags_in_the_project__same_number_of_queries(
    client: Client,
    viewer: User,
    project: Project,
    boolean_flag: Flag,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    # Given 5 other flags, and new-checkout with a rule in every environment, seen once
    _flags(project, 0, 5)
    for env in ENVIRONMENTS:
        services.rule_create(state=_state(boolean_flag, env), serve={"variant": "on"})
    client.force_login(viewer)
    client.get(_url(boolean_flag))

    # When new-checkout is compared with 5, then with 15 other flags in the project
    with django_assert_max_num_queries(16):
        queries_5 = _cost(client, _url(boolean_flag))
    _flags(project, 5, 15)
    with django_assert_max_num_queries(16):
        queries_15 = _cost(client, _url(boolean_flag))

    # Then the other flags cost nothing
    assert queries_5 == queries_15
