"""DRF authentication by API key: environment keys for SDKs, admin tokens for automation.

Keys arrive in ``X-API-Key`` or as ``Authorization: Bearer <secret>`` (OFREP allows both). A
bearer value that is not one of our secrets is left to the JWT authenticator.

Server and client keys are checked from their cached essentials (``flags.delivery.keys``: this
process's memory, else the shared cache), with their environment's current ruleset version
(``flags.delivery.versions.known_version``), so a warm evaluation makes no database query. A miss
reads the database and caches the essentials for next time; when the database is down, the last
essentials this process saw for the key are used (a revocation cannot be written then either).
``last_used_at`` is written at most once a minute per key, off the warm path
(``keys.due``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from flags import conf
from flags.delivery import keys as essentials
from flags.delivery import versions
from flags.models import Environment

from . import keys
from .models import ApiKey

logger = logging.getLogger(__name__)

ENVIRONMENT_KINDS = (ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT)
REFUSALS = {
    essentials.INVALID: "This API key is not valid.",
    essentials.REVOKED: "This API key has been revoked.",
    essentials.EXPIRED: "This API key has expired.",
}


def presented_secret(request: HttpRequest | Request) -> str | None:
    """The API key secret a request carries, if any (read from ``META``: no header parsing)."""
    meta = request.META
    header = meta.get("HTTP_X_API_KEY")
    if header:
        return str(header).strip()
    authorization = str(meta.get("HTTP_AUTHORIZATION", ""))
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
            key = self._cached_key(*parsed) or self._stored_key(*parsed)
        if key is None:
            raise AuthenticationFailed(REFUSALS[essentials.INVALID], code=essentials.INVALID)
        now = timezone.now()
        reason = essentials.refusal(secret, key.secret_hash, key.revoked_at, key.expires_at, now)
        if reason is not None:
            raise AuthenticationFailed(REFUSALS[reason], code=reason)
        self._record_use(key, now)
        return key

    def _cached_key(self, kind: str, lookup: str) -> ApiKey | None:
        """An environment key from the cache, with its environment's current version."""
        if kind not in ENVIRONMENT_KINDS or conf.key_cache_seconds() <= 0:
            return None
        data = essentials.cached(lookup)
        if data is None or data.get("kind") != kind:
            return None
        try:
            version = versions.known_version(data["environment_id"])
        except Environment.DoesNotExist:
            return None  # deleted meanwhile: the database decides
        return essentials.from_essentials(data, version)

    def _stored_key(self, kind: str, lookup: str) -> ApiKey | None:
        """The key from the database (cached for next time); last known if the database fails."""
        try:
            key = (
                ApiKey.objects.select_related("environment__project", "user")
                .filter(lookup=lookup, kind=kind)
                .first()
            )
        except DatabaseError:
            data = essentials.last_known(lookup)
            if data is None or data.get("kind") != kind:
                raise
            # Neither Redis nor PostgreSQL can say more: serve the key as last known, and let the
            # fast path do so too for a while (``remember_key`` of the very same essentials).
            essentials.remember_key(lookup, data)
            version = versions.known_version(data["environment_id"])
            return essentials.from_essentials(data, version)
        if key is None or key.kind not in ENVIRONMENT_KINDS:
            return key
        if key.environment is not None:
            versions.note_version(key.environment.pk, key.environment.ruleset_version)
        essentials.store(key)
        if key.last_used_at is not None:
            essentials.recorded_at(key.pk, key.last_used_at)
        return key

    def _record_use(self, key: ApiKey, now: datetime) -> None:
        """Write ``last_used_at`` at most once a minute per key, never failing the request."""
        if (
            key.last_used_at is not None
            and now - key.last_used_at < essentials.LAST_USED_RESOLUTION
        ):
            return
        if not essentials.due(key.pk):
            return
        try:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        except DatabaseError:
            # Not again for a minute: during an outage each attempt would only fail again.
            essentials.note_recorded(key.pk)
            logger.warning("api_key.last_used_not_recorded", extra={"key": key.lookup})
            return
        key.last_used_at = now

    def authenticate_header(self, request: Request) -> str:
        """Ask for a bearer credential on 401."""
        return 'Bearer realm="flagship"'
