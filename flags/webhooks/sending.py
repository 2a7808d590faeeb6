"""Sending deliveries: claim one, POST it signed, record the answer, schedule a retry or give up.

:func:`send_next` claims a webhook with due deliveries that no other sender holds (``SELECT …
FOR NO KEY UPDATE SKIP LOCKED``), then its oldest due delivery, and keeps both rows locked for the
attempt and its record, in one transaction:

- **Several workers never send a delivery twice at once**: the webhook row is locked, and the
  others skip its deliveries.
- **A slow receiver holds up nobody else**: its webhook row is locked too, so the other threads
  and workers skip its deliveries and serve other webhooks; a hanging receiver occupies one
  sender for ``FLAGSHIP_WEBHOOK_TIMEOUT`` at most. ``NO KEY UPDATE`` does not block the writers
  inserting new deliveries for it (their foreign key takes ``KEY SHARE``).
- **A worker killed mid-delivery loses nothing**: its transaction dies with its connection, the
  locks go, and the delivery is still pending, as if never claimed; another worker sends it again.
  Receivers drop a repeated ``webhook-id`` (docs/webhooks.md).

On SQLite (no row locks) run one worker process: ``run_worker`` sends from one thread there.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from flags import conf
from flags.models import Webhook, WebhookDelivery
from flagship import metrics

from . import http, secrets, signing

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: exponential from the base, capped, jittered.

    Half the delay is fixed and half random ("equal jitter"), so retries of many deliveries
    that failed together spread out, and none comes back sooner than half its step.
    """
    base = conf.webhook_backoff_seconds()
    cap = conf.webhook_max_backoff_seconds()
    step = min(cap, base * 2 ** max(0, attempts - 1))
    return float(step / 2 + random.uniform(0, step / 2))  # noqa: S311  # jitter, not cryptography


def body_of(delivery: WebhookDelivery) -> bytes:
    """The JSON sent: the event's payload (the same bytes on every attempt)."""
    return json.dumps(delivery.event.payload(), ensure_ascii=False, separators=(",", ":")).encode()


def send_next(now: datetime | None = None) -> WebhookDelivery | None:
    """Send the oldest due delivery of a webhook nobody is sending to; it, recorded, or ``None``.

    The claim locks the webhook first (``FOR NO KEY UPDATE SKIP LOCKED``: the one whose oldest due
    delivery is the oldest, among those no other sender holds), then that delivery. Looking for
    work costs one row per webhook, however many deliveries wait behind a busy receiver.
    """
    moment = now or timezone.now()
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(
            webhook=OuterRef("pk"), status=Status.PENDING, next_attempt_at__lte=moment
        ).order_by("next_attempt_at")
        webhook = (
            Webhook.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(active=True)
            .annotate(oldest=Subquery(due.values("next_attempt_at")[:1]))
            .filter(oldest__isnull=False)
            .order_by("oldest", "pk")
            .first()
        )
        if webhook is None:
            return None
        delivery = (
            WebhookDelivery.objects.select_for_update(no_key=True, of=("self",))
            .select_related("event")
            .filter(webhook=webhook, status=Status.PENDING, next_attempt_at__lte=moment)
            .order_by("next_attempt_at", "id")
            .first()
        )
        if delivery is None:  # sent meanwhile by a sender that had just let the webhook go
            return None
        delivery.webhook = webhook
        attempt(delivery)
        return delivery


def attempt(delivery: WebhookDelivery) -> None:
    """POST one delivery and record the answer on it (the caller holds its lock)."""
    webhook = delivery.webhook
    body = body_of(delivery)
    timestamp = int(time.time())
    try:
        secret = secrets.decrypt(webhook.secret_encrypted)
    except ImproperlyConfigured as error:  # a key was dropped too early: retried, then dead
        record(delivery, http.Answer(None, error=str(error)))
        return
    headers = signing.headers(secret, str(delivery.event_id), timestamp, body)
    answer = http.post(webhook.url, body, headers, conf.webhook_timeout())
    record(delivery, answer)


def record(delivery: WebhookDelivery, answer: http.Answer) -> None:
    """Store an attempt's outcome: delivered, retried later, or dead."""
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = answer.status
    delivery.last_error = answer.error
    delivery.last_response = answer.body
    delivery.last_duration_ms = answer.duration_ms
    max_attempts = conf.webhook_max_attempts()
    if answer.delivered:
        delivery.status = Status.DELIVERED
        delivery.delivered_at = now
        outcome = "delivered"
    elif answer.retryable and delivery.attempts < max_attempts:
        delay = backoff(delivery.attempts)
        if answer.retry_after is not None:
            delay = min(answer.retry_after, conf.webhook_max_backoff_seconds())
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        outcome = "retrying"
    else:
        delivery.status = Status.DEAD
        outcome = "dead"
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "last_response",
            "last_duration_ms",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    metrics.webhook_deliveries.labels(outcome).inc()
    log = logger.info if outcome == "delivered" else logger.warning
    log(
        f"webhook.{outcome}",
        extra={
            "delivery": delivery.pk,
            "webhook": delivery.webhook_id,
            "event_id": str(delivery.event_id),
            "attempt": delivery.attempts,
            "status": answer.status,
            "error": answer.error,
            "duration_ms": answer.duration_ms,
        },
    )


def next_due() -> datetime | None:
    """When the soonest pending delivery is due (the worker sleeps until then at most)."""
    return (
        WebhookDelivery.objects.filter(status=Status.PENDING, webhook__active=True)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
