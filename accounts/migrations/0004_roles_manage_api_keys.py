"""Administrators manage API keys: re-sync the four groups' permissions."""

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.roles import sync_roles


def resync_roles(apps: Any, schema_editor: Any) -> None:
    # The API key permissions are created after migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_api_keys")]

    operations = [migrations.RunPython(resync_roles, migrations.RunPython.noop)]
