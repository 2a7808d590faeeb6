"""Compiled rulesets, kept per process and keyed by (environment id, ruleset version).

Evaluation must be a few dictionary lookups, not a database build: each process compiles an
environment's ruleset once per version and keeps the last few in a small LRU. The version to use
comes from the environment row that authentication already loaded (``ApiKey.environment``), so a
warm evaluation makes no query of its own. A newer version misses and is built and compiled once.

A miss looks in the shared cache next (``flags.rulesets``: the document rebuilt on commit of every
change, used only when its version is exactly the one asked for), and only then builds from the
database (storing the document for the other processes). When the database is down, the last
compiled ruleset of the environment is served (``last_compiled``), so evaluation keeps answering.

``current_version`` gives an environment's current version without a query when the shared cache
has it (set on commit), else from the database; when both fail, the last version this process saw.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import DatabaseError

from flags import rulesets
from flags.models import Environment
from flags.snapshot import environment_ruleset
from flagship_sdk.engine import Ruleset

from . import local

MAX_ENTRIES = 64


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
        document = rulesets.get_document(environment.pk, environment.ruleset_version)
        if document is None:
            try:
                document = environment_ruleset(environment)
            except DatabaseError:
                stale = last_compiled(environment.pk)
                if stale is None:
                    raise
                return stale
            rulesets.put_document(environment.pk, document)
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

    Raises ``Environment.DoesNotExist`` for an unknown environment and the database's error when
    neither the cache nor this process knows a version.
    """
    version = rulesets.get_version(environment_id)
    if version is not None:
        if version > _versions.get(environment_id, 0):
            _versions[environment_id] = version  # one atomic store; a lost race is harmless
        return version
    try:
        version = (
            Environment.objects.filter(pk=environment_id)
            .order_by()
            .values_list("ruleset_version", flat=True)
            .first()
        )
    except DatabaseError:
        known = _versions.get(environment_id)
        if known is None:
            raise
        return known
    if version is None:
        raise Environment.DoesNotExist(environment_id)
    note_version(environment_id, version)
    return version


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
    rulesets.remember_version(environment_id, version)
    with _lock:
        _versions[environment_id] = max(version, _versions.get(environment_id, 0))


def current_ruleset(environment: Environment) -> Ruleset:
    """The compiled ruleset to evaluate ``environment`` with."""
    return compiled_ruleset(environment).ruleset


def clear() -> None:
    """Forget every compiled ruleset (tests; a later issue calls it on cache invalidation)."""
    with _lock:
        _entries.clear()
        _latest.clear()
        _versions.clear()
