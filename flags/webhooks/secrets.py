"""Webhook signing secrets: issued once, stored encrypted (HMAC needs the secret itself).

A secret is ``whsec_`` and 32 random bytes in base64, the Standard Webhooks format, so receivers
can verify with that project's libraries. The database holds it encrypted with Fernet under
``FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS`` (the first key encrypts, every key decrypts, so a key is
rotated by putting the new one first and re-encrypting with ``manage.py
rotate_webhook_encryption``); without keys, one is derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from flags import conf

PREFIX = "whsec_"
HINT_LENGTH = 4


def new_secret() -> str:
    """A fresh signing secret (``whsec_`` + base64 of 32 random bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def key_bytes(secret: str) -> bytes:
    """The HMAC key of a secret: the bytes its base64 part stands for."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def hint(secret: str) -> str:
    """What people see of a stored secret: ``whsec_…`` and its last characters."""
    return f"…{secret[-HINT_LENGTH:]}"


def _cipher() -> MultiFernet:
    configured = conf.webhook_encryption_keys()
    if not configured:
        derived = hashlib.sha256(f"flagship.webhook-secrets:{settings.SECRET_KEY}".encode())
        configured = [base64.urlsafe_b64encode(derived.digest()).decode()]
    try:
        return MultiFernet([Fernet(key) for key in configured])
    except ValueError as error:
        raise ImproperlyConfigured(
            "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS holds a key that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from error


def encrypt(secret: str) -> str:
    """The secret encrypted with the first key (a Fernet token, text)."""
    return _cipher().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """The secret back; ``ImproperlyConfigured`` when no configured key can decrypt it."""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "No key in FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS decrypts this webhook's secret: keep the "
            "old key listed (after the new one) until `manage.py rotate_webhook_encryption` ran."
        ) from error


def reencrypt(token: str) -> str:
    """The same secret encrypted with the current first key."""
    return _cipher().rotate(token.encode()).decode()
