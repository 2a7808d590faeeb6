"""A product manager's day in the admin, in a real headless Chromium, every step by clicking, and
after each step what is stored (not only what the page says).

An editor turns new-checkout on in staging, adds a 30 % rollout, then a rule with a segment and a
country condition that lands in position 1 (before the catch-all); is refused in production by the
toggle, the page and the bulk action. A release manager turns production off with a reason after
a confirmation naming the flag that requires it. The timeline shows all of it with diffs; a
deleted rule comes back by a revert with a preview; "Evaluate as" explains the answer; a viewer
can change nothing. Every page is photographed at 1440 and 390 px, and none scrolls sideways.

Screenshots go to ``$FLAGSHIP_SCREENSHOTS`` when set (the README's picture of the flag list comes
from ``FLAGSHIP_SCREENSHOTS=docs/screenshots``), else to a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts import roles
from accounts.tests.factories import make_user
from flags import services
from flags.models import Environment, Flag, FlagState, Rule, Segment

from .browser import DESKTOP, MARKS, PHONE, chromium, page_width, sign_in

pytestmark = MARKS


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go."""
    configured = os.environ.get("FLAGSHIP_SCREENSHOTS", "")
    folder = Path(configured) if configured else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shop(db: None) -> dict[str, Any]:
    """Demo shop: new-checkout (on in production), express-checkout requiring it there."""
    project = services.project_create(key="demo", name="Demo shop", reason_required=True)
    checkout = services.flag_create(project=project, key="new-checkout", name="New checkout")
    express = services.flag_create(project=project, key="express-checkout", name="Express")
    beta = services.segment_create(
        project=project,
        key="beta-testers",
        name="Beta testers",
        conditions=[
            {"attribute": "email", "operator": "str_ends_with", "values": ["@example.com"]}
        ],
    )
    production = project.environments.get(key="production")
    for flag in (checkout, express):
        services.flag_state_update(
            state=flag.states.get(environment=production),
            actor=None,
            enabled=True,
            default_serve={"variant": "on"},
        )
    services.prerequisite_add(
        state=express.states.get(environment=production), parent=checkout, actor=None
    )
    _more_flags(project)
    return {
        "project": project,
        "checkout": checkout,
        "beta": beta,
        "editor": make_user(username="eddie", role=roles.EDITOR),
        "release_manager": make_user(username="rhea", role=roles.RELEASE_MANAGER),
        "viewer": make_user(username="vera", role=roles.VIEWER),
    }


def _more_flags(project: Any) -> None:
    """A few flags that show what the list says of each state (for its screenshot)."""
    results = services.flag_create(
        project=project,
        key="search-results-per-page",
        name="Search results per page",
        kind=Flag.Kind.NUMBER,
        variants=[("twenty", 20), ("fifty", 50)],
    )
    dark = services.flag_create(project=project, key="dark-mode", name="Dark mode")
    banner = services.flag_create(
        project=project,
        key="banner-text",
        name="Banner text",
        kind=Flag.Kind.STRING,
        variants=[("sale", "Winter sale"), ("sale-de", "Winterschlussverkauf")],
    )
    split = {
        "split": [{"variant": "twenty", "weight": 50000}, {"variant": "fifty", "weight": 50000}]
    }
    for key in ("staging", "production"):
        services.flag_state_update(
            state=results.states.get(environment__key=key),
            actor=None,
            enabled=True,
            default_serve=split,
        )
        state = banner.states.get(environment__key=key)
        services.flag_state_update(
            state=state, actor=None, enabled=True, default_serve={"variant": "sale"}
        )
        services.rule_create(
            state=state,
            serve={"variant": "sale-de"},
            conditions=[{"attribute": "country", "operator": "in", "values": ["DE", "AT"]}],
            description="German-speaking",
        )
    services.flag_toggle(
        state=dark.states.get(environment__key="staging"), enabled=True, actor=None
    )


def _state(flag: Flag, key: str) -> FlagState:
    return FlagState.objects.select_related("environment").get(flag=flag, environment__key=key)


def _rules(state: FlagState) -> list[dict[str, Any]]:
    """The state's rules as stored: what each is made of."""
    return [
        {
            "description": rule.description,
            "conditions": [(c.attribute, c.operator, c.values) for c in rule.conditions.all()],
            "segments": [segment.key for segment in rule.segments.all()],
            "rollout": rule.rollout,
            "serve": rule.serve,
        }
        for rule in Rule.objects.filter(state=state).order_by("order", "id")
    ]


