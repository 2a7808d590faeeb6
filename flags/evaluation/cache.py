"""Compiled rulesets, kept per process and keyed by (environment id, ruleset version).

Evaluation must be a few dictionary lookups, not a database build: each process compiles an
environment's ruleset once per version and keeps the last few in a small LRU. The version to use
comes from the environment row that authentication already loaded (``ApiKey.environment``), so a
warm evaluation makes no query of its own. A newer version misses and is built and compiled once.

A miss looks in the shared cache next (``flags.delivery.shared_cache``: the document rebuilt on
commit of every change, used only when its version is exactly the one asked for), and only then
builds from the database (storing the document for the other processes). When the database is down,
the last compiled ruleset of the environment is served (``last_compiled``), so evaluation keeps
answering.

``current_version`` gives an environment's current version without a query when the shared cache
has it (set on commit), else from the database; when both fail, the last version this process saw.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import DatabaseError, OperationalError

from flags import conf, events
from flags.delivery import shared_cache
from flags.models import Environment
from flags.snapshot import environment_ruleset
from flagship import breakers
from flagship_sdk.engine import Ruleset

from . import local

logger = logging.getLogger(__name__)

MAX_ENTRIES = 64
# While Redis is down, how often a process asks the database for an environment's version: the
# bound on how late a change reaches it then (pub/sub, which pushes changes at once, is down too).
DATABASE_POLL_SECONDS = 1.0
UNAVAILABLE = "the database is unavailable and this process knows no version"


@dataclass(frozen=True)
class CompiledRuleset:
    """One environment's ruleset at one version: the document, its JSON and the compiled engine.

    The engine compiles on first use: a process asked only for the document (``GET
    /api/v1/ruleset``, what SDKs download right after a change) never pays for it.
    """

    environment_id: int
    version: int
    document: dict[str, Any]
    body: bytes = field(repr=False)
    # JSON fragments of results by response style and id(result), filled by the fast path
    # (flags.evaluation.fast.fragments), and the results they belong to, kept alive.
    fragments: dict[str, dict[int, bytes]] = field(default_factory=dict, repr=False, compare=False)
    kept: list[object] = field(default_factory=list, repr=False, compare=False)

    @cached_property
    def ruleset(self) -> Ruleset:
        """The compiled engine (two threads may both compile once; either result is the same)."""
        return Ruleset.from_dict(self.document)

    @property
    def etag(self) -> str:
        """The strong entity tag of the ruleset document: its quoted version."""
        return f'"{self.version}"'


_entries: OrderedDict[tuple[int, int], CompiledRuleset] = OrderedDict()
_lock = threading.Lock()
# One build per environment at a time: concurrent misses wait for the first instead of all building.
_build_locks: dict[int, threading.Lock] = {}
# The newest compiled ruleset per environment and the newest version seen: served when the
# database cannot be reached (stale-if-error), never otherwise.
_latest: dict[int, CompiledRuleset] = {}
_versions: dict[int, int] = {}
_polled: dict[int, tuple[int, float]] = {}  # environment id: (version, when read), Redis down


def _cached(key: tuple[int, int]) -> CompiledRuleset | None:
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
        return entry


def _store(entry: CompiledRuleset, *keys: tuple[int, int]) -> None:
    with _lock:
        for key in keys:
            _entries[key] = entry
            _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
        latest = _latest.get(entry.environment_id)
        if latest is None or latest.version <= entry.version:
            _latest[entry.environment_id] = entry


def _build_lock(environment_id: int) -> threading.Lock:
    with _lock:
        return _build_locks.setdefault(environment_id, threading.Lock())


def compiled_for(environment_id: int, project_id: int, version: int) -> CompiledRuleset:
    """:func:`compiled_ruleset` from ids: a cached entry without building an ``Environment``."""
    entry = _cached((environment_id, version))
    if entry is not None:
        return entry
    return compiled_ruleset(
        Environment(pk=environment_id, project_id=project_id, ruleset_version=version)
    )


def compiled_ruleset(environment: Environment) -> CompiledRuleset:
    """The environment's compiled ruleset at ``environment.ruleset_version`` (or newer).

    The document is built from the database only on a miss. It re-reads the version, so when a
    change committed in between, the entry is stored under both the version asked for and the
    version it holds (content never lags behind the version it is stored under).
    """
    key = (environment.pk, environment.ruleset_version)
    entry = _cached(key)
    if entry is not None:
        return entry
    with _build_lock(environment.pk):
        entry = _cached(key)  # another thread may have built it while this one waited
        if entry is not None:
            return entry
        document = shared_cache.get_document(environment.pk, environment.ruleset_version)
        if document is None:
            try:
                document = environment_ruleset(environment)
            except DatabaseError:
                stale = last_compiled(environment.pk)
                if stale is None:
                    raise
                return stale
            shared_cache.put_document(environment.pk, document)
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        entry = CompiledRuleset(
            environment_id=environment.pk,
            version=int(document["version"]),
            document=document,
            body=body,
        )
        _store(entry, key, (environment.pk, entry.version))
        return entry


def last_compiled(environment_id: int) -> CompiledRuleset | None:
    """The newest ruleset this process compiled for an environment (for when the database fails)."""
    with _lock:
        return _latest.get(environment_id)


def current_version(environment_id: int) -> int:
    """The environment's current ruleset version: shared cache, else database, else last seen.

    While Redis is down (its breaker open) the database is asked at most every
    ``DATABASE_POLL_SECONDS`` per environment and process, not on every request; while the
    database is down too, it is not asked at all and the newest version this process knows is
    the answer. Raises ``Environment.DoesNotExist`` for an unknown environment and the database's
    error when neither the cache nor this process knows a version.
    """
    version = shared_cache.get_version(environment_id)
    if version is not None:
        if version > _versions.get(environment_id, 0):
            _versions[environment_id] = version  # one atomic store; a lost race is harmless
        return version
    polling = not shared_cache.available()
    if polling:
        polled = _polled.get(environment_id)
        if polled is not None and time.monotonic() - polled[1] < DATABASE_POLL_SECONDS:
            return polled[0]
    try:
        if not breakers.database.available():
            raise OperationalError(UNAVAILABLE)
        version = (
            Environment.objects.filter(pk=environment_id)
            .order_by()
            .values_list("ruleset_version", flat=True)
            .first()
        )
    except DatabaseError:
        return _last_seen(environment_id)
    if version is None:
        raise Environment.DoesNotExist(environment_id)
    if polling:
        _polled[environment_id] = (version, time.monotonic())
    note_version(environment_id, version)
    return version


def _last_seen(environment_id: int) -> int:
    """The newest version this process knows of an environment; re-raises when it knows none."""
    known = _versions.get(environment_id)
    if known is None:
        # Versions pushed through the subscription are not copied here: the last ruleset this
        # process compiled for the environment is the newest version it knows.
        latest = last_compiled(environment_id)
        if latest is None:
            raise OperationalError(UNAVAILABLE)
        known = latest.version
    return known


def known_version(environment_id: int) -> int:
    """:func:`current_version`, from this process's memory while changes are pushed to it.

    ``flags.evaluation.local`` holds the versions its Redis subscription announced; an environment
    it has not heard of yet is read once (as :func:`current_version` does) and remembered.
    """
    version = local.version(environment_id)
    if version is not None:
        return version
    since = local.generation()
    version = current_version(environment_id)
    if since >= 0:
        local.record_version(environment_id, version, since)
    return version


def note_version(environment_id: int, version: int) -> None:
    """Remember a version read from the database (shared cache, unless newer; and this process)."""
    shared_cache.remember_version(environment_id, version)
    with _lock:
        _versions[environment_id] = max(version, _versions.get(environment_id, 0))


def current_ruleset(environment: Environment) -> Ruleset:
    """The compiled ruleset to evaluate ``environment`` with."""
    return compiled_ruleset(environment).ruleset


def reconcile_versions() -> dict[int, int]:
    """Bring Redis's version of every environment up to the database's, after an outage.

    Run when Redis's or PostgreSQL's breaker closes (``flags.apps``). A change committed while
    Redis was unreachable could not be announced, and a version key written before the outage
    (its TTL not yet over) would otherwise be trusted over it. Each environment whose cached
    version is missing or older is set and announced on the change channel, so every process and
    every stream subscriber hears of it. Returns those environments and their versions; nothing
    (it runs again on the next recovery) while either dependency is still down.
    """
    if not shared_cache.available() or conf.version_cache_seconds() <= 0:
        return {}
    try:
        versions = dict(Environment.objects.order_by().values_list("pk", "ruleset_version"))
    except DatabaseError:
        return {}  # PostgreSQL is down too: its own recovery reconciles
    keys = {shared_cache.version_key(pk): pk for pk in versions}
    try:
        cached = shared_cache.backend().get_many(list(keys))
    except Exception as error:  # any cache failure: the next recovery tries again
        shared_cache.failed("reconcile", error)
        return {}
    moved = {
        pk: versions[pk]
        for key, pk in keys.items()
        if not isinstance(cached.get(key), int) or cached[key] < versions[pk]
    }
    for environment_id, version in moved.items():
        shared_cache.announce_version(environment_id, version)
        note_version(environment_id, version)
        events.publish_ruleset_changed(environment_id, version)
    if moved:
        logger.info("ruleset.versions_reconciled", extra={"environments": len(moved)})
    return moved


def clear() -> None:
    """Forget every compiled ruleset (tests; a later issue calls it on cache invalidation)."""
    with _lock:
        _entries.clear()
        _latest.clear()
        _versions.clear()
        _polled.clear()
