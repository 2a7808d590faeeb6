"""The one-flag comparison of environments in a real headless Chromium, on a phone-sized screen.

Debian's Chromium is driven through Playwright's sync API, launched exactly as in
flags/tests/test_browser.py (``requires_browser``: skipped loudly without Chromium, or failing
under FLAGSHIP_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts import roles
from accounts.models import User
from accounts.tests.factories import make_user
from flags import services
from flags.models import Flag, FlagState

from .browser import MARKS, PHONE, chromium, sign_in

pytestmark = MARKS


@pytest.fixture
def demo(db: None) -> dict[str, Any]:
    """Project demo with new-checkout rolled out to 25 % in production only, and a viewer."""
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    production = FlagState.objects.get(flag=flag, environment__key="production")
    services.rule_create(
        state=production,
        serve={"variant": "on"},
        rollout=25_000,
        conditions=[
            {"attribute": "email", "operator": "str_ends_with", "values": ["@example.com"]}
        ],
    )
    return {"flag": flag, "viewer": make_user(username="vera", role=roles.VIEWER)}


@pytest.fixture
def signed_in(live_server: LiveServer) -> Iterator[Any]:
    """A function opening a page as a user on a 390 px wide screen, in a fresh browser context."""
    with chromium() as browser:

        def open_page(user: User, url: str) -> Page:
            page = sign_in(browser, live_server.url, user, PHONE)
            page.goto(url)
            return page

        yield open_page


def test_compare_flag__390px_wide__no_sideways_scroll_and_differing_cell_highlighted(
    demo: dict[str, Any], signed_in: Any
) -> None:
    # Given a viewer on a 390 px wide screen, and a rule only production has
    flag: Flag = demo["flag"]

    # When they open the flag's comparison of environments
    page = signed_in(demo["viewer"], f"/admin/flags/flag/{flag.pk}/compare/")

    # Then the page does not scroll sideways (the table scrolls in its own box), and production's
    # rule cell is marked and painted differently from a cell that does not differ
    expect(page.get_by_test_id("value-rule-1-production")).to_contain_text("25 %")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    scroll_box = page.locator(".fs-compare__scroll")
    assert scroll_box.evaluate("box => getComputedStyle(box).overflowX") == "auto"
    differing = page.get_by_test_id("cell-rule-1-production")
    same = page.get_by_test_id("cell-off-variant-production")
    expect(differing).to_have_attribute("data-differs", "true")
    expect(differing).to_have_class("fs-compare__cell fs-differs")
    background = "cell => getComputedStyle(cell).backgroundColor"
    assert differing.evaluate(background) == "rgba(234, 179, 8, 0.18)"
    assert same.evaluate(background) == "rgba(0, 0, 0, 0)"
