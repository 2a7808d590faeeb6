"""Administrators see and change FlagShip's own project (``flags.manage_system_project``)."""

from typing import Any

from django.db import migrations

from accounts.roles import sync_roles_in_migration


def resync_roles(apps: Any, schema_editor: Any) -> None:
    sync_roles_in_migration(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_roles_change_requests"),
        ("flags", "0013_system_project"),
    ]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
