"""Projects, environments, tags and segments in the admin: services, fixed keys, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Condition, Environment, Flag, Project, Segment, Tag

from .admin_pages import find_all, messages_of, page


def _conditions(rows: list[dict[str, str]], initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "conditions-TOTAL_FORMS": str(len(rows)),
        "conditions-INITIAL_FORMS": str(initial),
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data |= {f"conditions-{index}-{name}": value for name, value in row.items()}
    return data


def test_project_add__administrator__created_with_its_three_environments(
    client: Client, administrator: User
) -> None:
    # Given an administrator
    client.force_login(administrator)

    # When they add a project
    response = client.post(
        "/admin/flags/project/add/", {"key": "shop", "name": "Shop", "description": ""}
    )

    # Then project_create made development, staging and a protected production, in history
    assert response.status_code == 302
    project = Project.objects.get(key="shop")
    assert list(project.environments.values_list("key", "protected")) == [
        ("development", False),
        ("staging", False),
        ("production", True),
    ]
    assert project.history.get().history_user == administrator


def test_project_add__editor__403(client: Client, editor: User) -> None:
    # Given an editor (projects are structural)
    client.force_login(editor)

    # When they try to add a project
    response = client.post(
        "/admin/flags/project/add/", {"key": "shop", "name": "Shop", "description": ""}
    )

    # Then it is forbidden
    assert response.status_code == 403
    assert not Project.objects.filter(key="shop").exists()


def test_project_change__key__read_only(
    client: Client, administrator: User, project: Project
) -> None:
    # Given an administrator
    client.force_login(administrator)

    # When they rename the project, posting a new key too
    response = client.post(
        f"/admin/flags/project/{project.pk}/change/",
        {"key": "renamed", "name": "Demo shop", "description": "The shop"},
    )

    # Then the name changed and the key did not
    assert response.status_code == 302
    saved = Project.objects.get(pk=project.pk)
    assert (saved.key, saved.name, saved.description) == ("demo", "Demo shop", "The shop")


def test_environment_change__administrator__saved_and_ruleset_version_kept(
    client: Client, administrator: User, staging: Environment, boolean_flag: Flag
) -> None:
    # Given staging at some ruleset version
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    client.force_login(administrator)

    # When it is renamed and protected, posting a new key and version too
    response = client.post(
        f"/admin/flags/environment/{staging.pk}/change/",
        {
            "key": "qa",
            "name": "Pre-production",
            "color": "#123abc",
            "order": "1",
            "protected": "on",
            "ruleset_version": "0",
        },
    )

    # Then name, colour and protection changed; key and version did not
    assert response.status_code == 302
    saved = Environment.objects.get(pk=staging.pk)
    assert (saved.key, saved.name, saved.color, saved.protected) == (
        "staging",
        "Pre-production",
        "#123abc",
        True,
    )
    assert saved.ruleset_version == version


def test_environment_and_project__no_delete_anywhere(
    client: Client, administrator: User, project: Project, staging: Environment
) -> None:
    # Given an administrator
    client.force_login(administrator)

    # When they try to delete a project or an environment
    project_delete = client.post(f"/admin/flags/project/{project.pk}/delete/", {"post": "yes"})
    environment_delete = client.post(
        f"/admin/flags/environment/{staging.pk}/delete/", {"post": "yes"}
    )

    # Then both are forbidden (there is no service, and it would take every flag's state)
    assert (project_delete.status_code, environment_delete.status_code) == (403, 403)


def test_tag_add_and_rename__history_names_the_editor(client: Client, editor: User) -> None:
    # Given an editor
    client.force_login(editor)

    # When they add a tag, then rename it
    client.post("/admin/flags/tag/add/", {"name": "growth", "color": "#22c55e"})
    tag = Tag.objects.get(name="growth")
    client.post(f"/admin/flags/tag/{tag.pk}/change/", {"name": "Growth", "color": "#22c55e"})

    # Then both are recorded as theirs
    assert [(h.name, h.history_user) for h in tag.history.order_by("history_date")] == [
        ("growth", editor),
        ("Growth", editor),
    ]


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[dict[str, Any]]:
    """Record the arguments of every call of service ``name`` (which still runs)."""
    calls: list[dict[str, Any]] = []
    service = getattr(services, name)

    def spy(**arguments: Any) -> Any:
        calls.append(arguments)
        return service(**arguments)

    monkeypatch.setattr(services, name, spy)
    return calls


def test_tag_change__editor__saved_through_tag_update(
    client: Client, editor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tag growth
    tag = services.tag_create(name="growth")
    calls = _spy(monkeypatch, "tag_update")
    client.force_login(editor)

    # When an editor recolours it on its page
    response = client.post(
        f"/admin/flags/tag/{tag.pk}/change/", {"name": "growth", "color": "#22C55E"}
    )

    # Then tag_update saved it for them: the row holds the colour, the history names them
    assert response.status_code == 302
    assert [(c["tag"].pk, c["actor"], c["name"], c["color"]) for c in calls] == [
        (tag.pk, editor, "growth", "#22c55e")
    ]
    assert Tag.objects.get(pk=tag.pk).color == "#22c55e"
    latest = tag.history.latest()
    assert (latest.history_type, latest.color, latest.history_user) == ("~", "#22c55e", editor)


def test_tag_delete__editor_with_a_reason__deleted_through_tag_delete(
    client: Client, editor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tag growth
    tag = services.tag_create(name="growth")
    calls = _spy(monkeypatch, "tag_delete")
    client.force_login(editor)

    # When an editor deletes it from its page, with a reason
    response = client.post(
        f"/admin/flags/tag/{tag.pk}/delete/", {"post": "yes", "reason": "Team disbanded"}
    )

    # Then tag_delete deleted it for them, recorded with their reason
    assert response.status_code == 302
    assert [(c["tag"].name, c["actor"]) for c in calls] == [("growth", editor)]
    assert not Tag.objects.filter(pk=tag.pk).exists()
    deleted = tag.history.latest()
    assert (deleted.history_type, deleted.history_user, deleted.history_change_reason) == (
        "-",
        editor,
        "Team disbanded",
    )


def test_segment_add__with_conditions__created_through_segment_create(
    client: Client, editor: User, project: Project
) -> None:
    # Given an editor filling in a segment with one condition
    client.force_login(editor)
    data = {
        "project": str(project.pk),
        "key": "germans",
        "name": "Germans",
        "description": "",
        **_conditions([{"attribute": "country", "operator": "in", "values": "DE\nAT"}]),
    }

    # When they save
    response = client.post("/admin/flags/segment/add/", data)

    # Then the segment and its condition exist, recorded as theirs
    assert response.status_code == 302
    segment = Segment.objects.get(key="germans")
    condition = segment.conditions.get()
    assert (condition.attribute, condition.operator, condition.values) == (
        "country",
        "in",
        ["DE", "AT"],
    )
    assert condition.history.get().history_user == editor


def test_segment_change__condition_used_in_production__editor_refused_with_message(
    client: Client, editor: User, boolean_flag: Flag, production: Environment, beta_testers: Segment
) -> None:
    # Given beta-testers used by a rule in production
    services.rule_create(
        state=boolean_flag.states.get(environment=production),
        serve={"variant": "on"},
        segments=[beta_testers],
    )
    condition = beta_testers.conditions.get()
    client.force_login(editor)

    # When an editor changes the segment's condition
    data = {
        "name": beta_testers.name,
        "description": "",
        **_conditions(
            [
                {
                    "id": str(condition.pk),
                    "segment": str(beta_testers.pk),
                    "attribute": "email",
                    "operator": "str_ends_with",
                    "values": "@example.org",
                }
            ],
            initial=1,
        ),
    }
    response = client.post(f"/admin/flags/segment/{beta_testers.pk}/change/", data)

    # Then the service's refusal is a message (not a 500) and nothing changed
    assert response.status_code == 302
    assert messages_of(response) == [
        "Production is protected: only release managers may change flags there."
    ]
    assert Condition.objects.get(pk=condition.pk).values == ["@example.com"]


def test_segment_delete__in_use__error_message_not_500(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given a segment used by a rule
    services.rule_create(
        state=boolean_flag.states.get(environment=staging),
        serve={"variant": "on"},
        segments=[beta_testers],
    )
    client.force_login(editor)

    # When it is deleted from its page
    response = client.post(f"/admin/flags/segment/{beta_testers.pk}/delete/", {"post": "yes"})

    # Then the refusal is shown on the segment's page and the segment remains
    assert response.status_code == 302
    assert response["Location"] == f"/admin/flags/segment/{beta_testers.pk}/change/"
    assert messages_of(response) == [
        "Segment beta-testers is used by new-checkout in staging; remove it there first."
    ]
    assert Segment.objects.filter(pk=beta_testers.pk).exists()


def test_segment_page__key_read_only_and_usage_listed(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given a segment used by a rule
    rule = services.rule_create(
        state=boolean_flag.states.get(environment=staging),
        serve={"variant": "on"},
        segments=[beta_testers],
        description="Beta first",
    )
    client.force_login(editor)

    # When its page is shown
    root = page(client.get(f"/admin/flags/segment/{beta_testers.pk}/change/"))

    # Then the key is not editable and the rule using it is linked
    assert find_all(root, "input", name="key") == []
    assert len(find_all(root, "a", href=f"/admin/flags/rule/{rule.pk}/change/")) == 1
