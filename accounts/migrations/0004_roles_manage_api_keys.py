"""Administrators manage API keys: re-sync the four groups' permissions."""

from typing import Any

from django.db import migrations

from accounts.roles import sync_roles_in_migration


def resync_roles(apps: Any, schema_editor: Any) -> None:
    # Models this migration does not depend on (flags.FlagEvaluationCount) may not exist yet:
    # 0006 re-syncs once they do.
    sync_roles_in_migration(apps, skip_missing=True)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_api_keys")]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