def _photograph(page: Page, shots: Path, name: str) -> None:
    """Screenshots at 1440 and 390 px; the page must not scroll sideways at either."""
    for label, viewport in (("1440", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        page.reload()
        page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
        assert page_width(page) <= viewport["width"], f"{name} scrolls sideways at {label} px"
    page.set_viewport_size(DESKTOP)


def _add_rule(page: Page, **fields: Any) -> None:
    """Fill the rule's form shown in place and add it."""
    editor = page.get_by_test_id("rule-editor")
    if "description" in fields:
        editor.locator("[name=rule-description]").fill(fields["description"])
    for segment in fields.get("segments", []):
        editor.locator(f"input[name=rule-segments][value='{segment.pk}']").check()
    if "rollout" in fields:
        editor.locator("[name=rule-rollout]").fill(fields["rollout"])
    if "condition" in fields:
        attribute, operator, values = fields["condition"]
        editor.locator("[name=rule-conditions-0-attribute]").fill(attribute)
        editor.locator("[name=rule-conditions-0-operator]").select_option(operator)
        editor.locator("[name=rule-conditions-0-values]").fill(values)
    editor.get_by_test_id("save-rule").click()
    expect(page.get_by_test_id("rule-editor")).to_have_count(0)


def test_a_product_managers_day__every_step_stored(
    shop: dict[str, Any], live_server: LiveServer, shots: Path
) -> None:
    checkout: Flag = shop["checkout"]
    beta: Segment = shop["beta"]
    staging, production = _state(checkout, "staging"), _state(checkout, "production")
    with chromium() as browser:
        _editor_morning(browser, live_server, shop, shots)
        # Stored: on in staging, the 30 % rollout after the new rule in position 1
        assert _state(checkout, "staging").enabled is True
        assert _rules(staging) == [
            {
                "description": "German beta testers",
                "conditions": [("country", "in", ["DE"])],
                "segments": ["beta-testers"],
                "rollout": None,
                "serve": {"variant": "on"},
            },
            {
                "description": "30 % of everyone",
                "conditions": [],
                "segments": [],
                "rollout": 30000,
                "serve": {"variant": "on"},
            },
        ]
        _saved_unchanged(browser, live_server, shop)
        _editor_refused_in_production(browser, live_server, shop)
        assert _state(checkout, "production").enabled is True
        _release_manager_turns_production_off(browser, live_server, shop, shots)
        production = _state(checkout, "production")
        assert production.enabled is False
        last = production.history.latest()
        assert (last.history_user, last.history_change_reason) == (
            shop["release_manager"],
            "Checkout errors in payments",
        )
        _timeline_shows_the_day(browser, live_server, shop, shots)
        _revert_brings_the_rule_back(browser, live_server, shop)
        assert [rule["description"] for rule in _rules(staging)] == [
            "German beta testers",
            "30 % of everyone",
        ]
        assert _rules(staging)[0]["segments"] == [beta.key]
        _evaluate_as(browser, live_server, shop, shots)
        _viewer_changes_nothing(browser, live_server, shop, shots)


def _editor_morning(
    browser: Browser, live_server: LiveServer, shop: dict[str, Any], shots: Path
) -> None:
    checkout: Flag = shop["checkout"]
    page = sign_in(browser, live_server.url, shop["editor"])
    # The flag list: turn new-checkout on in staging
    page.goto("/admin/flags/flag/?project=demo")
    page.get_by_test_id("toggle-new-checkout-staging").click()
    expect(page.get_by_test_id("toggle-new-checkout-staging")).to_have_attribute(
        "aria-pressed", "true"
    )
    # Staging's page: a 30 % rollout first (added at the end: there is no catch-all yet)
    page.get_by_role("link", name="new-checkout").first.click()
    page.get_by_test_id("state-link-staging").click()
    page.get_by_test_id("add-rule").click()
    _add_rule(page, description="30 % of everyone", rollout="30")
    expect(page.get_by_test_id("rule-sentence-1")).to_have_text("30 % of everyone → on")
    # Then a rule with a segment and a country: "Add a rule" puts it before the catch-all
    page.get_by_test_id("add-rule").click()
    expect(page.get_by_test_id("rule-editor")).to_contain_text("New rule in position 1")
    _add_rule(
        page,
        description="German beta testers",
        segments=[shop["beta"]],
        condition=("country", "in", "DE"),
    )
    expect(page.get_by_test_id("rule-sentence-1")).to_have_text(
        "If country is one of DE and in segment Beta testers → on"
    )
    expect(page.get_by_test_id("rule-sentence-2")).to_have_text("30 % of everyone → on")
    _photograph(page, shots, "flag-state")
    page.goto(f"/admin/flags/flag/?project={checkout.project.key}")
    _photograph(page, shots, "flag-list")


def _saved_unchanged(browser: Browser, live_server: LiveServer, shop: dict[str, Any]) -> None:
    """Every form of the shop's flags, states, rules and segment saved without a change (rules'
    forms open in place, a 30 % rollout and 50/50 splits among them): nothing stored differs.
    """
    from .test_admin_round_trip import stored  # noqa: PLC0415  # the round-trip proof's reading

    flags = list(Flag.objects.filter(project=shop["project"]).order_by("key"))
    states = FlagState.objects.filter(flag__in=flags).order_by("pk")
    rules = Rule.objects.filter(state__flag__in=flags).order_by("pk")
    urls = [
        *(reverse("admin:flags_flag_change", args=[flag.pk]) for flag in flags),
        *(reverse("admin:flags_flagstate_change", args=[state.pk]) for state in states),
        *(reverse("admin:flags_rule_change", args=[rule.pk]) for rule in rules),  # in place
        reverse("admin:flags_segment_change", args=[shop["beta"].pk]),
    ]
    assert any(rule.rollout == 30000 for rule in rules)
    page = sign_in(browser, live_server.url, shop["release_manager"])
    before = stored()
    for url in urls:
        page.goto(url)
        page.locator("input[name=_save]").click()
        expect(page.locator(".messagelist .success")).to_have_count(1)
        assert stored() == before, f"saving {url} unchanged changed what is stored"


def _editor_refused_in_production(
    browser: Browser, live_server: LiveServer, shop: dict[str, Any]
) -> None:
    checkout: Flag = shop["checkout"]
    page = sign_in(browser, live_server.url, shop["editor"])
    # The toggle: a locked badge saying why, no control
    page.goto("/admin/flags/flag/?project=demo")
    locked = page.get_by_test_id("state-new-checkout-production")
    expect(locked).to_have_attribute("title", "Release managers only")
    expect(page.get_by_test_id("toggle-new-checkout-production")).to_have_count(0)
    # The bulk action: refused before anything is written
    page.locator(f"input.action-select[value='{checkout.pk}']").check()
    page.locator("select[name=action]").select_option("turn_off")
    page.locator("select[name=environment]").select_option(
        str(Environment.objects.get(project=checkout.project, key="production").pk)
    )
    page.locator("button[name=index]").click()
    expect(page.locator(".messagelist .error")).to_contain_text("only release managers")
    # The page: read-only, no save button
    page.goto(reverse("admin:flags_flagstate_change", args=[_state(checkout, "production").pk]))
    expect(page.get_by_test_id("protected-banner")).to_contain_text("only release managers")
    expect(page.locator("input[name=_save]")).to_have_count(0)
    expect(page.get_by_test_id("rule-delete-1")).to_have_count(0)


def _release_manager_turns_production_off(
    browser: Browser, live_server: LiveServer, shop: dict[str, Any], shots: Path
) -> None:
    page = sign_in(browser, live_server.url, shop["release_manager"])
    page.goto("/admin/flags/flag/?project=demo")
    page.get_by_test_id("toggle-new-checkout-production").click()
    # The confirmation names the flag that requires it, and asks for a reason
    expect(page.get_by_test_id("dependent")).to_have_text(["express-checkout"])
    _photograph(page, shots, "toggle-confirmation")
    page.get_by_test_id("confirm-toggle").click()  # no reason: the browser asks for one
    expect(page.locator("#id_reason:invalid")).to_have_count(1)
    assert _state(shop["checkout"], "production").enabled is True
    page.get_by_test_id("reason").fill("Checkout errors in payments")
    page.get_by_test_id("confirm-toggle").click()
    expect(page.get_by_test_id("toggle-new-checkout-production")).to_have_attribute(
        "aria-pressed", "false"
    )


def _timeline_shows_the_day(
    browser: Browser, live_server: LiveServer, shop: dict[str, Any], shots: Path
) -> None:
    page = sign_in(browser, live_server.url, shop["viewer"])
    page.goto(reverse("admin:flags_flag_history", args=[shop["checkout"].pk]))
    rows = page.get_by_test_id("history-row")
    first = rows.first
    expect(first.get_by_test_id("history-who")).to_have_text("rhea")
    expect(first.get_by_test_id("history-what")).to_have_text("changed new-checkout in Production")
    expect(first.get_by_test_id("history-reason")).to_have_text("Checkout errors in payments")
    expect(first.get_by_test_id("history-changes")).to_have_text("Enabled: on → off")
    texts = rows.all_inner_texts()
    assert any("Rule “30 % of everyone” in Staging" in row and "30 %" in row for row in texts)
    assert any("Condition of rule “German beta testers”" in row and "DE" in row for row in texts)
    assert any("new-checkout in Staging" in row and "off → on" in row for row in texts)
    assert not any("None" in row for row in texts)
    _photograph(page, shots, "timeline")


def _revert_brings_the_rule_back(
    browser: Browser, live_server: LiveServer, shop: dict[str, Any]
) -> None:
    checkout: Flag = shop["checkout"]
    staging = _state(checkout, "staging")
    page = sign_in(browser, live_server.url, shop["editor"])
    # The editor deletes rule 1 (the page asks first)
    page.goto(reverse("admin:flags_flagstate_change", args=[staging.pk]))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("rule-delete-1").click()
    expect(page.get_by_test_id("rule-sentence-1")).to_have_text("30 % of everyone → on")
    assert len(_rules(staging)) == 1
    # and reverts staging to the moment the rule was complete, after a preview
    page.goto(reverse("admin:flags_flag_history", args=[checkout.pk]))
    row = page.get_by_test_id("history-row").filter(
        has_text="created Rule “German beta testers” in Staging"
    )
    row.get_by_test_id("revert-link").click()
    expect(page.get_by_test_id("revert-preview")).to_contain_text("Beta testers")
    expect(page.get_by_test_id("cell-rule-1-after")).to_contain_text("country is one of DE")
    assert len(_rules(staging)) == 1  # nothing yet
    page.get_by_test_id("reason").fill("Deleted by mistake")
    page.get_by_test_id("confirm-revert").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Reverted new-checkout")
    expect(page.get_by_test_id("history-row").first.get_by_test_id("history-reason")).to_have_text(
        "Deleted by mistake"
    )


def _evaluate_as(
    browser: Browser, live_server: LiveServer, shop: dict[str, Any], shots: Path
) -> None:
    page = sign_in(browser, live_server.url, shop["viewer"])
    page.goto(reverse("admin:flags_flag_evaluate"))
    staging = Environment.objects.get(project=shop["project"], key="staging")
    page.locator("select[name=environment]").select_option(str(staging.pk))
    page.locator("[name=attr-0-value]").fill("user-1")
    page.locator("[name=attr-1-name]").fill("email")
    page.locator("[name=attr-1-value]").fill("ana@example.com")
    page.locator("[name=attr-2-name]").fill("country")
    page.locator("[name=attr-2-value]").fill("DE")
    page.get_by_test_id("evaluate").click()
    expect(page.get_by_test_id("reason-new-checkout")).to_have_text("TARGETING_MATCH")
    expect(page.get_by_test_id("rule-new-checkout")).to_have_text("Rule 1 — German beta testers")
    _photograph(page, shots, "evaluate-as")


def _viewer_changes_nothing(
    browser: Browser, live_server: LiveServer, shop: dict[str, Any], shots: Path
) -> None:
    from .test_admin_round_trip import stored  # noqa: PLC0415  # the round-trip proof's reading

    checkout: Flag = shop["checkout"]
    before = stored()
    page = sign_in(browser, live_server.url, shop["viewer"])
    page.goto("/admin/flags/flag/?project=demo")
    expect(page.get_by_test_id("read-only-note")).to_be_visible()
    expect(page.locator("[data-testid^=toggle-]")).to_have_count(0)
    page.goto(reverse("admin:flags_flagstate_change", args=[_state(checkout, "staging").pk]))
    form = page.locator("#flagstate_form")
    expect(form.locator("input:not([type=hidden]), select, textarea, button")).to_have_count(0)
    page.goto(reverse("admin:flags_flag_change", args=[checkout.pk]))
    expect(page.locator("#flag_form input[name=_save]")).to_have_count(0)
    _photograph(page, shots, "flag-page")
    assert stored() == before
