"""API routes answer with or without their trailing slash; reverse() and the admin are unchanged."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import resolve, reverse
from rest_framework.test import APIClient

from accounts.models import User
from flags import services
from flags.models import Project
from flags.tests.api_clients import bearer
from flags.tests.evaluation_data import issue_admin

CANONICAL = [
    ("project-list", {"version": "v1"}, "/api/v1/projects/"),
    ("project-detail", {"version": "v1", "project": "shop"}, "/api/v1/projects/shop/"),
    ("auth-token", {"version": "v1"}, "/api/v1/auth/token/"),
    ("me", {"version": "v1"}, "/api/v1/me/"),
    ("evaluate-flags", {"version": "v1"}, "/api/v1/evaluate"),
    (
        "evaluate-flag",
        {"version": "v1", "flag_key": "new-checkout"},
        "/api/v1/evaluate/new-checkout",
    ),
    ("ruleset", {"version": "v1"}, "/api/v1/ruleset"),
    ("stream", {"version": "v1"}, "/api/v1/stream"),
    ("ofrep-flags", {}, "/ofrep/v1/evaluate/flags"),
    ("ofrep-flag", {"key": "new-checkout"}, "/ofrep/v1/evaluate/flags/new-checkout"),
    ("api-schema", {}, "/api/schema/"),
]


@pytest.mark.parametrize(("name", "kwargs", "url"), CANONICAL)
def test_reverse__slash_optional_routes__canonical_url(
    name: str, kwargs: dict[str, str], url: str
) -> None:
    assert reverse(name, kwargs=kwargs) == url


@pytest.mark.parametrize(("name", "kwargs", "url"), CANONICAL)
def test_resolve__other_slash_form__same_view_and_arguments(
    name: str, kwargs: dict[str, str], url: str
) -> None:
    # Given a route's canonical URL and the same URL with its trailing slash toggled
    other = url[:-1] if url.endswith("/") else url + "/"

    # When both are resolved
    canonical, toggled = resolve(url), resolve(other)

    # Then they name the same view with the same arguments (the key never takes the slash)
    assert (toggled.func, toggled.url_name, toggled.kwargs) == (
        canonical.func,
        name,
        canonical.kwargs,
    )


def api_for(user: User) -> APIClient:
    """An API client sending an admin token of ``user``."""
    return bearer(APIClient(), issue_admin(user))


@override_settings(DEBUG=True)
def test_post_without_trailing_slash__debug__creates_the_project(administrator: User) -> None:
    # Given an Administrator, and DEBUG on (where APPEND_SLASH used to raise RuntimeError on POST)
    api = api_for(administrator)

    # When a project is created at /api/v1/projects, without the trailing slash
    response = api.post("/api/v1/projects", {"key": "shop", "name": "Shop"}, format="json")

    # Then it is created, not redirected
    assert response.status_code == 201, response.content
    assert response.json()["key"] == "shop"
    assert Project.objects.filter(key="shop").exists()


@pytest.mark.parametrize("debug", [True, False])
def test_patch_and_delete_without_trailing_slash__no_redirect(
    administrator: User, debug: bool
) -> None:
    # Given a project, and an Administrator
    services.project_create(key="demo", name="Demo")
    api = api_for(administrator)
    url = "/api/v1/projects/demo/segments/beta"
    with override_settings(DEBUG=debug):
        created = api.post(
            "/api/v1/projects/demo/segments", {"key": "beta", "name": "Beta"}, format="json"
        )
        assert created.status_code == 201, created.content

        # When it is renamed and deleted without the trailing slash
        renamed = api.patch(url, {"name": "Beta testers"}, format="json")
        deleted = api.delete(url)

    # Then both are done (PATCH and DELETE, not a GET after a redirect)
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["name"] == "Beta testers"
    assert deleted.status_code == 204


def test_unknown_api_path__either_form__problem_404_not_a_redirect(client: Client) -> None:
    for url in ("/api/v1/nope", "/api/v1/nope/"):
        response = client.post(url, {}, content_type="application/json")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_schema_and_docs__without_trailing_slash__served(client: Client) -> None:
    assert client.get("/api/schema", headers={"Accept": "application/json"}).status_code == 200
    assert client.get("/api/docs").status_code == 200


def test_admin__get_without_trailing_slash__append_slash_redirect_kept(
    client: Client, administrator: User
) -> None:
    # Given someone signed in to the admin
    client.force_login(administrator)

    # When they open an admin page without its trailing slash
    response = client.get("/admin/flags/flag")

    # Then Django's APPEND_SLASH redirects them, as before
    assert response.status_code == 301
    assert response["Location"] == "/admin/flags/flag/"
