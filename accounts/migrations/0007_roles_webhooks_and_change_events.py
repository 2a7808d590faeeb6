"""Every role reads change events; Administrators manage webhooks: re-sync the groups."""

from typing import Any

from django.db import migrations

from accounts.roles import sync_roles_in_migration


def resync_roles(apps: Any, schema_editor: Any) -> None:
    sync_roles_in_migration(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_roles_view_evaluation_counts"),
        ("flags", "0009_webhooks_and_change_events"),
    ]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
