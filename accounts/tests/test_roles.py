"""The four roles the data migration creates: each group holds exactly its permissions, and each
boundary between roles is where the design puts it (one test per boundary).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from accounts import roles
from accounts.models import User
from accounts.tests.factories import PASSWORD, make_user
from flags import services
from flags.models import FlagEvaluationCount

FLAG_MODELS = (*roles.EDITABLE_MODELS, *roles.STRUCTURAL_MODELS)
# Spelled out rather than taken from accounts.roles: the test pins the design, not the code.
DAY_TO_DAY_MODELS = (
    "flag",
    "variant",
    "flagstate",
    "rule",
    "condition",
    "prerequisite",
    "segment",
    "tag",
    "scheduledchange",
    "changerequest",
)


def _held(role: str) -> set[str]:
    """The group's permissions as ``app_label.codename``."""
    return {
        f"{app_label}.{codename}"
        for app_label, codename in Group.objects.get(name=role).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def _expected(role: str) -> set[str]:
    return {f"{app}.{codename}" for app, codename in roles.role_permissions()[role]}


@pytest.mark.parametrize("role", roles.ROLES)
def test_role_group__after_migrations__holds_exactly_its_permissions(db: None, role: str) -> None:
    # Given the migrated database
    # When a role's group is read
    # Then it exists and holds exactly the permissions accounts.roles lists for it
    assert _held(role) == _expected(role)


def test_role_groups__after_migrations__are_exactly_the_four_roles(db: None) -> None:
    # Given the migrated database
    # When the groups are listed
    # Then they are the four roles
    assert set(Group.objects.values_list("name", flat=True)) == {
        "Viewer",
        "Editor",
        "Release manager",
        "Administrator",
    }


def test_viewer__permissions__only_view_every_flags_model(db: None) -> None:
    # Given the Viewer group
    # When its permissions are read
    held = _held(roles.VIEWER)
    # Then it can view each of the twelve flags models, the evaluation counts and the change events,
    # and do nothing else (webhooks are the Administrator's alone)
    assert held == {
        f"flags.view_{model}" for model in (*FLAG_MODELS, "flagevaluationcount", "changeevent")
    }
    assert len(held) == 14


def test_editor__permissions__edits_targeting_but_not_structure_nor_protected(db: None) -> None:
    # Given the Editor group
    held = _held(roles.EDITOR)
    # When its permissions are compared with the Viewer's
    added = held - _held(roles.VIEWER)
    # Then it adds add/change/delete of the day-to-day models only: no protected environments,
    # no projects or environments, no people
    assert added == {
        f"flags.{action}_{model}"
        for model in DAY_TO_DAY_MODELS
        for action in ("add", "change", "delete")
    }
    assert "flags.change_protected_environment" not in held
    assert not {p for p in held if p.endswith(("_project", "_environment")) and ".view_" not in p}


def test_release_manager__permissions__editor_plus_protected_environments_and_reviews(
    db: None,
) -> None:
    # Given the Release manager group
    # When its permissions are compared with the Editor's
    # Then the differences are the protected-environment and the change-request review permissions
    assert _held(roles.RELEASE_MANAGER) - _held(roles.EDITOR) == {
        "flags.change_protected_environment",
        "flags.approve_changerequest",
    }
    assert _held(roles.EDITOR) <= _held(roles.RELEASE_MANAGER)


def test_administrator__permissions__release_manager_plus_structure_and_people(db: None) -> None:
    # Given the Administrator group
    # When its permissions are compared with the Release manager's
    # Then it adds projects, environments, users, API keys, groups, webhooks with their
    # deliveries, and FlagShip's own project (which nobody else even sees)
    assert _held(roles.ADMINISTRATOR) - _held(roles.RELEASE_MANAGER) == {
        "flags.manage_system_project",
    } | {
        f"{app}.{action}_{model}"
        for app, model in (
            ("flags", "project"),
            ("flags", "environment"),
            ("flags", "webhook"),
            ("flags", "webhookdelivery"),
            ("accounts", "user"),
            ("accounts", "apikey"),
            ("auth", "group"),
        )
        for action in ("add", "change", "delete", "view")
        if not (model in {"project", "environment"} and action == "view")
    }


def test_every_role__permissions__view_evaluation_counts_but_never_change_them(db: None) -> None:
    # Given the four roles
    # When their evaluation-count permissions are read
    held = {
        role: sorted(p for p in _held(role) if p.endswith("_flagevaluationcount"))
        for role in roles.ROLES
    }
    # Then each may view the counts, and none may add, change or delete them
    assert held == {role: ["flags.view_flagevaluationcount"] for role in roles.ROLES}


# --- One test per boundary, through has_perm (what the admin and services ask) ----------------


def test_viewer__change_flag__denied(viewer: User) -> None:
    # Given a viewer
    # When asked whether they may change a flag or its state
    # Then no, but they may view them
    assert (viewer.has_perm("flags.change_flag"), viewer.has_perm("flags.change_flagstate")) == (
        False,
        False,
    )
    assert viewer.has_perm("flags.view_flag") is True


def test_editor__change_flag_state__allowed(editor: User) -> None:
    # Given an editor
    # When asked whether they may change flag states and rules
    # Then yes
    assert editor.has_perm("flags.change_flagstate") is True
    assert editor.has_perm("flags.add_rule") is True


def test_editor__protected_environment__denied(editor: User) -> None:
    # Given an editor
    # When asked whether they may change protected environments
    # Then no
    assert editor.has_perm("flags.change_protected_environment") is False


def test_editor__projects_and_environments__denied(editor: User) -> None:
    # Given an editor
    # When asked whether they may add or change projects and environments
    # Then no
    assert [
        editor.has_perm(permission)
        for permission in (
            "flags.add_project",
            "flags.change_project",
            "flags.add_environment",
            "flags.change_environment",
        )
    ] == [False, False, False, False]


def test_release_manager__protected_environment__allowed(release_manager: User) -> None:
    # Given a release manager
    # When asked whether they may change protected environments
    # Then yes
    assert release_manager.has_perm("flags.change_protected_environment") is True


def test_release_manager__users__denied(release_manager: User) -> None:
    # Given a release manager
    # When asked whether they may add users or projects
    # Then no
    assert release_manager.has_perm("accounts.add_user") is False
    assert release_manager.has_perm("flags.add_project") is False


def test_administrator__users_and_projects__allowed(administrator: User) -> None:
    # Given an administrator
    # When asked whether they may add users, groups, projects and environments
    # Then yes
    assert [
        administrator.has_perm(permission)
        for permission in (
            "accounts.add_user",
            "auth.change_group",
            "flags.add_project",
            "flags.add_environment",
        )
    ] == [True, True, True, True]


def test_viewer__evaluation_counts_list__shows_the_counts(viewer: User) -> None:
    # Given 42 evaluations of new-checkout to "on" in staging, reported by an SDK
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    FlagEvaluationCount.objects.create(
        environment=project.environments.get(key="staging"),
        flag=flag,
        variant="on",
        hour=datetime(2026, 12, 1, 9, tzinfo=UTC),
        count=42,
    )
    client = Client()
    assert client.login(username=viewer.username, password=PASSWORD)
    # When a viewer opens the evaluation counts in the admin
    response = client.get(reverse("admin:flags_flagevaluationcount_changelist"))
    # Then the list answers with that count, and no way to add one
    assert response.status_code == 200
    assert [
        (row.flag.key, row.environment.key, row.variant, row.count)
        for row in response.context["cl"].result_list
    ] == [("new-checkout", "staging", "on", 42)]
    assert '<td class="field-count">42</td>' in response.content.decode()
    assert response.context["has_add_permission"] is False


def test_no_role__staff_without_group__has_no_permission(db: None) -> None:
    # Given a staff user in no group
    nobody = make_user(username="nobody")
    # When their permissions are read
    # Then they have none (staff status gives none)
    assert nobody.get_all_permissions() == set()


# --- Keeping the groups in step --------------------------------------------------------------


def test_sync_roles__permission_added_by_hand__removed_again(db: None) -> None:
    # Given an Editor group someone gave the protected-environment permission by hand
    editor = Group.objects.get(name=roles.EDITOR)
    editor.permissions.add(Permission.objects.get(codename="change_protected_environment"))
    # When the roles are synchronised
    roles.sync_roles(Group, Permission)
    # Then the Editor holds exactly its permissions again
    assert _held(roles.EDITOR) == _expected(roles.EDITOR)


def test_sync_roles__group_deleted__recreated(db: None) -> None:
    # Given the Viewer group was deleted
    Group.objects.filter(name=roles.VIEWER).delete()
    # When the roles are synchronised
    roles.sync_roles(Group, Permission)
    # Then it is back with its permissions
    assert _held(roles.VIEWER) == _expected(roles.VIEWER)


def test_sync_roles__permission_missing__raises_lookup_error(db: None) -> None:
    # Given a database where a permission a role needs does not exist
    Permission.objects.filter(codename="change_protected_environment").delete()
    # When the roles are synchronised
    # Then it says which permission is missing (rather than creating a weaker role)
    with pytest.raises(LookupError, match=r"permission flags\.change_protected_environment"):
        roles.sync_roles(Group, Permission)
