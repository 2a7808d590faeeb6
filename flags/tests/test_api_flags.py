"""Projects, environments, flags, variants, segments and tags through the management API."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import capabilities, services
from flags.models import Flag, Project, Segment, Tag

FLAGS = "/api/v1/projects/demo/flags/"


def signed_in(user: User) -> APIClient:
    """A client with ``user``'s session."""
    client = APIClient()
    client.login(username=user.username, password=PASSWORD)
    return client


def test_project_create__by_administrator__creates_project_with_three_environments(
    administrator: User,
) -> None:
    """Given an Administrator, when a project is created, then it has the default environments."""
    # When
    response = signed_in(administrator).post(
        "/api/v1/projects/", {"key": "shop", "name": "Shop"}, format="json"
    )

    # Then
    assert response.status_code == 201
    assert response.json()["key"] == "shop"
    environments = signed_in(administrator).get("/api/v1/projects/shop/environments/").json()
    assert [(e["key"], e["protected"]) for e in environments["results"]] == [
        ("development", False),
        ("staging", False),
        ("production", True),
    ]


def test_project_reason_required__created_and_patched__stored_and_shown(
    administrator: User,
) -> None:
    """Given an Administrator, when a project requires reasons, then the row says so, and back."""
    # When
    client = signed_in(administrator)
    created = client.post(
        "/api/v1/projects/", {"key": "shop", "name": "Shop", "reason_required": True}, format="json"
    )
    stored_on = Project.objects.get(key="shop").reason_required
    patched = client.patch("/api/v1/projects/shop/", {"reason_required": False}, format="json")
    refused = client.patch("/api/v1/projects/shop/", {"reason_required": "yes"}, format="json")

    # Then
    assert (created.status_code, created.json()["reason_required"], stored_on) == (201, True, True)
    assert (patched.status_code, patched.json()["reason_required"]) == (200, False)
    assert refused.status_code == 400
    assert Project.objects.get(key="shop").reason_required is False


def test_project_create__duplicate_key__is_400_on_key(
    administrator: User, project: Project
) -> None:
    """Given project demo, when another demo is created, then 400 naming the key."""
    # When
    response = signed_in(administrator).post(
        "/api/v1/projects/", {"key": "demo", "name": "Again"}, format="json"
    )

    # Then
    assert response.status_code == 400
    assert "key" in str(response.json())
    assert Project.objects.filter(system=False).count() == 1


def test_flag_create__string_flag_with_variants__returns_flag_off_everywhere(
    editor: User, project: Project
) -> None:
    """Given a project, when a string flag is created with variants, then they are in order."""
    # Given
    body = {
        "key": "banner",
        "name": "Banner",
        "kind": "string",
        "variants": [{"key": "none", "value": ""}, {"key": "sale", "value": "Sale!"}],
    }

    # When
    response = signed_in(editor).post(FLAGS, body, format="json")

    # Then
    assert response.status_code == 201, response.content
    data = response.json()
    assert [(v["key"], v["value"]) for v in data["variants"]] == [("none", ""), ("sale", "Sale!")]
    assert data["environments"] == {
        "development": {"enabled": False, "version": 1, "last_evaluated": None},
        "staging": {"enabled": False, "version": 1, "last_evaluated": None},
        "production": {"enabled": False, "version": 1, "last_evaluated": None},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"key": "x", "name": "X", "kind": "number", "variants": [{"key": "a", "value": "1"}]},
            "value",
        ),
        ({"key": "x", "name": "X", "favourite": True}, "favourite"),
        ({"key": "x", "name": "X", "client_visible": "true"}, "client_visible"),
        ({"key": "x y", "name": "X"}, "key"),
        ({"key": "x", "name": "X", "tags": ["nope"]}, "tags"),
        ({"key": "x", "name": "X", "variants": [{"key": "a", "value": 1, "weight": 2}]}, "weight"),
    ],
)
def test_flag_create__invalid_body__is_400_naming_field_and_nothing_created(
    body: dict[str, Any], field: str, editor: User, project: Project
) -> None:
    """Given a project, when a flag body is invalid, then 400 on the field and no flag."""
    # When
    response = signed_in(editor).post(FLAGS, body, format="json")

    # Then
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert Flag.objects.filter(project__system=False).count() == 0


