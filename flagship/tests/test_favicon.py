"""The admin's icon: linked from every admin page, found by the static files finders, and served
at /favicon.ico (a permanent redirect) for browsers that ask the old way.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from accounts.models import User
from flags.tests.admin_pages import attributes, find_all, find_one, page, text

ICON = "/static/flags/favicon.svg"
EXPECTED = [{"rel": "icon", "type": "image/svg+xml", "href": ICON}]


def _icons(response: object) -> list[dict[str, str | None]]:
    """The ``<link rel="icon">`` elements of a page, as their attributes."""
    return [attributes(link) for link, _ in find_all(page(response), "link", rel="icon")]


def test_admin_pages__signed_out_and_in__link_the_svg_icon(client: Client, viewer: User) -> None:
    # Given the sign-in page, and a viewer signed in
    sign_in = client.get(reverse("admin:login"))
    client.force_login(viewer)
    # When the index and a list are opened
    index = client.get(reverse("admin:index"))
    tags = client.get(reverse("admin:flags_tag_changelist"))
    # Then each names the icon once, as SVG, under the FlagShip name linking to the index
    assert [response.status_code for response in (sign_in, index, tags)] == [200, 200, 200]
    assert [_icons(response) for response in (sign_in, index, tags)] == [EXPECTED] * 3
    branding, _ = find_one(page(index), "div", id="site-name")
    link, _ = find_one(branding, "a")
    assert (text(link), attributes(link)["href"]) == ("FlagShip", "/admin/")


def test_admin_pages__administrator__change_and_history_pages_link_the_icon(
    client: Client, administrator: User, viewer: User
) -> None:
    # Given an administrator
    client.force_login(administrator)
    # When a user's change form and History page are opened
    change = client.get(reverse("admin:accounts_user_change", args=[viewer.pk]))
    history = client.get(reverse("admin:accounts_user_history", args=[viewer.pk]))
    # Then both name the icon
    assert (change.status_code, history.status_code) == (200, 200)
    assert (_icons(change), _icons(history)) == (EXPECTED, EXPECTED)


def test_favicon_svg__staticfiles_finders__found_and_is_an_svg() -> None:
    # Given the static files finders of the project
    # When the icon is looked up
    found = finders.find("flags/favicon.svg")
    # Then it is flags' own file, an SVG document with a view box
    assert isinstance(found, str)
    assert Path(found).parts[-4:] == ("flags", "static", "flags", "favicon.svg")
    root = ElementTree.parse(found).getroot()  # noqa: S314  # our own file, not untrusted input
    assert (root.tag, root.get("viewBox")) == ("{http://www.w3.org/2000/svg}svg", "0 0 32 32")


def test_favicon_ico__requested__permanent_redirect_to_the_svg(client: Client) -> None:
    # Given a browser that asks for the icon the old way
    # When it requests /favicon.ico
    response = client.get("/favicon.ico")
    # Then it is sent, permanently, to the SVG icon
    assert (response.status_code, response["Location"]) == (301, ICON)
