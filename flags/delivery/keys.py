"""Every copy of an API key's essentials, and the check of a secret from process memory.

The essentials of a server or client key (:func:`essentials`: id, kind, hash, environment,
expiry, revocation; never the secret) are what checking it needs. Copies, from the authority
outward (``docs/architecture.md``, "From a commit to an SDK"):

- the ``ApiKey`` row (``accounts.authentication`` reads it on a miss and calls :func:`store`);
- the shared cache's ``api-key:<lookup>``, for ``FLAGSHIP_KEY_CACHE_SECONDS``;
- this process's memory (:func:`key`), for ``FLAGSHIP_KEY_LOCAL_CACHE_SECONDS`` at most;
- the last essentials seen per key (:func:`last_known`), served only when neither Redis nor
  PostgreSQL can be asked (a revocation cannot be written then either);
- the secrets this process has checked against the essentials in its memory (:func:`authenticate`,
  the fast path), valid only while those very essentials are.

Saving or deleting a key (a revocation, through FlagShip) calls :func:`forget_key`: the shared
copy is deleted, this process drops its own, and pub/sub tells every other process to drop theirs
(``key_changed``), now and again after the commit. The TTLs bound how long a change made outside
FlagShip goes unseen (docs/operations.md, "Caching and revocation").

``last_used_at`` is written at most once a minute per key: a marker in the shared cache
(``api-key-used:<id>``) and one in this process say it was written recently (:func:`due`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from accounts import keys as secrets
from accounts.models import ApiKey
from flags import conf
from flags.models import Environment

from . import pubsub, shared_cache

LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_KEYS = 10_000  # essentials kept in process memory
MAX_LAST_KNOWN = 10_000
MAX_CHECKED = 10_000  # checked secrets

_lock = threading.Lock()
_keys: dict[str, tuple[dict[str, Any], float]] = {}  # lookup: (essentials, expiry, monotonic)
_last_known: dict[str, dict[str, Any]] = {}
_last_written: dict[int, float] = {}  # key id: when last_used_at was written (monotonic)


def key_cache_key(lookup: str) -> str:
    """Shared cache key of an API key's essentials."""
    return f"api-key:{lookup}"


def used_cache_key(key_id: int) -> str:
    """Shared cache key of the marker "last_used_at was written less than a minute ago"."""
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


# --- The copies -------------------------------------------------------------------------------
def key_seconds() -> float:
    """How long a process trusts an environment key's essentials without asking Redis."""
    return min(conf.key_local_cache_seconds(), float(conf.key_cache_seconds()))


def key(lookup: str) -> dict[str, Any] | None:
    """An environment key's essentials cached in this process, unless expired."""
    entry = _keys.get(lookup)
    if entry is None:
        return None
    if entry[1] <= time.monotonic():
        _keys.pop(lookup, None)
        return None
    return entry[0]


def remember_key(lookup: str, data: dict[str, Any]) -> None:
    """Keep an environment key's essentials in this process for :func:`key_seconds`."""
    seconds = key_seconds()
    if seconds <= 0:
        return
    with _lock:
        if len(_keys) >= MAX_KEYS and lookup not in _keys:
            _keys.pop(next(iter(_keys)))
        _keys[lookup] = (data, time.monotonic() + seconds)


def cached(lookup: str) -> dict[str, Any] | None:
    """A key's essentials from this process, else from the shared cache (then kept here too)."""
    data = key(lookup)
    if data is None:
        data = shared_cache.get(key_cache_key(lookup))
        if not isinstance(data, dict):
            return None
        remember_key(lookup, data)
        _remember_last_known(lookup, data)
    return data


def store(api_key: ApiKey) -> dict[str, Any]:
    """Cache the essentials of a key read from the database, everywhere; return them."""
    data = essentials(api_key)
    _remember_last_known(api_key.lookup, data)
    shared_cache.set(key_cache_key(api_key.lookup), data, conf.key_cache_seconds())
    if conf.key_cache_seconds() > 0:
        remember_key(api_key.lookup, data)
    return data


def last_known(lookup: str) -> dict[str, Any] | None:
    """The last essentials this process saw for a key (only for when the database fails)."""
    with _lock:
        return _last_known.get(lookup)


def _remember_last_known(lookup: str, data: dict[str, Any]) -> None:
    with _lock:
        if len(_last_known) >= MAX_LAST_KNOWN and lookup not in _last_known:
            _last_known.pop(next(iter(_last_known)))
        _last_known[lookup] = data


def forget_key(lookup: str) -> None:
    """Drop a key's cached essentials, here and in every process (now and again after commit)."""
    with _lock:
        _last_known.pop(lookup, None)
    _forget_everywhere(lookup)
    transaction.on_commit(lambda: _forget_everywhere(lookup))


def _forget_everywhere(lookup: str) -> None:
    shared_cache.delete(key_cache_key(lookup))
    _drop(lookup)
    pubsub.publish_key_changed(lookup)


def _key_changed(sender: type[ApiKey], instance: ApiKey, **kwargs: Any) -> None:
    if instance.lookup:
        forget_key(instance.lookup)


