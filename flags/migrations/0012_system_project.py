"""FlagShip's own project: ``Project.system`` and the ``flagship`` project whose flags switch it.

The project has one environment, ``production``, and one boolean flag per optional capability
(``docs/operations.md``, "FlagShip's own flags"): all on but ``admin-preview``, so nothing changes
for an installation until an administrator turns one off. The list below is frozen here on
purpose (a migration must not change with the code); ``flags.capabilities.CAPABILITIES`` is the
running code's list and a flag missing from the project answers its default there.

If the key ``flagship`` is taken by a project of the installation, the system project is created
as ``flagship-system``: it is found by ``system=True``, never by its key. No history rows are
written (the historical models of a migration have no history of their own). Going back deletes
the project with everything in it.
"""

from typing import Any

from django.db import migrations, models

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
    state_model = apps.get_model("flags", "FlagState")
    # States first: a state's off variant is RESTRICT, which a project's cascade would trip over.
    state_model.objects.filter(flag__project__system=True).delete()
    project_model.objects.filter(system=True).delete()


class Migration(migrations.Migration):
    dependencies = [("flags", "0011_change_requests")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="system",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="FlagShip's own project (created by a migration): its flags switch "
                "FlagShip's optional capabilities, and only administrators see it.",
            ),
        ),
        migrations.AddField(
            model_name="historicalproject",
            name="system",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="FlagShip's own project (created by a migration): its flags switch "
                "FlagShip's optional capabilities, and only administrators see it.",
            ),
        ),
        migrations.AlterModelOptions(
            name="project",
            options={
                "ordering": ("name",),
                "permissions": [
                    ("manage_system_project", "Can see and change FlagShip's own flags")
                ],
                "verbose_name": "project",
                "verbose_name_plural": "projects",
            },
        ),
        migrations.AddConstraint(
            model_name="project",
            constraint=models.UniqueConstraint(
                condition=models.Q(system=True), fields=("system",), name="project_one_system"
            ),
        ),
        migrations.RunPython(create_system_project, delete_system_project),
    ]
