"""Evaluation counts SDKs report: how often a flag served a variant, per environment and hour."""

from __future__ import annotations

from django.db import models

from .flags import Flag
from .projects import Environment

# The ``variant`` column of a count whose SDK reported no variant (an error, or the caller's
# default). Not null: NULLs are distinct in unique constraints, which would break the upsert.
NO_VARIANT = ""


class FlagEvaluationCount(models.Model):
    """Evaluations of one flag to one variant in one environment during one UTC hour.

    Rows are only ever incremented (``flags.services.evaluations.record_counts``: one atomic
    ``INSERT ... ON CONFLICT DO UPDATE`` adding to the stored count), never edited by people.
    """

    environment = models.ForeignKey(
        Environment,
        on_delete=models.CASCADE,
        related_name="evaluation_counts",
        help_text="The environment whose key reported the evaluations.",
    )
    flag = models.ForeignKey(
        Flag,
        on_delete=models.CASCADE,
        related_name="evaluation_counts",
        help_text="The flag evaluated.",
    )
    variant = models.CharField(
        max_length=100,
        blank=True,
        default=NO_VARIANT,
        help_text="The variant served; empty when none was (an error, or the caller's default).",
    )
    hour = models.DateTimeField(help_text="Start of the UTC hour the evaluations happened in.")
    count = models.PositiveBigIntegerField(default=0, help_text="Evaluations reported.")
    updated_at = models.DateTimeField(auto_now=True, help_text="Last time a report added to it.")

    class Meta:
        ordering = ("-hour", "environment_id", "flag_id", "variant")
        verbose_name = "flag evaluation count"
        verbose_name_plural = "flag evaluation counts"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "flag", "variant", "hour"],
                name="evaluation_count_unique_per_hour",
            ),
        ]
        indexes = [models.Index(fields=["hour"], name="evaluation_count_hour")]

    def __str__(self) -> str:
        variant = self.variant or "(no variant)"
        return f"{self.flag_id}/{variant} @ {self.hour:%Y-%m-%dT%H:00Z}: {self.count}"
