"""The outbox: each change event becomes delivery rows in the writer's own transaction.

Subscribed to ``flags.delivery.changes`` in the transaction (``FlagsConfig.ready``). A change
that commits has its deliveries committed with it; one that rolls back leaves none, so no
receiver hears of a change that never happened and none misses one that did. On PostgreSQL the
same transaction sends ``NOTIFY`` on :data:`CHANNEL`, delivered at commit: idle workers wake at
once instead of at their next poll.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from flags.delivery.changes import Change
from flags.models import ChangeEvent, Webhook, WebhookDelivery

CHANNEL = "flagship_webhooks"


def enqueue(change: Change, event: ChangeEvent) -> list[WebhookDelivery]:
    """One pending delivery per active webhook of the project that wants this event."""
    if change.project_id is None:
        return []
    concerned = change.concerned
    hooks = [
        hook
        for hook in Webhook.objects.filter(project_id=change.project_id, active=True)
        if hook.wants(event.kind, concerned)
    ]
    return queue(event, hooks)


def queue(event: ChangeEvent, hooks: list[Webhook]) -> list[WebhookDelivery]:
    """Pending deliveries of ``event`` to ``hooks``, due now; workers are woken on commit."""
    if not hooks:
        return []
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=hook, event=event, next_attempt_at=now) for hook in hooks]
    )
    wake_workers()
    return deliveries


def wake_workers() -> None:
    """Tell listening workers (PostgreSQL only) that deliveries are due, when this commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")
