"""Create the Viewer, Editor, Release manager and Administrator groups with their permissions."""

from typing import Any

from django.db import migrations

from accounts.roles import sync_roles_in_migration


def create_roles(apps: Any, schema_editor: Any) -> None:
    # Models created by later migrations (API keys) have no permissions yet: 0004 adds them.
    sync_roles_in_migration(apps, skip_missing=True)


def remove_roles(apps: Any, schema_editor: Any) -> None:
    from accounts.roles import ROLES  # noqa: PLC0415  # keeps the module's import list minimal

    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("flags", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
