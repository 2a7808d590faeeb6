"""The flag list in a real headless Chromium: a person logs in, clicks a toggle, and the database,
the history and the ruleset version follow. One test per role boundary of the toggle contract
(flags/admin/flag_list.py): an editor toggles staging, cannot toggle protected production, a viewer
sees only read-only badges, a release manager toggles production after a confirmation.

Debian's Chromium is driven through Playwright's sync API (never a downloaded browser). Without
Chromium the tests are skipped loudly, or fail under FLAGSHIP_REQUIRE_SERVICES=1
(``requires_browser``, flagship/tests/required_services.py).
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
from flags.models import Environment, Flag, FlagState, Project

from .browser import MARKS, chromium, sign_in

pytestmark = MARKS


@pytest.fixture
def demo(db: None) -> dict[str, Any]:
    """Project demo with new-checkout off everywhere, and one user per role."""
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    return {
        "project": project,
        "flag": flag,
        "viewer": make_user(username="vera", role=roles.VIEWER),
        "editor": make_user(username="eddie", role=roles.EDITOR),
        "release_manager": make_user(username="rhea", role=roles.RELEASE_MANAGER),
    }


@pytest.fixture
def signed_in(demo: dict[str, Any], live_server: LiveServer) -> Iterator[Any]:
    """A function opening the flag list as a user, each in a fresh browser context."""
    with chromium() as browser:

        def open_flag_list(user: User) -> Page:
            page = sign_in(browser, live_server.url, user)
            page.goto(f"/admin/flags/flag/?project={demo['project'].key}")
            expect(page.locator("[data-testid$='-new-checkout-development']")).to_have_count(1)
            return page

        yield open_flag_list


def _state(flag: Flag, environment_key: str) -> FlagState:
    return FlagState.objects.get(flag=flag, environment__key=environment_key)


def _version(project: Project, environment_key: str) -> int:
    return Environment.objects.get(project=project, key=environment_key).ruleset_version


def _last_changed_by(state: FlagState) -> Any:
    return (
        FlagState.history.filter(id=state.pk)
        .order_by("-history_date", "-history_id")
        .values_list("enabled", "history_user__username")
        .first()
    )


def test_flag_list__editor_clicks_staging_toggle__flag_on_with_history_and_version(
    demo: dict[str, Any], signed_in: Any
) -> None:
    # Given an editor on the flag list, new-checkout off in staging
    project, flag = demo["project"], demo["flag"]
    before = _version(project, "staging")
    page = signed_in(demo["editor"])
    toggle = page.get_by_test_id("toggle-new-checkout-staging")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    # When they click the staging toggle
    toggle.click()
    # Then the list shows it pressed, the database has it on, the history names the editor,
    # and staging's ruleset version grew (development's did not)
    expect(page.get_by_test_id("toggle-new-checkout-staging")).to_have_attribute(
        "aria-pressed", "true"
    )
    state = _state(flag, "staging")
    assert state.enabled is True
    assert _last_changed_by(state) == (True, "eddie")
    assert _version(project, "staging") == before + 1
    assert _state(flag, "development").enabled is False


def test_flag_list__editor_in_protected_production__sees_a_badge_not_a_toggle(
    demo: dict[str, Any], signed_in: Any
) -> None:
    # Given an editor on the flag list
    # When they look at the production column
    page = signed_in(demo["editor"])
    # Then production shows a read-only "Off" badge and no control
    expect(page.get_by_test_id("state-new-checkout-production")).to_have_text("Off")
    expect(page.get_by_test_id("toggle-new-checkout-production")).to_have_count(0)
    expect(page.get_by_test_id("toggle-new-checkout-staging")).to_have_count(1)


def test_flag_list__viewer__sees_badges_and_no_toggle(demo: dict[str, Any], signed_in: Any) -> None:
    # Given new-checkout on in staging, and a viewer
    services.flag_toggle(state=_state(demo["flag"], "staging"), enabled=True, actor=None)
    # When the viewer opens the flag list
    page = signed_in(demo["viewer"])
    # Then every environment shows a read-only badge with its state, and there is no toggle
    expect(page.get_by_test_id("state-new-checkout-development")).to_have_text("Off")
    expect(page.get_by_test_id("state-new-checkout-staging")).to_have_text("On")
    expect(page.get_by_test_id("state-new-checkout-production")).to_have_text("Off")
    expect(page.locator("[data-testid^='toggle-']")).to_have_count(0)


def test_flag_list__release_manager_toggles_production__confirms_then_on(
    demo: dict[str, Any], signed_in: Any
) -> None:
    # Given a release manager on the flag list, new-checkout off in production
    project, flag = demo["project"], demo["flag"]
    before = _version(project, "production")
    page = signed_in(demo["release_manager"])
    toggle = page.get_by_test_id("toggle-new-checkout-production")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    # When they click the production toggle
    toggle.click()
    # Then a confirmation page asks first, and nothing has changed yet
    confirm = page.get_by_test_id("confirm-toggle")
    expect(confirm).to_have_text("Yes, turn new-checkout on in Production")
    assert _state(flag, "production").enabled is False
    # When they confirm
    confirm.click()
    # Then the list shows it on, the database has it on with their name in the history, and
    # production's ruleset version grew
    expect(page.get_by_test_id("toggle-new-checkout-production")).to_have_attribute(
        "aria-pressed", "true"
    )
    state = _state(flag, "production")
    assert state.enabled is True
    assert _last_changed_by(state) == (True, "rhea")
    assert _version(project, "production") == before + 1
