"""Scheduled changes: a flag state switched on or off, or rolled out, at given times.

A :class:`ScheduledChange` is one plan for one flag state (one flag in one environment); its
:class:`ScheduledStep` rows are the changes it makes, in order of time (one step: "turn on at
09:00"; several: a ramp 10 → 25 → 50 → 100 %). ``manage.py run_worker`` runs the due steps
through the services (``flags.services.schedules.run_due``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ..formats import format_percentage
from ..history.recording import AuditedHistory
from .flags import FlagState

FULL = 100_000  # thousandths of a percent: 100 %


class ScheduledChange(models.Model):
    """A plan of timed steps for one flag state, who made it, why, and whether it was cancelled."""

    state = models.ForeignKey(
        FlagState,
        on_delete=models.CASCADE,
        related_name="scheduled_changes",
        help_text="The flag in one environment that the steps change.",
    )
    note = models.CharField(
        max_length=200, blank=True, default="", help_text="Why: shown with every step's change."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who scheduled it; each step runs as this person (empty: the system).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    change_request = models.ForeignKey(
        "flags.ChangeRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="scheduled_changes",
        help_text="The approved change request that created it (in an environment that takes "
        "change requests, its steps run only with one).",
    )
    cancelled_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was cancelled; its pending steps never run."
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who cancelled it.",
    )

    history = AuditedHistory()

    class Meta:
        ordering = ("-id",)
        verbose_name = "scheduled change"
        verbose_name_plural = "scheduled changes"

    def __str__(self) -> str:
        return f"Scheduled change #{self.pk}"

    @property
    def status(self) -> str:
        """Cancelled, failed (a step failed), pending (a step waits), else done."""
        if self.cancelled_at is not None:
            return "cancelled"
        statuses = {step.status for step in self.steps.all()}
        if ScheduledStep.Status.FAILED in statuses:
            return "failed"
        if ScheduledStep.Status.PENDING in statuses:
            return "pending"
        return "done"


class ScheduledStep(models.Model):
    """One timed change of a plan: switch on, switch off, or serve ``on`` to a percentage."""

    class Action(models.TextChoices):
        ENABLE = "enable", "Switch on"
        DISABLE = "disable", "Switch off"
        ROLLOUT = "rollout", "Serve on to a percentage"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    change = models.ForeignKey(
        ScheduledChange,
        on_delete=models.CASCADE,
        related_name="steps",
        help_text="The plan this step belongs to.",
    )
    order = models.PositiveSmallIntegerField(help_text="1 for the first step, in order of time.")
    at = models.DateTimeField(help_text="When the step is due.")
    action = models.CharField(max_length=10, choices=Action.choices, help_text="What it does.")
    percentage = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="For a rollout: the share served on, in thousandths of a percent (25 % = 25000).",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, help_text="Where it is."
    )
    ran_at = models.DateTimeField(null=True, blank=True, help_text="When the worker ran it.")
    late_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How late it ran, when the worker was down at its time (else empty).",
    )
    error = models.TextField(blank=True, default="", help_text="Why it failed or was cancelled.")

    history = AuditedHistory()

    class Meta:
        ordering = ("change_id", "order")
        verbose_name = "scheduled step"
        verbose_name_plural = "scheduled steps"
        constraints = [
            models.UniqueConstraint(fields=["change", "order"], name="scheduled_step_order"),
            models.CheckConstraint(
                condition=models.Q(percentage__isnull=True) | models.Q(percentage__lte=FULL),
                name="scheduled_step_percentage_range",
            ),
        ]
        indexes = [
            # The worker's question: pending steps due by now.
            models.Index(
                fields=["at"],
                condition=models.Q(status="pending"),
                name="scheduled_step_pending_due",
            ),
        ]

    def __str__(self) -> str:
        return f"step {self.order} of scheduled change #{self.change_id}"

    def describe(self) -> str:
        """The step in words: "switch on", "switch off", "serve on to 25 %"."""
        if self.action == self.Action.ROLLOUT:
            return f"serve on to {format_percentage(self.percentage or 0)} %"
        return "switch on" if self.action == self.Action.ENABLE else "switch off"
