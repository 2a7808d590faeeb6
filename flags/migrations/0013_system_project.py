"""FlagShip's own project: the ``flagship`` project whose flags switch FlagShip's capabilities.

The project has one environment, ``production``, and one boolean flag per optional capability
(``docs/operations.md``, "FlagShip's own flags"): all on but ``admin-preview``, so nothing changes
for an installation until an administrator turns one off. The list below is frozen here on
purpose (a migration must not change with the code); ``flags.capabilities.CAPABILITIES`` is the
running code's list and a flag missing from the project answers its default there.

If the key ``flagship`` is taken by a project of the installation, the system project is created
as ``flagship-system``: it is found by ``system=True``, never by its key. No history rows are
written (the historical models of a migration have no history of their own). Going back deletes
what this migration created.
"""

from typing import Any

from django.db import migrations

SYSTEM_KEYS = ("flagship", "flagship-system")
# (key, name, description, on)
FLAGS = (
    ("stream", "Change stream", "GET /api/v1/stream answers (off: 503, open streams close).", True),
    ("webhooks", "Webhooks", "The worker sends webhook deliveries (off: they wait).", True),
    (
        "scheduled-changes",
        "Scheduled changes",
        "The worker runs due steps of scheduled changes (off: they wait).",
        True,
    ),
    (
        "change-requests",
        "Change requests",
        "New change requests may be opened (off: refused; approvals are never bypassed).",
        True,
    ),
    ("admin-preview", "Admin preview", "New admin features in preview.", False),
)


def create_system_project(apps: Any, schema_editor: Any) -> None:
    project_model = apps.get_model("flags", "Project")
    environment_model = apps.get_model("flags", "Environment")
    flag_model = apps.get_model("flags", "Flag")
    variant_model = apps.get_model("flags", "Variant")
    state_model = apps.get_model("flags", "FlagState")
    if project_model.objects.filter(system=True).exists():
        return
    taken = set(project_model.objects.filter(key__in=SYSTEM_KEYS).values_list("key", flat=True))
    key = next(candidate for candidate in SYSTEM_KEYS if candidate not in taken)
    project = project_model.objects.create(
        key=key,
        name="FlagShip (system)",
        description="FlagShip's own flags: they switch its optional capabilities at run time. "
        "Administrators only.",
        system=True,
    )
    environment = environment_model.objects.create(
        project=project,
        key="production",
        name="Production",
        color="#0ea5e9",
        order=0,
        protected=True,
        ruleset_version=1,
    )
    for flag_key, name, description, on in FLAGS:
        flag = flag_model.objects.create(
            project=project,
            key=flag_key,
            name=name,
            description=description,
            kind="boolean",
            lifecycle="operational",
        )
        variant_model.objects.create(flag=flag, key="on", value=True, order=0)
        off = variant_model.objects.create(flag=flag, key="off", value=False, order=1)
        state_model.objects.create(
            flag=flag,
            environment=environment,
            enabled=on,
            off_variant=off,
            default_serve={"variant": "on"},
        )


def delete_system_project(apps: Any, schema_editor: Any) -> None:
    project_model = apps.get_model("flags", "Project")
    ids = list(project_model.objects.filter(system=True).values_list("pk", flat=True))
    flag_model = apps.get_model("flags", "Flag")
    # Plain deletes, children first (the rows this migration made): Django's cascade meets stale
    # related models in the migration state here. Rows made since that point at the project (API
    # keys, webhooks, rules...) make this fail: remove them first.
    deletes = (
        (apps.get_model("flags", "FlagState"), "flag__project_id__in"),
        (apps.get_model("flags", "Variant"), "flag__project_id__in"),
        (flag_model.tags.through, "flag__project_id__in"),
        (flag_model, "project_id__in"),
        (apps.get_model("flags", "Environment"), "project_id__in"),
        (project_model, "pk__in"),
    )
    for model, lookup in deletes:
        model._base_manager.filter(**{lookup: ids})._raw_delete(schema_editor.connection.alias)


class Migration(migrations.Migration):
    # The data in a migration of its own: run in the same migration as the schema changes,
    # reversing it met the migration state's stale related models (deletes cascading through
    # an Environment class that predates the new field).
    dependencies = [("flags", "0012_project_system")]

    operations = [migrations.RunPython(create_system_project, delete_system_project)]
