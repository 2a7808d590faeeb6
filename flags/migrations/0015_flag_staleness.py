"""The stored stale inputs (flags.staleness): a new, empty table, so this runs in no time.

Existing flags have no row until ``manage.py run_worker``'s ``staleness.refresh`` job computes
them (docs/operations.md); until then they are judged live, as before.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("flags", "0014_scale_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="FlagStaleness",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "single_since",
                    models.DateTimeField(
                        blank=True,
                        help_text="Since when every environment serves one variant to everyone; null: not so.",
                        null=True,
                    ),
                ),
                (
                    "last_evaluated",
                    models.DateTimeField(
                        blank=True,
                        help_text="The latest hour with counted evaluations in any environment; null: none.",
                        null=True,
                    ),
                ),
                (
                    "quiet_since",
                    models.DateTimeField(
                        blank=True,
                        help_text="The later of the flag's creation and the end of its last evaluated hour.",
                        null=True,
                    ),
                ),
                (
                    "computed_at",
                    models.DateTimeField(blank=True, help_text="When computed.", null=True),
                ),
                (
                    "dirty",
                    models.BooleanField(
                        default=True,
                        help_text="Changed since computed: the flag is judged from its history.",
                    ),
                ),
                (
                    "flag",
                    models.OneToOneField(
                        db_constraint=False,
                        help_text="The flag.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="staleness",
                        to="flags.flag",
                    ),
                ),
            ],
            options={
                "verbose_name": "flag staleness",
                "verbose_name_plural": "flag staleness",
                "indexes": [
                    models.Index(
                        condition=models.Q(("dirty", True)),
                        fields=["flag"],
                        name="flag_staleness_dirty",
                    )
                ],
            },
        ),
    ]
