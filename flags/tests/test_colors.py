"""Environment and tag colours are stored in lower case, whoever writes them.

The admin's colour picker (``<input type="color">``) sends lower case: a colour stored in another
spelling would change each time its form is saved unchanged.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import services
from flags.models import Environment, Project, Tag


def _api(user: User) -> APIClient:
    client = APIClient()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _history(model: Any, pk: int) -> list[tuple[str, str]]:
    return list(
        model.history.filter(id=pk).order_by("history_id").values_list("history_type", "color")
    )


def test_environment_api__created_and_changed_in_upper_case__stored_in_lower_case(
    administrator: User, project: Project
) -> None:
    # Given an administrator's API client
    api = _api(administrator)
    url = f"/api/v1/projects/{project.key}/environments/"
    # When an environment is created with "#22C55E", then qa's colour is changed to "#ABCDEF"
    created = api.post(url, {"key": "qa", "name": "QA", "color": "#22C55E"}, format="json")
    stored_after_create = Environment.objects.get(project=project, key="qa").color
    changed = api.patch(f"{url}qa/", {"color": "#ABCDEF"}, format="json")
    # Then both answers and the stored row say it in lower case
    assert (created.status_code, created.json()["color"]) == (201, "#22c55e")
    assert stored_after_create == "#22c55e"
    assert (changed.status_code, changed.json()["color"]) == (200, "#abcdef")
    assert Environment.objects.get(project=project, key="qa").color == "#abcdef"


def test_tag_api__created_in_upper_case__stored_in_lower_case(editor: User) -> None:
    # Given an editor's API client
    api = _api(editor)
    # When a tag is created with "#F59E0B"
    response = api.post("/api/v1/tags/", {"name": "growth", "color": "#F59E0B"}, format="json")
    # Then the answer and the stored row say "#f59e0b"
    assert (response.status_code, response.json()) == (
        201,
        {"name": "growth", "color": "#f59e0b"},
    )
    assert Tag.objects.get(name="growth").color == "#f59e0b"


def test_environment_admin__saved_in_upper_case__stored_in_lower_case(
    client: Client, administrator: User, project: Project, staging: Environment
) -> None:
    # Given an administrator in the admin
    client.force_login(administrator)
    # When an environment is added, and staging changed, each with an upper-case colour
    added = client.post(
        "/admin/flags/environment/add/",
        {"project": project.pk, "key": "qa", "name": "QA", "color": "#22C55E", "order": "3"},
    )
    changed = client.post(
        f"/admin/flags/environment/{staging.pk}/change/",
        {"name": "Staging", "color": "#ABCDEF", "order": "1"},
    )
    # Then both are saved, in lower case
    assert (added.status_code, changed.status_code) == (302, 302)
    assert dict(Environment.objects.filter(project=project).values_list("key", "color")) == {
        "development": "#22c55e",
        "staging": "#abcdef",
        "production": "#ef4444",
        "qa": "#22c55e",
    }


def test_tag_admin__added_and_changed_in_upper_case__stored_in_lower_case(
    client: Client, editor: User
) -> None:
    # Given an editor in the admin
    client.force_login(editor)
    # When a tag is added with "#22C55E", then changed to "#F59E0B"
    added = client.post("/admin/flags/tag/add/", {"name": "growth", "color": "#22C55E"})
    tag = Tag.objects.get(name="growth")
    stored_after_add = tag.color
    changed = client.post(
        f"/admin/flags/tag/{tag.pk}/change/", {"name": "growth", "color": "#F59E0B"}
    )
    # Then each was stored in lower case
    assert (added.status_code, changed.status_code) == (302, 302)
    assert stored_after_add == "#22c55e"
    assert Tag.objects.get(pk=tag.pk).color == "#f59e0b"


def test_environment_admin__created_in_upper_case_then_saved_as_a_browser_sends__unchanged(
    client: Client, administrator: User, project: Project
) -> None:
    # Given an environment created (through the service) with "#22C55E"
    qa = services.environment_create(project=project, key="qa", name="QA", color="#22C55E")
    client.force_login(administrator)
    # When its change form is saved unchanged: the colour picker sends lower case
    response = client.post(
        f"/admin/flags/environment/{qa.pk}/change/",
        {"name": "QA", "color": "#22c55e", "order": str(qa.order)},
    )
    # Then nothing changed: the same colour, and no history row beyond its creation
    assert response.status_code == 302
    assert Environment.objects.get(pk=qa.pk).color == "#22c55e"
    assert _history(Environment, qa.pk) == [("+", "#22c55e")]


def test_lowercase_colors_migration__upper_case_rows__lowered_and_history_left_alone(
    project: Project, staging: Environment
) -> None:
    # Given an environment and a tag whose colours were stored in upper case (before 0006)
    tag = services.tag_create(name="growth", color="#22c55e")
    Environment.objects.filter(pk=staging.pk).update(color="#F59E0B")
    Tag.objects.filter(pk=tag.pk).update(color="#22C55E")
    Environment.history.filter(id=staging.pk).update(color="#F59E0B")
    Tag.history.filter(id=tag.pk).update(color="#22C55E")
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    migration = importlib.import_module("flags.migrations.0006_lowercase_colors")
    # When the data migration runs
    migration.lowercase_colors(apps, None)
    # Then the rows are in lower case, other rows and the ruleset version are as they were, and
    # the history rows keep what they recorded (no row added)
    assert dict(Environment.objects.filter(project=project).values_list("key", "color")) == {
        "development": "#22c55e",
        "staging": "#f59e0b",
        "production": "#ef4444",
    }
    assert Tag.objects.get(pk=tag.pk).color == "#22c55e"
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version
    assert _history(Environment, staging.pk) == [("+", "#F59E0B")]
    assert _history(Tag, tag.pk) == [("+", "#22C55E")]
