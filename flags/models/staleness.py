"""The stored inputs of each flag's stale verdict (``flags.staleness``)."""

from __future__ import annotations

from django.db import models

from .flags import Flag


class FlagStaleness(models.Model):
    """What a flag's stale verdict is made of, so that the verdict is one SQL filter.

    Not the verdict: that depends on the time and on ``FLAGSHIP_STALE_DAYS``. A row is *dirty*
    (its values not to be trusted; the flag is judged live) from the moment a change to the
    flag's states, rules or prerequisites is written, in the same transaction, until the worker
    (``flags.staleness.refresh``) computes it again; a flag without a row is judged live too.
    """

    flag = models.OneToOneField(
        Flag,
        on_delete=models.CASCADE,
        related_name="staleness",
        # No foreign key constraint: a change written while the flag itself is being deleted
        # (its states' cascade) marks a row the flag's own deletion then removes.
        db_constraint=False,
        help_text="The flag.",
    )
    single_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Since when every environment serves one variant to everyone; null: not so.",
    )
    last_evaluated = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The latest hour with counted evaluations in any environment; null: none.",
    )
    quiet_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The later of the flag's creation and the end of its last evaluated hour.",
    )
    computed_at = models.DateTimeField(null=True, blank=True, help_text="When computed.")
    dirty = models.BooleanField(
        default=True, help_text="Changed since computed: the flag is judged from its history."
    )

    class Meta:
        verbose_name = "flag staleness"
        verbose_name_plural = "flag staleness"
        indexes = [
            models.Index(
                fields=["flag"], condition=models.Q(dirty=True), name="flag_staleness_dirty"
            ),
        ]

    def __str__(self) -> str:
        return f"staleness of flag {self.flag_id}"
