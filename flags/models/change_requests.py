"""Change requests: a change to flags in a protected environment, waiting for approvals.

An environment with ``required_approvals > 0`` (a protected one) takes no direct change from a
person: what they change becomes a :class:`ChangeRequest` holding, per flag state, the version
it was proposed against and the whole configuration proposed (:class:`ProposedState`), or, for a
scheduled change, its steps. Reviewers approve or reject it with a comment
(:class:`ChangeRequestReview`); the author or an approver applies it once it has its approvals,
and only if no flag state changed since (else it must be rebased). See
``flags.services.change_requests``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ..history.recording import AuditedHistory
from .flags import FlagState
from .projects import Environment

APPROVE_PERMISSION = "approve_changerequest"


class ChangeRequest(models.Model):
    """A proposed change to one environment's flags, its author, status and decisions."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Kind(models.TextChoices):
        STATE = "state", "Flag change"
        PROMOTION = "promotion", "Promotion"
        SCHEDULE = "schedule", "Scheduled change"

    environment = models.ForeignKey(
        Environment,
        on_delete=models.CASCADE,
        related_name="change_requests",
        help_text="The protected environment the change is for.",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STATE)
    title = models.CharField(max_length=200, help_text="What the change does, in a line.")
    description = models.TextField(
        blank=True, default="", help_text="Why: kept as the reason of the applied change."
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who proposed it.",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    schedule = models.JSONField(
        null=True,
        blank=True,
        help_text='For a scheduled change: {"state": id, "note": "...", "steps": [...]}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When it was decided.")
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who applied, rejected or withdrew it.",
    )

    history = AuditedHistory()

    class Meta:
        ordering = ("-id",)
        verbose_name = "change request"
        verbose_name_plural = "change requests"
        permissions = [(APPROVE_PERMISSION, "Can approve and reject change requests")]
        indexes = [models.Index(fields=["environment", "status"], name="change_request_env_status")]

    def __str__(self) -> str:
        return f"Change request #{self.pk}: {self.title}"


class ProposedState(models.Model):
    """One flag state a change request changes, with its version and configuration then.

    Configurations are ``flags.history.as_of.StateConfig`` as JSON: at the base and as proposed.
    """

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="proposed_states"
    )
    state = models.ForeignKey(FlagState, on_delete=models.CASCADE, related_name="proposals")
    base_version = models.PositiveIntegerField(
        help_text="The state's version the change was proposed against; it applies only there."
    )
    base = models.JSONField(help_text="The state's configuration at that version.")
    proposed = models.JSONField(help_text="The configuration it gets when applied.")

    class Meta:
        ordering = ("change_request_id", "id")
        verbose_name = "proposed state"
        verbose_name_plural = "proposed states"
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "state"], name="proposed_state_once_per_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.state} in change request #{self.change_request_id}"


class ChangeRequestReview(models.Model):
    """One reviewer's decision on a change request, with their comment."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="reviews"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    history = AuditedHistory()

    class Meta:
        ordering = ("change_request_id", "id")
        verbose_name = "change request review"
        verbose_name_plural = "change request reviews"
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "reviewer"], name="review_once_per_reviewer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer} (#{self.change_request_id})"