def test_flag_list__filters_and_search__return_matching_keys(
    viewer: User, project: Project
) -> None:
    """Given tagged and archived flags, when filtered and searched, then the matching keys."""
    # Given
    payments = services.tag_create(name="payments")
    services.flag_create(project=project, key="pay-fast", name="Pay", tags=[payments])
    services.flag_create(project=project, key="old", name="Old", lifecycle="permanent")
    services.flag_archive(
        flag=services.flag_create(project=project, key="gone", name="G"), actor=None
    )
    client = signed_in(viewer)

    def keys(query: str) -> list[str]:
        return [flag["key"] for flag in client.get(FLAGS + query).json()["results"]]

    # Then
    assert keys("") == ["gone", "old", "pay-fast"]
    assert keys("?tag=Payments") == ["pay-fast"]
    assert keys("?archived=true") == ["gone"]
    assert keys("?lifecycle=permanent") == ["old"]
    assert keys("?kind=string") == []
    assert keys("?search=pay") == ["pay-fast"]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (FLAGS, ["lifecycle", "archived", "kind", "tag", "search", "ordering", "page"]),
        ("/api/v1/projects/", ["key", "search", "ordering", "page"]),
        ("/api/v1/projects/demo/segments/", ["key", "search", "ordering", "page"]),
        ("/api/v1/tags/", ["name", "search", "ordering", "page"]),
    ],
)
def test_list__empty_filters__ignored(
    viewer: User, project: Project, url: str, params: list[str]
) -> None:
    # Given a flag, a segment and a tag, and their unfiltered lists
    tag = services.tag_create(name="payments")
    services.flag_create(project=project, key="pay", name="Pay", tags=[tag])
    services.segment_create(project=project, key="beta", name="Beta")
    client = signed_in(viewer)
    unfiltered = client.get(url)

    # When every filter is sent empty (as forms and clients send "any")
    response = client.get(url + "?" + "&".join(f"{name}=" for name in params))

    # Then they are ignored: the same list
    assert response.status_code == 200, response.content
    assert response.json()["results"] == unfiltered.json()["results"]
    assert response.json()["count"] >= 1


def _flags(project: Project, count: int, tag: Tag) -> None:
    for number in range(count):
        services.flag_create(project=project, key=f"flag-{number:03}", name="F", tags=[tag])


def _segments(project: Project, count: int) -> None:
    for number in range(count):
        services.segment_create(
            project=project,
            key=f"segment-{number:03}",
            name="S",
            conditions=[{"attribute": "plan", "operator": "in", "values": ["pro"]}],
        )


