"""django-simple-history's pages in the admin: the list of an object's versions and the page of
one version (revert or view), which must look like the admin's other pages
(templates/simple_history/).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django.live_server_helper import LiveServer

from accounts import roles
from accounts.models import ApiKey, User
from accounts.services import api_key_issue
from accounts.tests.factories import make_user
from flags import services
from flags.history.recording import reason
from flags.models import Environment, Project

from .admin_pages import attributes, find_all, find_one, page, text
from .browser import chromium, sign_in


def _breadcrumbs(response: Any) -> list[tuple[str, str | None]]:
    """The page's breadcrumbs as (text, link) pairs, from its one ``<ol class="breadcrumbs">``."""
    assert response.status_code == 200
    trail, _ = find_one(page(response), "ol", **{"class": "breadcrumbs"})
    crumbs = []
    for item, _ in find_all(trail, "li"):
        links = find_all(item, "a")
        crumbs.append((text(item), attributes(links[0][0])["href"] if links else None))
    return crumbs


def test_version_page__project__breadcrumbs_like_the_change_page(
    client: Client, administrator: User, project: Project
) -> None:
    # Given the first version of project demo
    version = project.history.earliest()
    client.force_login(administrator)
    # When the page of that version is opened
    response = client.get(f"/admin/flags/project/{project.pk}/history/{version.history_id}/")
    # Then its breadcrumbs are the admin's (an <ol>, the app's and the model's names) leading
    # through the object and its history to the version
    assert _breadcrumbs(response) == [
        ("Home", "/admin/"),
        ("Feature flags", "/admin/flags/"),
        ("Projects", "/admin/flags/project/"),
        ("Demo", f"/admin/flags/project/{project.pk}/change/"),
        ("History", f"/admin/flags/project/{project.pk}/history/"),
        ("Revert project", None),
    ]


def test_version_page__environment_for_a_viewer__breadcrumbs_end_with_view(
    client: Client, viewer: User, staging: Environment
) -> None:
    # Given the first version of staging and a viewer (who may look, not revert)
    version = staging.history.earliest()
    client.force_login(viewer)
    # When the viewer opens that version
    response = client.get(f"/admin/flags/environment/{staging.pk}/history/{version.history_id}/")
    # Then the breadcrumbs are the admin's and end with "View environment"
    assert _breadcrumbs(response) == [
        ("Home", "/admin/"),
        ("Feature flags", "/admin/flags/"),
        ("Environments", "/admin/flags/environment/"),
        ("demo/staging", f"/admin/flags/environment/{staging.pk}/change/"),
        ("History", f"/admin/flags/environment/{staging.pk}/history/"),
        ("View environment", None),
    ]


def test_version_page__api_key__breadcrumbs_name_the_accounts_app(
    client: Client, administrator: User, staging: Environment
) -> None:
    # Given an issued server key
    key, _ = api_key_issue(kind=ApiKey.Kind.SERVER, name="checkout", environment=staging)
    version = key.history.earliest()
    client.force_login(administrator)
    # When the page of its first version is opened
    response = client.get(f"/admin/accounts/apikey/{key.pk}/history/{version.history_id}/")
    # Then the breadcrumbs name the accounts app and API keys (not "Historical API keys")
    assert _breadcrumbs(response) == [
        ("Home", "/admin/"),
        ("Accounts", "/admin/accounts/"),
        ("API keys", "/admin/accounts/apikey/"),
        (str(key), f"/admin/accounts/apikey/{key.pk}/change/"),
        ("History", f"/admin/accounts/apikey/{key.pk}/history/"),
        ("Revert API key", None),
    ]


def test_history_list__system_change_without_reason__dashes_not_none(
    client: Client, editor: User, viewer: User, project: Project, staging: Environment
) -> None:
    # Given staging created by the system (no person, no reason), then renamed by an editor
    # with a reason
    with reason("Clearer for the QA team"):
        services.environment_update(environment=staging, actor=editor, name="QA")
    client.force_login(viewer)
    # When its history is opened
    response = client.get(f"/admin/flags/environment/{staging.pk}/history/")
    # Then "Changed by" and "Change reason" read "—" for the system's change, never "None"
    table, _ = find_one(page(response), "table", id="change-history")
    rows = [[text(cell) for cell, _ in find_all(row, "td")] for row, _ in find_all(table, "tr")]
    by_and_why = [(row[3], row[4]) for row in rows if row]
    assert by_and_why == [("editor", "Clearer for the QA team"), ("—", "—")]
    assert "None" not in response.content.decode()


# --- In a browser: the version page's breadcrumbs look like the change page's ---------------


@pytest.mark.requires_browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_version_page__in_chromium__breadcrumbs_styled_as_on_the_change_page(
    live_server: LiveServer,
) -> None:
    # Given project demo and an administrator signed in
    project = services.project_create(key="demo", name="Demo")
    version = project.history.earliest()
    make_user(username="ada", role=roles.ADMINISTRATOR)
    # When the change page and the page of the first version are shown in Chromium
    change_page, version_page = _breadcrumb_styles(
        live_server,
        [
            f"/admin/flags/project/{project.pk}/change/",
            f"/admin/flags/project/{project.pk}/history/{version.history_id}/",
        ],
    )
    # Then the breadcrumbs bar looks the same on both (background, text, links, spacing)
    assert change_page["background"] == "rgb(38, 75, 93)"
    assert version_page == change_page


def _breadcrumb_styles(live_server: LiveServer, urls: list[str]) -> list[dict[str, str]]:
    """The computed style of the breadcrumbs bar (and its first link) on each page, as ada."""
    script = """() => {
        const bar = document.querySelector("nav[aria-label=Breadcrumbs] .breadcrumbs");
        const link = bar.querySelector("a");
        const [own, linked] = [getComputedStyle(bar), getComputedStyle(link)];
        return {background: own.backgroundColor, color: own.color, padding: own.padding,
                link: linked.color, decoration: linked.textDecorationLine};
    }"""
    styles = []
    with chromium() as browser:
        tab = sign_in(browser, live_server.url, User.objects.get(username="ada"))
        for url in urls:
            tab.goto(url)
            styles.append(tab.evaluate(script))
    return styles


def test_history_list__changed_by__a_link_only_for_those_who_may_open_it(
    client: Client, administrator: User, viewer: User, project: Project
) -> None:
    # Given a project renamed by the administrator
    services.project_update(project=project, actor=administrator, name="Renamed")
    url = f"/admin/flags/project/{project.pk}/history/"
    person = f"/admin/accounts/user/{administrator.pk}/change/"
    # When a viewer and the administrator open its history
    client.force_login(viewer)
    as_viewer = client.get(url).content.decode()
    client.force_login(administrator)
    as_administrator = client.get(url).content.decode()
    # Then only the administrator (who may open people's pages) gets the link
    assert person not in as_viewer
    assert "admin" in as_viewer
    assert f'href="{person}"' in as_administrator
