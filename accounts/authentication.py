"""DRF authentication by API key: environment keys for SDKs, admin tokens for automation.

Keys arrive in ``X-API-Key`` or as ``Authorization: Bearer <secret>`` (OFREP allows both). A
bearer value that is not one of our secrets is left to the JWT authenticator.

Server and client keys are checked from a cache (``flags.delivery.shared_cache``): their essentials
(id, kind, hash, environment, expiry, revocation) are kept for ``FLAGSHIP_KEY_CACHE_SECONDS``
(default 30), and the environment's current ruleset version comes from the cache too, so a warm
evaluation makes no database query. Revoking a key drops its entry at once in this deployment's
cache; the TTL bounds how long a revocation can go unseen otherwise (docs/operations.md, "Caching
and revocation"). When the database is down, the last essentials this process saw for a key are used
(a revocation cannot be written then either). ``last_used_at`` is written at most once a minute per
key, off the warm path (a cache marker, then a process-local one, says it was written recently).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from flags import conf
from flags.delivery import shared_cache
from flags.evaluation import local
from flags.evaluation.cache import known_version, note_version
from flags.models import Environment

from . import keys
from .models import ApiKey

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
ENVIRONMENT_KINDS = (ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT)
# Last essentials seen per lookup, served only when the database fails (bounded).
MAX_LAST_KNOWN = 10_000
_last_known: dict[str, dict[str, Any]] = {}
_last_written: dict[int, float] = {}
_lock = threading.Lock()


def key_cache_key(lookup: str) -> str:
    """Cache key of an API key's essentials."""
    return f"api-key:{lookup}"


def used_cache_key(key_id: int) -> str:
    """Cache key of the marker "last_used_at was written less than a minute ago"."""
    return f"api-key-used:{key_id}"


def essentials(key: ApiKey) -> dict[str, Any]:
    """What checking an environment key needs, as plain data (cacheable, no secret)."""
    return {
        "id": key.pk,
        "kind": str(key.kind),
        "name": key.name,
        "lookup": key.lookup,
        "secret_hash": key.secret_hash,
        "environment_id": key.environment_id,
        "project_id": key.environment.project_id if key.environment is not None else None,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    }


def from_essentials(data: dict[str, Any], version: int) -> ApiKey:
    """An unsaved ``ApiKey`` (with its environment at ``version``) rebuilt from essentials."""
    key = ApiKey(
        pk=data["id"],
        kind=data["kind"],
        name=data["name"],
        lookup=data["lookup"],
        secret_hash=data["secret_hash"],
        environment_id=data["environment_id"],
        expires_at=data["expires_at"],
        revoked_at=data["revoked_at"],
    )
    key.environment = Environment(
        pk=data["environment_id"], project_id=data["project_id"], ruleset_version=version
    )
    return key


def clear() -> None:
    """Forget what this process remembers about keys (tests)."""
    with _lock:
        _last_known.clear()
        _last_written.clear()


def forget_key(lookup: str) -> None:
    """Drop a key's cached essentials, here and in every process (now and again after commit)."""
    shared_cache.delete(key_cache_key(lookup))
    local.forget_key(lookup)
    with _lock:
        _last_known.pop(lookup, None)

    def again() -> None:
        shared_cache.delete(key_cache_key(lookup))
        local.forget_key(lookup)

    transaction.on_commit(again)


def _remember_last_known(lookup: str, data: dict[str, Any]) -> None:
    """Keep a key's essentials for when neither Redis nor PostgreSQL can be asked."""
    with _lock:
        if len(_last_known) >= MAX_LAST_KNOWN and lookup not in _last_known:
            _last_known.pop(next(iter(_last_known)))
        _last_known[lookup] = data


def recently_recorded(key_id: int) -> bool:
    """Whether this process wrote (or saw written) the key's ``last_used_at`` within a minute."""
    written = _last_written.get(key_id)
    return written is not None and time.monotonic() - written < LAST_USED_RESOLUTION.total_seconds()


def _key_changed(sender: type[ApiKey], instance: ApiKey, **kwargs: Any) -> None:
    if instance.lookup:
        forget_key(instance.lookup)


