"""Every copy of an environment's current ruleset version, and how a committed change moves them.

Copies, from the authority outward (``docs/architecture.md``, "From a commit to an SDK"):

- the ``ruleset_version`` column, advanced in the writing transaction (:func:`advance`);
- the shared cache's ``ruleset-version:<id>`` key, set after the commit (:func:`announce`) and
  trusted for ``FLAGSHIP_VERSION_CACHE_SECONDS``;
- this process's memory: the versions pushed through pub/sub, trusted while the process's
  subscription holds (:func:`version`), and the newest version seen, served only when both Redis
  and PostgreSQL fail (:func:`current_version`).

**Writes** (:func:`advance`, called by ``flags.delivery.changes.emit`` for every service's change):
a transaction advances an environment's ``ruleset_version`` once, however many rows and service
calls it makes. The first advance of an environment in a transaction runs the ``F()`` update and
registers its announcement with ``transaction.on_commit``; later ones find that announcement still
pending and do nothing. The pending announcement is the record, so a rollback forgets it exactly
when it forgets the update: Django drops the callbacks registered inside a savepoint that rolls back
(and all of them when the transaction does), so a write after a rolled-back savepoint advances the
version again, and every commit announces each environment once, with its final version. Inside a
test's transaction (pytest-django's ``django_db``, Django's ``TestCase``), nothing commits between
service calls: there, the outermost atomic block the application opened (the first one not marked
``_from_testcase``) stands for the transaction, as it does in production. Documents are built from
one committed state (``committed.one_state``).

**After the commit** (:func:`announce`): the new version goes to the shared cache, to this
process's memory and, through pub/sub, to every process and stream; then the ruleset document is
rebuilt into the shared cache.

**Reads**: :func:`known_version` on the evaluation path (memory while pushed, else
:func:`current_version`: shared cache, else database, else the newest version seen). While the
process's subscription is confirmed (``pubsub``), the version it last heard for an environment is
the current one; until an environment has been heard of, the first reader fetches its version and
records it. When the subscription is lost, every pushed version is forgotten and readers go back to
the shared cache on each request until it is confirmed again. Without ``REDIS_URL`` there is
nothing to subscribe to, and with ``FLAGSHIP_VERSION_CACHE_SECONDS=0`` (the test default) nothing
pushed is trusted: every read goes to the shared cache or the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F

from flags import conf, documents
from flags.models import Environment
from flags.stream import subscriptions
from flagship import breakers, metrics

from . import compiled, pubsub, shared_cache

logger = logging.getLogger(__name__)

# While Redis is down, how often a process asks the database for an environment's version: the
# bound on how late a change reaches it then (pub/sub, which pushes changes at once, is down too).
DATABASE_POLL_SECONDS = 1.0
UNAVAILABLE = "the database is unavailable and this process knows no version"

_lock = threading.Lock()
# Pushed through pub/sub: trusted while the subscription holds (and the version cache is on).
_pushed: dict[int, int] = {}
_trusted = False
# Bumped whenever the subscription is (re)confirmed or lost: a version read from the shared cache
# is only recorded if no bump happened since the read began (it could predate a missed notice).
_generation = 0
# The newest version seen per environment: served when the database cannot be reached, never
# otherwise.
_seen: dict[int, int] = {}
# While Redis is down: the version last read from the database per environment, and when.
_polled: dict[int, tuple[int, float]] = {}


# --- Writes: one transaction, one advance -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Announcement:
    """The on-commit callback of one advance: ``run(environment_ids)`` once the change committed."""

    environment_ids: tuple[int, ...]
    run: Callable[[list[int]], None]

    def __call__(self) -> None:
        """Announce the environments (after commit)."""
        self.run(list(self.environment_ids))


def advance(environment_ids: Iterable[int], announce: Callable[[list[int]], None]) -> list[int]:
    """Advance the versions of the environments this transaction has not advanced yet.

    Returns the ones advanced now; ``announce`` is called with them after commit (at once without
    a transaction).
    """
    ids = sorted(set(environment_ids))
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        done = _advanced(connection)
        ids = [pk for pk in ids if pk not in done]
    if not ids:
        return []
    Environment.objects.filter(pk__in=ids).update(ruleset_version=F("ruleset_version") + 1)
    transaction.on_commit(Announcement(tuple(ids), announce))
    return ids


def _advanced(connection: Any) -> set[int]:
    """The environments whose version the current transaction advanced (and still will commit)."""
    ours = _ours(connection)
    environments: set[int] = set()
    for entry in connection.run_on_commit:
        # (savepoint ids open at registration, callback, robust); the stubs know only two.
        savepoints, callback = entry[0], entry[1]
        if isinstance(callback, Announcement) and ours(savepoints):
            environments.update(callback.environment_ids)
    return environments


def _ours(connection: Any) -> Callable[[set[str]], bool]:
    """Whether a callback is this transaction's, by the savepoints open when it was registered.

    Every pending one is, unless a test's atomic blocks wrap the application's.
    """
    blocks = connection.atomic_blocks
    tests = 0
    while tests < len(blocks) and getattr(blocks[tests], "_from_testcase", False):
        tests += 1
    if tests == 0:
        return lambda savepoints: True  # the real transaction: pending means not yet committed
    if tests == len(blocks):
        return lambda savepoints: False  # no application block: each advance stands alone
    # The savepoint of the application's outermost block (one savepoint id per block, except the
    # block that began the transaction, which has none).
    sid = connection.savepoint_ids[tests + len(connection.savepoint_ids) - len(blocks)]
    if sid is None:  # atomic(savepoint=False): nothing tells its callbacks apart
        return lambda savepoints: False
    return lambda savepoints: sid in savepoints


# --- After the commit -------------------------------------------------------------------------
def announce(environment_ids: list[int]) -> None:
    """Publish each environment's committed version, then rebuild its document (after commit).

    The version goes to the shared cache (the hot path reads it) and to this process's memory,
    and pub/sub tells every process and change stream at once; only then is the ruleset document
    rebuilt into the shared cache, keeping the build (tens of milliseconds on a large environment)
    out of the propagation time; a process asked for the new version before the document is
    stored builds it itself (``compiled``). A failure (Redis or the database) is logged, never
    raised: the write has committed, and readers fall back to the database.
    """
    logger.info("ruleset.changed", extra={"environments": environment_ids})
    for environment_id in environment_ids:
        try:
            environment = Environment.objects.get(pk=environment_id)
            version = environment.ruleset_version
            shared_cache.announce_version(environment_id, version)
        except Exception:
            logger.exception("ruleset.version_not_announced", extra={"environment": environment_id})
            continue
        heard(environment_id, version)  # this process answers with it from now on
        try:
            pubsub.publish_ruleset_changed(environment_id, version)
        except Exception:
            logger.exception("ruleset.not_published", extra={"environment": environment_id})
        if conf.ruleset_cache_seconds() > 0:
            try:
                with metrics.timed_build("commit"):
                    document = documents.environment_ruleset(environment)
                if int(document["version"]) >= version:
                    shared_cache.put_document(environment_id, document)
            except Exception:
                logger.exception("ruleset.cache_not_rebuilt", extra={"environment": environment_id})


def reconcile_versions() -> dict[int, int]:
    """Bring the shared cache's version of every environment up to the database's, after an outage.

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
        pubsub.publish_ruleset_changed(environment_id, version)
    if moved:
        logger.info("ruleset.versions_reconciled", extra={"environments": len(moved)})
    return moved


