"""System checks of FlagShip's own settings (``manage.py check --deploy`` runs the deploy ones)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register

from flags import conf


@register(Tags.security, deploy=True)
def webhook_encryption_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Warn when webhook secrets are encrypted under a key derived from ``SECRET_KEY``."""
    if conf.webhook_encryption_keys():
        return []
    return [
        Warning(
            "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS is not set: webhook signing secrets are encrypted "
            "with a key derived from SECRET_KEY, so a database dump plus the SECRET_KEY reveals "
            "them.",
            hint='Set it to a Fernet key: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())" (docs/webhooks.md).',
            id="flagship.W001",
        )
    ]
