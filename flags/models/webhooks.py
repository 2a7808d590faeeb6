"""Change events, webhook subscriptions and their deliveries (the outbox).

Every committed write records one :class:`ChangeEvent` (``flags.delivery.changes.emit``); in the
same transaction each active :class:`Webhook` whose filter matches gets a
:class:`WebhookDelivery` row, so a change and the promise to announce it commit or roll back
together. ``manage.py run_worker`` sends the pending deliveries (``flags.webhooks.sending``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from ..history.recording import AuditedHistory
from .projects import Environment, Project


class ChangeEvent(models.Model):
    """One committed change: what kind, where, to which flags, by whom, why, and before/after.

    Kept as written (events are facts); the payload webhooks receive is :meth:`payload`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40, db_index=True, help_text="For example flag.toggled.")
    project = models.ForeignKey(
        Project,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="change_events",
        help_text="The project changed; empty once the project is gone.",
    )
    project_key = models.CharField(max_length=50, blank=True, default="")
    environments = models.JSONField(
        default=list, blank=True, help_text='Environments concerned: [{"id": 1, "key": "prod"}].'
    )
    flags = models.JSONField(default=list, blank=True, help_text="Keys of the flags concerned.")
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(
        max_length=150, blank=True, default="", help_text="Username, or empty for the system."
    )
    reason = models.TextField(blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("-occurred_at",)
        verbose_name = "change event"
        verbose_name_plural = "change events"
        indexes = [models.Index(fields=["project", "-occurred_at"], name="change_event_project")]

    def __str__(self) -> str:
        flags = ", ".join(self.flags[:3]) + (" …" if len(self.flags) > 3 else "")
        return f"{self.kind} {flags}".strip()

    def payload(self) -> dict[str, object]:
        """The JSON webhooks receive and the events API lists (``docs/webhooks.md``)."""
        return {
            "id": str(self.id),
            "type": self.kind,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "project": {"id": self.project_id, "key": self.project_key},
            "environments": self.environments,
            "flags": self.flags,
            "actor": (
                None
                if self.actor_id is None and not self.actor_name
                else {"id": self.actor_id, "username": self.actor_name}
            ),
            "reason": self.reason,
            "data": {"before": self.before, "after": self.after},
        }


class Webhook(models.Model):
    """A subscription: change events of a project (optionally one environment) POSTed to a URL."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    environment = models.ForeignKey(
        Environment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhooks",
        help_text="Only events concerning this environment; empty for all of the project's.",
    )
    name = models.CharField(max_length=100)
    url = models.URLField(
        max_length=2000, help_text="http or https; private addresses are refused unless allowed."
    )
    events = models.JSONField(
        default=list,
        blank=True,
        help_text="Event types to send (for example flag.toggled); empty for every type.",
    )
    active = models.BooleanField(default=True)
    # The signing secret (whsec_…) encrypted with FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS: HMAC needs the
    # secret itself, so a hash cannot do. Never shown after it is issued.
    secret_encrypted = models.TextField(editable=False)
    secret_hint = models.CharField(
        max_length=12, editable=False, help_text="The secret's last characters, to tell it apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    history = AuditedHistory(excluded_fields=["secret_encrypted"])

    class Meta:
        ordering = ("project_id", "name")
        verbose_name = "webhook"
        verbose_name_plural = "webhooks"

    def __str__(self) -> str:
        return self.name

    def wants(self, kind: str, environment_ids: set[int]) -> bool:
        """Whether an event of ``kind`` concerning ``environment_ids`` goes to this webhook."""
        if self.events and kind not in self.events:
            return False
        return self.environment_id is None or self.environment_id in environment_ids


class WebhookDelivery(models.Model):
    """One event to send to one webhook: its status, attempts and the last answer."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead (gave up)"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(ChangeEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(help_text="When the worker may try it next.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_response = models.TextField(
        blank=True, default="", help_text="The start of the last response's body."
    )
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="redeliveries"
    )

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The worker's claim: pending deliveries that are due, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            ),
            # A sender's claim: a webhook's oldest due delivery.
            models.Index(
                fields=["webhook", "next_attempt_at"],
                name="webhook_delivery_next",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["webhook", "-created_at"], name="webhook_delivery_list"),
        ]

    def __str__(self) -> str:
        return f"{self.event.kind} → {self.webhook} ({self.status})"
