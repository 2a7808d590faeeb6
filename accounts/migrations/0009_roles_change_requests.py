"""Editors propose change requests; release managers (and administrators) approve them."""

from typing import Any

from django.db import migrations

from accounts.roles import sync_roles_in_migration


def resync_roles(apps: Any, schema_editor: Any) -> None:
    sync_roles_in_migration(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_roles_scheduled_changes"),
        ("flags", "0011_change_requests"),
    ]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
