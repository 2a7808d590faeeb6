"""Every role reads flag evaluation counts: re-sync the four groups' permissions."""

from typing import Any

from django.db import migrations

from accounts.roles import sync_roles_in_migration


def resync_roles(apps: Any, schema_editor: Any) -> None:
    sync_roles_in_migration(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_change_reasons"),
        # flags.FlagEvaluationCount (0004), whose view permission the roles now hold.
        ("flags", "0005_change_reasons"),
    ]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
