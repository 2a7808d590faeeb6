"""The one-flag comparison of environments in a real headless Chromium, on a phone-sized screen.

Debian's Chromium is driven through Playwright's sync API, launched exactly as in
flags/tests/test_browser.py (``requires_browser``: skipped loudly without Chromium, or failing
under FLAGSHIP_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from accounts import roles
from accounts.models import User
from accounts.tests.factories import PASSWORD, make_user
from flags import services
from flags.models import Flag, FlagState
from flagship.testing import chromium_path

# Playwright's sync API runs an event loop in this thread; the ORM calls made between browser
# steps are synchronous and safe (pytest-playwright's advice for Django).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# serialized_rollback: the live server needs committed data (transaction=True), whose flush would
# otherwise remove the role groups the data migration created.
pytestmark = [
    pytest.mark.requires_browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000
PHONE: ViewportSize = {"width": 390, "height": 844}


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
    """A function opening a page as a user on a 390 px wide screen, in a fresh browser context.

    Chromium starts after the database fixtures and stops before their teardown, and the
    context-local connections Django opened meanwhile are closed (see test_browser.py).
    """
    executable = chromium_path()
    if executable is None:  # requires_browser has already skipped (or failed) the test
        pytest.skip("no Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)

        def open_page(user: User, url: str) -> Page:
            context = browser.new_context(base_url=live_server.url, viewport=PHONE)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto("/admin/login/?next=/admin/")
            page.fill("input[name=username]", user.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("input[type=submit]")
            expect(page).to_have_url(f"{live_server.url}/admin/")
            page.goto(url)
            return page

        try:
            yield open_page
        finally:
            browser.close()
            connections.close_all()


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
