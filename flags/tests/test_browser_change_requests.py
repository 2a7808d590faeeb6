"""A change request from start to finish in a real headless Chromium, every step by clicking.

An editor changes banner-text in production, which takes change requests: on the state's own page
they switch it on and serve "sale" to everyone, with a title and a reason. That proposes a change
request and changes nothing. A release manager, in a fresh browser context, opens it, reads the
diff, approves it with a comment and applies it. Then the database says what happened: the state
on with the proposed default serve, one version later; the change request applied, its review and
comment stored; the state's history row naming the change request.

The change request's page is photographed at 1440 and 390 px into ``$FLAGSHIP_SCREENSHOTS`` when
set (``FLAGSHIP_SCREENSHOTS=docs/screenshots``), else a temporary directory, as
test_browser_day does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts import roles
from accounts.tests.factories import make_user
from flags import services
from flags.models import ChangeRequest, ChangeRequestReview, Flag, FlagState

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
    """banner-text, off in production, which needs one approval; an editor and a reviewer."""
    project = services.project_create(key="demo", name="Demo shop")
    banner = services.flag_create(
        project=project,
        key="banner-text",
        name="Banner text",
        kind=Flag.Kind.STRING,
        variants=[("none", ""), ("sale", "Winter sale!"), ("new", "Try our new checkout")],
    )
    production = project.environments.get(key="production")
    services.environment_update(environment=production, actor=None, required_approvals=1)
    return {
        "banner": banner,
        "state": banner.states.get(environment=production),
        "editor": make_user(username="eddie", role=roles.EDITOR),
        "release_manager": make_user(username="rhea", role=roles.RELEASE_MANAGER),
    }


def _photograph(page: Page, shots: Path, name: str) -> None:
    """Screenshots at 1440 and 390 px; the page must not scroll sideways at either."""
    for label, viewport in (("1440", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        page.reload()
        page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
        assert page_width(page) <= viewport["width"], f"{name} scrolls sideways at {label} px"
    page.set_viewport_size(DESKTOP)


def test_change_request__editor_proposes__release_manager_approves_and_applies(
    shop: dict[str, Any], live_server: LiveServer, shots: Path
) -> None:
    state: FlagState = shop["state"]
    version = state.version
    with chromium() as browser:
        # Given an editor on banner-text's page in production
        editor = sign_in(browser, live_server.url, shop["editor"])
        editor.goto(f"/admin/flags/flagstate/{state.pk}/change/")
        expect(editor.get_by_test_id("change-request-banner")).to_contain_text(
            "takes change requests"
        )
        # When they switch it on, serve "sale" to everyone, give a title and a reason, and save
        editor.check("#id_enabled")
        editor.select_option("#id_default_serve", "sale")
        editor.get_by_test_id("change-request-title").fill("Winter sale banner")
        editor.get_by_test_id("reason").fill("The sale starts today")
        editor.click("input[name=_save]")
        # Then they are on the new change request, told it needs one approval
        expect(editor).to_have_url(re.compile(r"/admin/flags/changerequest/\d+/change/$"))
        expect(editor.locator("ul.messagelist")).to_contain_text(
            re.compile(r"Proposed as change request #\d+: needs 1 approval\.")
        )
        change_request = ChangeRequest.objects.get()
        # And the flag state is untouched
        state.refresh_from_db()
        assert (state.enabled, state.default_serve, state.version) == (
            False,
            {"variant": "none"},
            version,
        )
        # And the editor sees no Approve button
        expect(editor.get_by_test_id("approve")).to_have_count(0)

        # When a release manager, in a fresh browser context, opens the change request
        reviewer = sign_in(browser, live_server.url, shop["release_manager"])
        reviewer.goto(f"/admin/flags/changerequest/{change_request.pk}/change/")
        # Then the diff shows off → on and the default serve none → sale
        diff = reviewer.get_by_test_id("diff-banner-text")
        expect(diff.get_by_test_id("value-enabled-base")).to_have_text("Off")
        expect(diff.get_by_test_id("value-enabled-proposed")).to_have_text("On")
        expect(diff.get_by_test_id("value-default-serve-proposed")).to_contain_text("sale")
        # When they approve it with a comment
        reviewer.get_by_test_id("review-comment").fill("Checked with marketing")
        reviewer.get_by_test_id("approve").click()
        expect(reviewer.locator("ul.messagelist")).to_contain_text(
            f"Approved change request #{change_request.pk}."
        )
        expect(reviewer.get_by_test_id("reviews")).to_contain_text("Checked with marketing")
        _photograph(reviewer, shots, "change-request")
        # And apply it
        reviewer.get_by_test_id("apply").click()
        expect(reviewer.locator("ul.messagelist")).to_contain_text(
            f"Applied change request #{change_request.pk}."
        )
        expect(reviewer.get_by_test_id("status").first).to_have_text("Applied")

    # Then the state is on, serving "sale", one version later
    state.refresh_from_db()
    assert (state.enabled, state.default_serve, state.version) == (
        True,
        {"variant": "sale"},
        version + 1,
    )
    # And the change request is applied by the reviewer, with the review and its comment
    change_request.refresh_from_db()
    assert (change_request.status, change_request.author, change_request.closed_by) == (
        ChangeRequest.Status.APPLIED,
        shop["editor"],
        shop["release_manager"],
    )
    assert (change_request.title, change_request.description) == (
        "Winter sale banner",
        "The sale starts today",
    )
    review = ChangeRequestReview.objects.get(change_request=change_request)
    assert (review.reviewer, review.decision, review.comment) == (
        shop["release_manager"],
        ChangeRequestReview.Decision.APPROVED,
        "Checked with marketing",
    )
    # And the state's history row of the change names the change request, by the reviewer
    row = state.history.order_by("-history_id").first()
    assert row is not None
    assert row.history_change_reason == f"Change request #{change_request.pk}: Winter sale banner"
    assert row.history_user == shop["release_manager"]
