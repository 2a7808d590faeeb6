"""Driving the admin in Debian's headless Chromium, for the browser tests (no tests here).

Playwright's sync API, never a downloaded browser: ``chromium()`` launches the machine's Chromium
with the flags a closed network needs, and ``sign_in`` opens a fresh context (its own cookies)
signed in as a user. Tests using them are marked ``requires_browser`` (skipped loudly without
Chromium, failing under FLAGSHIP_REQUIRE_SERVICES=1) and ``django_db(transaction=True,
serialized_rollback=True)``: the live server needs committed data, whose flush would otherwise
remove the role groups the data migration created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flagship.tests.required_services import chromium_path

# Playwright's sync API runs an event loop in this thread; the ORM calls made between browser
# steps are synchronous and safe (pytest-playwright's advice for Django).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

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
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
MARKS = [
    pytest.mark.requires_browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; closed (and Django's thread-local connections too) after.

    While Playwright's loop runs, Django sees an event loop and hands this thread other
    (context-local) database connections: they are closed here, so the test database's flush acts
    on pytest-django's own connection.
    """
    executable = chromium_path()
    if executable is None:  # requires_browser has already skipped (or failed) the test
        pytest.skip("no Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


def sign_in(browser: Browser, base_url: str, user: User, viewport: ViewportSize = DESKTOP) -> Page:
    """A new page in a new context, signed in to the admin as ``user``, on its index."""
    context = browser.new_context(base_url=base_url, viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/admin/login/?next=/admin/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{base_url}/admin/")
    return page


def page_width(page: Page) -> int:
    """How wide the page is laid out (more than the viewport: it scrolls sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth"))