# --- Reads ------------------------------------------------------------------------------------
def known_version(environment_id: int) -> int:
    """:func:`current_version`, from this process's memory while changes are pushed to it.

    An environment the subscription has not announced yet is read once (as
    :func:`current_version` does) and remembered.
    """
    pushed = version(environment_id)
    if pushed is not None:
        return pushed
    since = generation()
    current = current_version(environment_id)
    if since >= 0:
        record_version(environment_id, current, since)
    return current


def current_version(environment_id: int) -> int:
    """The environment's current ruleset version: shared cache, else database, else last seen.

    While Redis is down (its breaker open) the database is asked at most every
    ``DATABASE_POLL_SECONDS`` per environment and process, not on every request; while the
    database is down too, it is not asked at all and the newest version this process knows is
    the answer. Raises ``Environment.DoesNotExist`` for an unknown environment and the database's
    error when neither the cache nor this process knows a version.
    """
    cached = shared_cache.get_version(environment_id)
    if cached is not None:
        if cached > _seen.get(environment_id, 0):
            _seen[environment_id] = cached  # one atomic store; a lost race is harmless
        return cached
    polling = not shared_cache.available()
    if polling:
        polled = _polled.get(environment_id)
        if polled is not None and time.monotonic() - polled[1] < DATABASE_POLL_SECONDS:
            return polled[0]
    try:
        if not breakers.database.available():
            raise OperationalError(UNAVAILABLE)
        stored = (
            Environment.objects.filter(pk=environment_id)
            .order_by()
            .values_list("ruleset_version", flat=True)
            .first()
        )
    except DatabaseError:
        return _last_seen(environment_id)
    if stored is None:
        raise Environment.DoesNotExist(environment_id)
    if polling:
        _polled[environment_id] = (stored, time.monotonic())
    note_version(environment_id, stored)
    return stored