@pytest.mark.parametrize("count", [3, 30])
def test_flag_list__3_or_30_flags__same_number_of_queries(
    count: int, viewer: User, project: Project, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """Given 3 or 30 flags, when listed, then the same queries (session, user, perms, page).

    A few of them read the page's evaluation insights (``flags.stale``): last evaluations,
    states with their rules' and prerequisites' latest changes, and the states' latest history.
    """
    # Given
    _flags(project, count, services.tag_create(name="t"))
    client = signed_in(viewer)

    # When / Then
    with django_assert_num_queries(13):
        response = client.get(FLAGS)
    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("count", [3, 30])
def test_segment_list__3_or_30_segments__same_number_of_queries(
    count: int, viewer: User, project: Project, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """Given 3 or 30 segments, when listed, then the same number of queries."""
    # Given
    _segments(project, count)
    client = signed_in(viewer)

    # When / Then
    with django_assert_num_queries(8):
        response = client.get("/api/v1/projects/demo/segments/")
    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("count", [3, 30])
def test_audit__3_or_30_changes_per_model__same_number_of_queries(
    count: int, viewer: User, project: Project, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """Given many changes, when the audit feed is read, then the query count does not grow."""
    # Given
    for number in range(count):
        services.flag_create(project=project, key=f"flag-{number:03}", name="F", actor=viewer)
    client = signed_in(viewer)
    # A process finds FlagShip's system project once (hidden from viewers), not per request
    capabilities.hidden_project_id(viewer)

    # When / Then: rows, count, people, two per model on the page (flag, variant, state), and
    # the ids of FlagShip's own project's flags, environments, states and their scope (six:
    # flags.history.feed.hidden_scope, read once per request whatever the feed's size)
    with django_assert_num_queries(17):
        response = client.get("/api/v1/audit/?user=viewer")
    assert response.status_code == 200
    assert response.json()["count"] == count * 6


def test_flag_archive__by_release_manager__archives_then_unarchives(
    release_manager: User, project: Project
) -> None:
    """Given a flag, when archived then unarchived, then archived is true then false."""
    # Given
    services.flag_create(project=project, key="f", name="F")
    client = signed_in(release_manager)

    # When
    archived = client.post(FLAGS + "f/archive/")
    unarchived = client.post(FLAGS + "f/unarchive/")

    # Then
    assert (archived.status_code, archived.json()["archived"]) == (200, True)
    assert (unarchived.status_code, unarchived.json()["archived"]) == (200, False)


def test_flag_update__unknown_field_key__is_400_and_key_unchanged(
    editor: User, project: Project
) -> None:
    """Given a flag, when a PATCH tries to change its key, then 400 (the key is immutable)."""
    # Given
    services.flag_create(project=project, key="f", name="F")

    # When
    response = signed_in(editor).patch(FLAGS + "f/", {"key": "g"}, format="json")

    # Then
    assert response.status_code == 400
    assert "key" in str(response.json())
    assert Flag.objects.get(project__system=False).key == "f"


def test_flag_archive__by_editor__is_403_as_production_is_protected(
    editor: User, project: Project
) -> None:
    """Given a flag in a project with protected production, when an Editor archives it, 403."""
    # Given
    services.flag_create(project=project, key="f", name="F")

    # When
    response = signed_in(editor).post(FLAGS + "f/archive/")

    # Then
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Flag.objects.get(project__system=False).archived is False


def test_variant_delete__served_variant__is_409_in_use(editor: User, project: Project) -> None:
    """Given a string flag whose off variant is 'none', when 'none' is deleted, then 409."""
    # Given
    services.flag_create(
        project=project, key="s", name="S", kind="string", variants=[("none", ""), ("a", "A")]
    )

    # When
    response = signed_in(editor).delete(FLAGS + "s/variants/none/")

    # Then
    assert response.status_code == 409
    assert response.json()["code"] == "in_use"


def test_segment_update__conditions__replaced_and_in_history(
    editor: User, beta_testers: Segment
) -> None:
    """Given a segment, when its conditions are replaced, then the new ones and a history entry."""
    # Given
    url = "/api/v1/projects/demo/segments/beta-testers/"
    condition = {"attribute": "plan", "operator": "in", "values": ["pro"]}
    client = signed_in(editor)

    # When
    response = client.patch(url, {"conditions": [condition]}, format="json")
    history = client.get(url + "history/").json()["results"]

    # Then
    assert response.status_code == 200
    assert [c["attribute"] for c in response.json()["conditions"]] == ["plan"]
    assert {(row["model"], row["type"]) for row in history} >= {
        ("condition", "created"),
        ("condition", "deleted"),
        ("segment", "created"),
    }


def test_flag_history__after_rename__shows_old_and_new_name(editor: User, project: Project) -> None:
    """Given a flag renamed by the editor, when its history is read, then name old → new."""
    # Given
    services.flag_create(project=project, key="f", name="Before")
    client = signed_in(editor)
    client.patch(FLAGS + "f/", {"name": "After"}, format="json")

    # When
    newest = client.get(FLAGS + "f/history/").json()["results"][0]

    # Then
    assert (newest["model"], newest["type"], newest["user"]) == ("flag", "changed", "editor")
    assert {"field": "name", "old": "Before", "new": "After"} in newest["changes"]


def test_audit__filtered_by_user_and_project__only_their_changes(
    editor: User, administrator: User, project: Project
) -> None:
    """Given changes by two people, when filtered by one, then only theirs."""
    # Given
    services.flag_create(project=project, key="f", name="F", actor=editor)
    services.project_create(key="other", name="Other", actor=administrator)

    # When
    client = signed_in(editor)
    by_editor = client.get("/api/v1/audit/?user=editor").json()["results"]
    in_other = client.get("/api/v1/audit/?project=other").json()["results"]

    # Then
    assert {row["user"] for row in by_editor} == {"editor"}
    assert {row["model"] for row in by_editor} == {"flag", "variant", "flagstate"}
    assert {row["user"] for row in in_other} == {"admin"}
    assert {row["model"] for row in in_other} == {"project", "environment"}