post_save.connect(_key_changed, sender=ApiKey, dispatch_uid="flagship.api_key_cache.save")
post_delete.connect(_key_changed, sender=ApiKey, dispatch_uid="flagship.api_key_cache.delete")


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
        if key is None or not keys.matches(secret, key.secret_hash):
            raise AuthenticationFailed("This API key is not valid.", code="invalid_api_key")
        now = timezone.now()
        if key.revoked_at is not None:
            raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
        self._record_use(key, now)
        return key

    def _cached_key(self, kind: str, lookup: str) -> ApiKey | None:
        """An environment key from the cache, with its environment's current version."""
        if kind not in ENVIRONMENT_KINDS or conf.key_cache_seconds() <= 0:
            return None
        data = local.key(lookup)
        if data is None:
            data = shared_cache.get(key_cache_key(lookup))
            if not isinstance(data, dict):
                return None
            local.remember_key(lookup, data)
            _remember_last_known(lookup, data)
        if data.get("kind") != kind:
            return None
        try:
            version = known_version(data["environment_id"])
        except Environment.DoesNotExist:
            return None  # deleted meanwhile: the database decides
        return from_essentials(data, version)

    def _stored_key(self, kind: str, lookup: str) -> ApiKey | None:
        """The key from the database (cached for next time); last known if the database fails."""
        try:
            key = (
                ApiKey.objects.select_related("environment__project", "user")
                .filter(lookup=lookup, kind=kind)
                .first()
            )
        except DatabaseError:
            with _lock:
                data = _last_known.get(lookup)
            if data is None or data.get("kind") != kind:
                raise
            # Neither Redis nor PostgreSQL can say more: serve the key as last known, and let the
            # fast path do so too for a while (``remember_key`` of the very same essentials).
            local.remember_key(lookup, data)
            return from_essentials(data, known_version(data["environment_id"]))
        if key is None or key.kind not in ENVIRONMENT_KINDS:
            return key
        data = essentials(key)
        if key.environment is not None:
            note_version(key.environment.pk, key.environment.ruleset_version)
        _remember_last_known(lookup, data)
        shared_cache.set(key_cache_key(lookup), data, conf.key_cache_seconds())
        if conf.key_cache_seconds() > 0:
            local.remember_key(lookup, data)
        if key.last_used_at is not None:
            self._mark_used(key.pk, key.last_used_at)
        return key

    def _mark_used(self, key_id: int, when: datetime) -> None:
        remaining = (when + LAST_USED_RESOLUTION - timezone.now()).total_seconds()
        if remaining > 0 and conf.key_cache_seconds() > 0:
            with _lock:
                _last_written[key_id] = time.monotonic() - (
                    LAST_USED_RESOLUTION.total_seconds() - remaining
                )
            shared_cache.add(used_cache_key(key_id), True, remaining)

    def _record_use(self, key: ApiKey, now: datetime) -> None:
        """Write ``last_used_at`` at most once a minute per key, never failing the request."""
        if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
            return
        if conf.key_cache_seconds() > 0:  # cached keys carry no last_used_at: markers say instead
            resolution = LAST_USED_RESOLUTION.total_seconds()
            with _lock:
                written = _last_written.get(key.pk)
            if written is not None and time.monotonic() - written < resolution:
                return
            if shared_cache.add(used_cache_key(key.pk), True, resolution) is False:
                # Another process wrote it less than a minute ago: ask again in a minute at most.
                with _lock:
                    _last_written[key.pk] = time.monotonic()
                return
            with _lock:
                _last_written[key.pk] = time.monotonic()
        try:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        except DatabaseError:
            # Not again for a minute: during an outage each attempt would only fail again.
            with _lock:
                _last_written[key.pk] = time.monotonic()
            logger.warning("api_key.last_used_not_recorded", extra={"key": key.lookup})
            return
        key.last_used_at = now

    def authenticate_header(self, request: Request) -> str:
        """Ask for a bearer credential on 401."""
        return 'Bearer realm="flagship"'
