"""The four roles, as groups with permissions (created by a data migration, kept by `sync_roles`).

- Viewer: reads everything (evaluation counts included), changes nothing.
- Editor: changes flags, rules, segments and tags, and schedules changes, but not in protected
  environments (where their changes become change requests, when the environment takes them).
- Release manager: an Editor who may also change protected environments, and approve or reject
  change requests.
- Administrator: everything, including projects, environments and people, and FlagShip's own
  project (``flags.manage_system_project``: the flags that switch FlagShip's capabilities).
"""

from __future__ import annotations

from typing import Any, Final

VIEWER: Final = "Viewer"
EDITOR: Final = "Editor"
RELEASE_MANAGER: Final = "Release manager"
ADMINISTRATOR: Final = "Administrator"
ROLES: Final = (VIEWER, EDITOR, RELEASE_MANAGER, ADMINISTRATOR)

# Models a person edits day to day (Editor and up may add, change and delete them).
EDITABLE_MODELS: Final = (
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
# Structural models only an Administrator changes.
STRUCTURAL_MODELS: Final = ("project", "environment")
# Models every role reads and no person writes (SDKs report evaluation counts).
READ_ONLY_MODELS: Final = ("flagevaluationcount", "changeevent")
# Models only an Administrator sees and changes: webhook URLs and their receivers' answers.
ADMINISTRATOR_MODELS: Final = ("webhook", "webhookdelivery")
PROTECTED_PERMISSION: Final = "change_protected_environment"  # on flags.Environment
APPROVE_PERMISSION: Final = "approve_changerequest"  # on flags.ChangeRequest
SYSTEM_PERMISSION: Final = "manage_system_project"  # on flags.Project


def role_permissions() -> dict[str, set[tuple[str, str]]]:
    """Map each role to the (app label, codename) permissions it holds."""
    everything_viewable = {
        ("flags", f"view_{model}")
        for model in (*EDITABLE_MODELS, *STRUCTURAL_MODELS, *READ_ONLY_MODELS)
    }
    editing = {
        ("flags", f"{action}_{model}")
        for model in EDITABLE_MODELS
        for action in ("add", "change", "delete")
    }
    structural = (
        {
            ("flags", f"{action}_{model}")
            for model in STRUCTURAL_MODELS
            for action in ("add", "change", "delete")
        }
        | {
            ("flags", f"{action}_{model}")
            for model in ADMINISTRATOR_MODELS
            for action in ("add", "change", "delete", "view")
        }
        | {("flags", SYSTEM_PERMISSION)}
    )
    accounts = (
        {("accounts", f"{action}_user") for action in ("add", "change", "delete", "view")}
        | {("accounts", f"{action}_apikey") for action in ("add", "change", "delete", "view")}
        | {("auth", f"{action}_group") for action in ("add", "change", "delete", "view")}
    )
    viewer = everything_viewable
    editor = viewer | editing
    release_manager = editor | {("flags", PROTECTED_PERMISSION), ("flags", APPROVE_PERMISSION)}
    administrator = release_manager | structural | accounts
    return {
        VIEWER: viewer,
        EDITOR: editor,
        RELEASE_MANAGER: release_manager,
        ADMINISTRATOR: administrator,
    }


def sync_roles(group_model: Any, permission_model: Any, *, skip_missing: bool = False) -> None:
    """Create the four groups and give each exactly its permissions (idempotent).

    Takes the models as arguments so a migration can pass its historical models. An early
    migration passes ``skip_missing`` for permissions of models that a later migration creates
    (and re-syncs); otherwise a missing permission is an error.
    """
    for role, wanted in role_permissions().items():
        group, _ = group_model.objects.get_or_create(name=role)
        permissions = []
        for app_label, codename in sorted(wanted):
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is None:
                if skip_missing:
                    continue
                raise LookupError(f"permission {app_label}.{codename} does not exist")
            permissions.append(permission)
        group.permissions.set(permissions)


def sync_roles_in_migration(apps: Any, *, skip_missing: bool = False) -> None:
    """Create permissions now (Django normally does it after all migrations) and sync the roles.

    For data migrations: ``apps`` is the migration's app registry.
    """
    from django.contrib.auth.management import create_permissions  # noqa: PLC0415  # needs apps

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_roles(
        apps.get_model("auth", "Group"),
        apps.get_model("auth", "Permission"),
        skip_missing=skip_missing,
    )
