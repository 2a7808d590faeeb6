"""DRF authentication by API key: environment keys for SDKs, admin tokens for automation.

Keys arrive in ``X-API-Key`` or as ``Authorization: Bearer <secret>`` (OFREP allows both). A
bearer value that is not one of our secrets is left to the JWT authenticator.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from . import keys
from .models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


def presented_secret(request: Request) -> str | None:
    """The API key secret a request carries, if any."""
    header = request.headers.get("X-API-Key")
    if header:
        return header.strip()
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value[:4] in keys.KIND_OF_PREFIX:
        return value
    return None


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticate a server key, client key or admin token.

    Environment keys authenticate as an anonymous user with ``request.auth`` the ``ApiKey``;
    an admin token authenticates as its owner, with the owner's permissions.
    """

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        """Return ``(user, key)`` for a valid key, ``None`` when no key was presented."""
        secret = presented_secret(request)
        if secret is None:
            return None
        key = self.key_for(secret)
        if key.kind == ApiKey.Kind.ADMIN:
            owner = key.user
            if owner is None or not owner.is_active:
                raise AuthenticationFailed(
                    "The owner of this token is inactive.", code="inactive_user"
                )
            return owner, key
        return AnonymousUser(), key

    def key_for(self, secret: str) -> ApiKey:
        """Find and check the key of a secret; raise ``AuthenticationFailed`` otherwise."""
        parsed = keys.parse(secret)
        key = None
        if parsed is not None:
            key = (
                ApiKey.objects.select_related("environment__project", "user")
                .filter(lookup=parsed[1], kind=parsed[0])
                .first()
            )
        if key is None or not keys.matches(secret, key.secret_hash):
            raise AuthenticationFailed("This API key is not valid.", code="invalid_api_key")
        now = timezone.now()
        if key.revoked_at is not None:
            raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            # At most one write a minute per key: evaluation traffic must not write per request.
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key

    def authenticate_header(self, request: Request) -> str:
        """Ask for a bearer credential on 401."""
        return 'Bearer realm="flagship"'
