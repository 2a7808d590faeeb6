"""Compiled rulesets, kept per process and keyed by (environment id, ruleset version).

Evaluation must be a few dictionary lookups, not a database build: each process compiles an
environment's ruleset once per version and keeps the last few in a small LRU. The version to use
comes from the environment row that authentication already loaded (``ApiKey.environment``, at the
version ``versions.known_version`` gave), so a warm evaluation makes no query of its own. A newer
version misses and is built and compiled once.

A miss looks in the shared cache next (``shared_cache``: the document rebuilt on commit of every
change, used only when its version is exactly the one asked for), and only then builds from the
database (storing the document for the other processes). When the database is down, the last
compiled ruleset of the environment is served (:func:`last_compiled`), so evaluation keeps
answering.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import DatabaseError

from flags.documents import environment_ruleset
from flags.models import Environment
from flagship import metrics
from flagship_sdk.engine import EvaluationResult, Ruleset

from . import shared_cache

MAX_ENTRIES = 64


class ServedResult(EvaluationResult):
    """A result of a ruleset compiled here: equal only to itself, hashed by identity.

    The engine builds every result a flag can have when it compiles a ruleset and hands out the
    same objects again and again, so what an answer served can be counted (``flags.evaluation
    .tally``) and rendered (``flags.evaluation.rendering``) with the results themselves as keys:
    C-level dictionary lookups with ``object.__hash__``, no Python code and no allocation per
    result (``id()`` allocated an integer for each). Fields, ``to_dict`` and every reader see a
    plain ``EvaluationResult``.
    """

    __slots__ = ()
    __hash__ = object.__hash__
    __eq__ = object.__eq__


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
    # (flags.evaluation.rendering.fragments).
    fragments: dict[str, dict[Any, bytes]] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def ruleset(self) -> Ruleset:
        """The compiled engine (two threads may both compile once; either result is the same)."""
        return Ruleset.from_dict(self.document, result_type=ServedResult)

    @property
    def etag(self) -> str:
        """The strong entity tag of the ruleset document: its quoted version."""
        return f'"{self.version}"'


_entries: OrderedDict[tuple[int, int], CompiledRuleset] = OrderedDict()
_lock = threading.Lock()
# One build per environment at a time: concurrent misses wait for the first instead of all building.
_build_locks: dict[int, threading.Lock] = {}
# The newest compiled ruleset per environment: served when the database cannot be reached
# (stale-if-error), never otherwise.
_latest: dict[int, CompiledRuleset] = {}


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
        metrics.ruleset_hit()
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
        metrics.ruleset_hit()
        return entry
    with _build_lock(environment.pk):
        entry = _cached(key)  # another thread may have built it while this one waited
        if entry is not None:
            metrics.ruleset_hit()
            return entry
        metrics.ruleset_lookup("process", "miss")
        document = shared_cache.get_document(environment.pk, environment.ruleset_version)
        if document is None:
            try:
                with metrics.timed_build("miss"):
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


def current_ruleset(environment: Environment) -> Ruleset:
    """The compiled ruleset to evaluate ``environment`` with."""
    return compiled_ruleset(environment).ruleset


def clear() -> None:
    """Forget every compiled ruleset (tests)."""
    with _lock:
        _entries.clear()
        _latest.clear()
