"""``manage.py rotate_webhook_encryption``: re-encrypt every webhook secret with the first key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from flags.models import Webhook
from flags.webhooks import secrets


class Command(BaseCommand):
    """Run after putting a new key first in the setting; then drop the old key."""

    help = "Re-encrypt every webhook secret with the first FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        """Re-encrypt all secrets in one transaction (all or nothing)."""
        with transaction.atomic():
            hooks = list(Webhook.objects.select_for_update().only("pk", "secret_encrypted"))
            for hook in hooks:
                Webhook.objects.filter(pk=hook.pk).update(
                    secret_encrypted=secrets.reencrypt(hook.secret_encrypted)
                )
        self.stdout.write(f"{len(hooks)} webhook secrets re-encrypted with the first key.")
