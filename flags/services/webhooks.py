"""Writes to webhook subscriptions and their deliveries (admin and API alike)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..delivery.changes import Kind
from ..models import ChangeEvent, Environment, Project, Webhook, WebhookDelivery
from ..webhooks import outbox, secrets
from ..webhooks.addresses import AddressRefusedError, check_url
from .common import delete, save

UPDATABLE_FIELDS = frozenset({"name", "url", "events", "environment", "active"})


def clean_events(events: Iterable[str]) -> list[str]:
    """The event filter, refused when it names a type FlagShip does not send."""
    wanted = sorted({str(kind) for kind in events})
    unknown = [kind for kind in wanted if kind not in {k.value for k in Kind}]
    if unknown:
        raise ValidationError(
            {
                "events": ValidationError(
                    f"Unknown event types: {', '.join(unknown)}.", "invalid_event"
                )
            }
        )
    return wanted


def _check(webhook: Webhook) -> None:
    try:
        check_url(webhook.url)
    except AddressRefusedError as error:
        raise ValidationError({"url": ValidationError(str(error), "address_refused")}) from None
    if webhook.environment is not None and webhook.environment.project_id != webhook.project_id:
        raise ValidationError(
            {
                "environment": ValidationError(
                    "Choose an environment of the webhook's project.", "invalid_environment"
                )
            }
        )
    webhook.events = clean_events(webhook.events or [])


@transaction.atomic
def webhook_create(
    *,
    project: Project,
    name: str,
    url: str,
    events: Iterable[str] = (),
    environment: Environment | None = None,
    active: bool = True,
    actor: Any | None = None,
) -> tuple[Webhook, str]:
    """Subscribe a URL; return the webhook and its signing secret (shown this once)."""
    secret = secrets.new_secret()
    webhook = Webhook(
        project=project,
        name=name,
        url=url,
        events=list(events),
        environment=environment,
        active=active,
        secret_encrypted=secrets.encrypt(secret),
        secret_hint=secrets.hint(secret),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _check(webhook)
    save(webhook, actor)
    return webhook, secret


@transaction.atomic
def webhook_update(*, webhook: Webhook, actor: Any | None, **changes: Any) -> Webhook:
    """Change a webhook's name, URL, event filter, environment or whether it is active."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValidationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    for field, value in changes.items():
        setattr(webhook, field, value)
    _check(webhook)
    save(webhook, actor)
    return webhook


@transaction.atomic
def webhook_rotate_secret(*, webhook: Webhook, actor: Any | None) -> str:
    """Give a webhook a new signing secret (returned this once); the old one stops at once."""
    secret = secrets.new_secret()
    webhook.secret_encrypted = secrets.encrypt(secret)
    webhook.secret_hint = secrets.hint(secret)
    save(webhook, actor, validate=False)
    return secret


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor: Any | None) -> None:
    """Delete a webhook and its deliveries (pending ones are never sent)."""
    delete(webhook, actor)


@transaction.atomic
def delivery_redeliver(*, delivery: WebhookDelivery, actor: Any | None = None) -> WebhookDelivery:
    """Send a delivery's event to its webhook again, as a new delivery due now.

    The event id is the same, so the receiver sees the same ``webhook-id``: a receiver that
    already processed it drops the copy, one that missed it processes it.
    """
    [redelivery] = outbox.queue(delivery.event, [delivery.webhook])
    redelivery.redelivery_of = delivery
    redelivery.save(update_fields=["redelivery_of"])
    return redelivery


@transaction.atomic
def webhook_send_test(*, webhook: Webhook, actor: Any | None = None) -> WebhookDelivery:
    """Queue a ``webhook.test`` event for this webhook alone (to check the receiver)."""
    person = actor if getattr(actor, "is_authenticated", False) else None
    event = ChangeEvent.objects.create(
        kind=Kind.WEBHOOK_TEST.value,
        project_id=webhook.project_id,
        project_key=webhook.project.key,
        actor_id=person.pk if person is not None else None,
        actor_name=person.get_username() if person is not None else "",
        after={"webhook": webhook.name},
        occurred_at=timezone.now(),
    )
    [delivery] = outbox.queue(event, [webhook])
    return delivery