post_save.connect(_key_changed, sender=ApiKey, dispatch_uid="flagship.api_key_cache.save")
post_delete.connect(_key_changed, sender=ApiKey, dispatch_uid="flagship.api_key_cache.delete")


# --- last_used_at markers ---------------------------------------------------------------------
def recently_recorded(key_id: int) -> bool:
    """Whether this process wrote (or saw written) the key's ``last_used_at`` within a minute."""
    written = _last_written.get(key_id)
    return written is not None and time.monotonic() - written < LAST_USED_RESOLUTION.total_seconds()


def note_recorded(key_id: int, *, age: float = 0.0) -> None:
    """The key's ``last_used_at`` was written (or tried) ``age`` seconds ago, as far as we know."""
    with _lock:
        _last_written[key_id] = time.monotonic() - age


def recorded_at(key_id: int, when: datetime) -> None:
    """Mark a ``last_used_at`` read from the database, here and shared, for the rest of its minute.

    So the warm path, which carries no ``last_used_at``, does not write it again meanwhile.
    """
    remaining = (when + LAST_USED_RESOLUTION - timezone.now()).total_seconds()
    if remaining > 0 and conf.key_cache_seconds() > 0:
        note_recorded(key_id, age=LAST_USED_RESOLUTION.total_seconds() - remaining)
        shared_cache.add(used_cache_key(key_id), True, remaining)


def due(key_id: int) -> bool:
    """Whether this request should write the key's ``last_used_at`` (it is claimed if so).

    Without the key cache, always: the key came from the database, and the caller compared its
    ``last_used_at``. Cached essentials carry none, so the markers say: not when this process, or
    through the shared marker another one, wrote it within a minute (ask again in a minute at
    most).
    """
    if conf.key_cache_seconds() <= 0:
        return True
    if recently_recorded(key_id):
        return False
    claimed = shared_cache.add(used_cache_key(key_id), True, LAST_USED_RESOLUTION.total_seconds())
    note_recorded(key_id)
    return claimed is not False


# --- Checking a secret -----------------------------------------------------------------------
# Why essentials refuse a secret (DRF's authentication codes).
INVALID = "invalid_api_key"
REVOKED = "revoked_api_key"
EXPIRED = "expired_api_key"


def refusal(
    secret: str,
    secret_hash: str,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    now: datetime,
) -> str | None:
    """Why a key refuses ``secret`` (``INVALID``, ``REVOKED``, ``EXPIRED``), or ``None``.

    The one check of a secret against a key, for the fast path (:func:`authenticate`) and DRF's
    authenticator alike.
    """
    if not secrets.matches(secret, secret_hash):
        return INVALID
    if revoked_at is not None:
        return REVOKED
    if expires_at is not None and expires_at <= now:
        return EXPIRED
    return None


@dataclass(frozen=True, slots=True)
class FastKey:
    """An environment key checked from this process's memory."""

    id: int
    kind: str
    lookup: str
    environment_id: int
    project_id: int


# Secrets this process has checked: the key, the essentials it was checked against (the entry is
# only used while ``key`` still returns that very object: a forgotten, re-fetched or expired key
# is checked again) and its expiry as a timestamp.
_checked: dict[str, tuple[FastKey, dict[str, Any], float | None]] = {}


def authenticate(secret: str, kinds: tuple[str, ...]) -> FastKey | None:
    """The environment key of ``secret`` when this process can vouch for it alone, else ``None``.

    ``None`` sends the request to the full path: a key of another kind, one not in memory, a
    revoked, expired or mismatched one, or one whose ``last_used_at`` is due.
    """
    checked = _checked.get(secret)
    if checked is not None:
        fast_key, data, expires = checked
        if key(fast_key.lookup) is data:
            if (
                fast_key.kind in kinds
                and (expires is None or expires > time.time())
                and recently_recorded(fast_key.id)
            ):
                return fast_key
            return None
    fresh = _check(secret, kinds)
    if fresh is not None:
        remembered = key(fresh.lookup)
        if remembered is not None:
            if len(_checked) >= MAX_CHECKED:
                _checked.clear()
            expires_at = remembered.get("expires_at")
            expiry = expires_at.timestamp() if expires_at else None
            _checked[secret] = (fresh, remembered, expiry)
    return fresh


def _check(secret: str, kinds: tuple[str, ...]) -> FastKey | None:
    parsed = secrets.parse(secret)
    if parsed is None or parsed[0] not in kinds:
        return None
    data = key(parsed[1])
    if data is None or data.get("kind") != parsed[0]:
        return None
    now = timezone.now()
    if refusal(secret, data["secret_hash"], data["revoked_at"], data["expires_at"], now):
        return None
    if not recently_recorded(data["id"]):
        return None  # last_used_at is due: the full path writes it
    return FastKey(
        data["id"], parsed[0], parsed[1], data["environment_id"], data["project_id"] or 0
    )


def clear() -> None:
    """Forget every key this process keeps, checked, saw last and marked as used (tests)."""
    with _lock:
        _keys.clear()
        _checked.clear()
        _last_known.clear()
        _last_written.clear()


def _drop(lookup: str) -> None:
    """Another process changed a key: forget its essentials here."""
    _keys.pop(lookup, None)


pubsub.connect(pubsub.Receiver(key_changed=_drop))
