"""Test helpers for the management API: a client authenticated as each kind of caller.

Every test module, including other apps', builds callers the same way: real credentials through
the real authenticators.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from django.utils import timezone
from rest_framework.test import APIClient

from accounts import roles
from accounts.models import ApiKey
from accounts.services import api_key_issue, api_key_revoke
from accounts.tests.factories import PASSWORD, make_user
from flags.models import Environment

PEOPLE: Final = {
    "viewer": roles.VIEWER,
    "editor": roles.EDITOR,
    "release_manager": roles.RELEASE_MANAGER,
    "administrator": roles.ADMINISTRATOR,
}
CALLERS: Final = (
    "anonymous",
    *PEOPLE,
    "admin_token",
    "server_key",
    "client_key",
    "revoked_key",
    "expired_token",
)


def bearer(client: APIClient, secret: str) -> APIClient:
    """Send ``secret`` as ``Authorization: Bearer`` on every request of ``client``."""
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def client_for(caller: str, environment: Environment) -> APIClient:
    """An API client acting as ``caller`` (one of ``CALLERS``); keys belong to ``environment``."""
    client = APIClient()
    if caller == "anonymous":
        return client
    if caller in PEOPLE:
        make_user(username=caller, role=PEOPLE[caller])
        client.login(username=caller, password=PASSWORD)
        return client
    if caller in ("server_key", "client_key"):
        kind = ApiKey.Kind.SERVER if caller == "server_key" else ApiKey.Kind.CLIENT
        _, secret = api_key_issue(kind=kind, name=caller, environment=environment)
        return bearer(client, secret)
    owner = make_user(username=f"{caller}-owner", role=roles.ADMINISTRATOR)
    key, secret = api_key_issue(
        kind=ApiKey.Kind.ADMIN,
        name=caller,
        user=owner,
        expires_at=timezone.now() + timedelta(days=1) if caller == "expired_token" else None,
    )
    if caller == "revoked_key":
        api_key_revoke(key=key)
    elif caller == "expired_token":
        # Test set-up only: move the expiry into the past, which the service rightly refuses.
        ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif caller != "admin_token":
        raise ValueError(f"unknown caller {caller!r}")
    return bearer(client, secret)
