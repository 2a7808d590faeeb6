"""``Project.system``: FlagShip's own project, which ``0013_system_project`` creates.

At most one project is the system project (``project_one_system``); only holders of
``flags.manage_system_project`` (superusers and the Administrator role) see it.
"""

from django.db import migrations, models


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
    ]