def _last_seen(environment_id: int) -> int:
    """The newest version this process knows of an environment; re-raises when it knows none."""
    known = _seen.get(environment_id)
    if known is None:
        # Versions pushed through the subscription are not copied here: the last ruleset this
        # process compiled for the environment is the newest version it knows.
        latest = compiled.last_compiled(environment_id)
        if latest is None:
            raise OperationalError(UNAVAILABLE)
        known = latest.version
    return known


def note_version(environment_id: int, value: int) -> None:
    """Remember a version read from the database (shared cache, unless newer; and this process)."""
    shared_cache.remember_version(environment_id, value)
    with _lock:
        _seen[environment_id] = max(value, _seen.get(environment_id, 0))


# --- Pushed versions --------------------------------------------------------------------------
def enabled() -> bool:
    """Whether pushed versions may be trusted (Redis configured and the version cache on)."""
    return bool(conf.redis_url()) and conf.version_cache_seconds() > 0


def listen() -> None:
    """Have this process's listener run if pushed versions may be trusted (warm-up, readers)."""
    if enabled():
        pubsub.ensure_listener()


def version(environment_id: int) -> int | None:
    """The environment's current version if this process knows it for sure, else ``None``."""
    if not _trusted:
        listen()
        return None
    return _pushed.get(environment_id)


def generation() -> int:
    """The subscription generation (pass it back to :func:`record_version`); -1 if untrusted."""
    return _generation if _trusted else -1


def record_version(environment_id: int, value: int, since: int) -> None:
    """Record a version read elsewhere, if the subscription held since the read began."""
    with _lock:
        if not _trusted or _generation != since:
            return
        if value > _pushed.get(environment_id, 0):
            _pushed[environment_id] = value


def heard(environment_id: int, value: int) -> None:
    """A change was committed (here or in another process): the environment is at ``value``."""
    with _lock:
        if value > _pushed.get(environment_id, 0):
            _pushed[environment_id] = value


def _ruleset_changed(change: pubsub.RulesetChanged) -> None:
    heard(change.environment_id, change.version)  # evaluation first, then the streams
    subscriptions.broker.dispatch(change)


def _subscription_changed(*, trusted: bool) -> None:
    global _trusted, _generation  # noqa: PLW0603  # guarded by _lock
    with _lock:
        _generation += 1
        _trusted = trusted
        _pushed.clear()  # notices may have been missed: learn every version again


def _subscribed(again: bool) -> None:
    _subscription_changed(trusted=enabled())
    subscriptions.broker.subscription_confirmed(again)


def _lost() -> None:
    _subscription_changed(trusted=False)
    subscriptions.broker.subscription_lost()


def clear() -> None:
    """Forget every version this process pushed, saw and polled (tests)."""
    with _lock:
        _pushed.clear()
        _seen.clear()
        _polled.clear()


# This process's pub/sub messages about rulesets reach its memory, then its streams.
pubsub.connect(
    pubsub.Receiver(ruleset_changed=_ruleset_changed, subscribed=_subscribed, lost=_lost)
)
