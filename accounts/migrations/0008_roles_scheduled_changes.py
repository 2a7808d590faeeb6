"""Editors and up schedule changes (protected environments still need a release manager)."""

from typing import Any

from django.db import migrations

from accounts.roles import sync_roles_in_migration


def resync_roles(apps: Any, schema_editor: Any) -> None:
    sync_roles_in_migration(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_roles_webhooks_and_change_events"),
        ("flags", "0010_scheduled_changes"),
    ]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
