"""Counting server-side evaluations: in memory on the request path, then Redis, then PostgreSQL.

Every evaluation answered by the REST API (``POST /api/v1/evaluate[/<flag>]``) and by OFREP
(single and bulk) calls :func:`counted` once, on the fast path and on DRF's alike (both call the
view's one ``answer``). Ruleset downloads, the change stream and OFREP's 304 answers evaluate
nothing and count nothing.

1. **In the process**: :func:`counted` tallies the answer's results in ``flags.evaluation.tally``
   (by identity, no I/O, no Python code per result), the one tally Prometheus's
   ``flagship_evaluations_total`` reads too. :func:`flush` (and :func:`pending`) first settle it
   into this module's counts by ``(environment id, flag key, variant, hour)``. Flags are counted
   by key, since the compiled ruleset knows keys only; the key is resolved to the flag's id when
   the counts are stored.
2. **Flush** (:func:`flush`): every ``FLAGSHIP_COUNT_FLUSH_SECONDS`` the request that finds the
   flush due moves the process's counts out, in one Redis ``MULTI`` pipeline of ``HINCRBY``
   into the hash ``evaluation-counts`` (under the cache's key prefix). Without Redis (the
   embedded development mode: SQLite and a local cache) they go straight to the database. When
   the flush fails (Redis or the database down, or Redis's breaker open) the counts stay in
   memory and are tried again at the next flush, up to ``FLAGSHIP_COUNT_MAX_PENDING`` distinct
   counts, past which the oldest hours are dropped with a logged warning.
3. **Store** (:func:`store_pending`, the worker's ``evaluations.store`` job every
   :data:`STORE_SECONDS`): a Lua script reads and deletes the hash atomically (an increment lands
   either in what was read or in the next hash, never in both and never nowhere), the flag keys
   are resolved to ids and the counts are added to ``FlagEvaluationCount`` with
   ``record_counts`` in one transaction. If that fails, the counts go back into the hash.

Counts of a flag deleted (or renamed) before they are stored are dropped.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from flags import conf
from flags.delivery import shared_cache
from flags.evaluation import tally
from flags.models import Flag
from flags.models.evaluations import NO_VARIANT
from flags.services.evaluations import CountKey, merge_counts, record_counts
from flagship import breakers

logger = logging.getLogger(__name__)

# (environment id, flag key, variant or NO_VARIANT, start of the UTC hour in epoch seconds)
PendingKey = tuple[int, str, str, int]

HASH = "evaluation-counts"  # the Redis hash (under the cache's KEY_PREFIX and version)
STORE_SECONDS = 10.0  # how often the worker moves the hash into the database

# Read and delete the hash in one step: Redis runs a script atomically.
_TAKE = """
local values = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return values
"""

_lock = threading.Lock()
_flush_lock = threading.Lock()
_pending: Counter[PendingKey] = Counter()
_next_flush = 0.0
_exit_hook = False


# --- On the request path -------------------------------------------------------------------------
def counted(
    compiled: tally.Compiled, results: Collection[tally.Result], *, at: float | None = None
) -> None:
    """Count one evaluation of each result (no I/O, except a due flush).

    ``at``: when they happened (epoch seconds; tests), else now. The same tally feeds Prometheus.
    """
    tally.served(compiled, results, at=at)
    if not conf.count_evaluations():
        return
    seconds = conf.count_flush_seconds()
    if seconds > 0 and time.monotonic() >= _next_flush:
        _flush_due(seconds)


@tally.consumer
def _settled(drained: tally.Drained) -> None:
    """The evaluations served while counting was on, into this process's pending counts."""
    keys: Counter[PendingKey] = Counter()
    for where, served in drained.items():
        if where.count:
            for (flag, variant), times in served.items():
                keys[where.environment_id, flag, variant or NO_VARIANT, where.hour] += times
    if keys:
        with _lock:
            _pending.update(keys)


def _flush_due(seconds: float) -> None:
    """Flush from this request, unless another thread of the process already is."""
    global _next_flush, _exit_hook  # noqa: PLW0603  # the process's flush clock
    if not _flush_lock.acquire(blocking=False):
        return
    try:
        _next_flush = time.monotonic() + seconds
        if not _exit_hook:
            _exit_hook = True
            atexit.register(flush)  # what a stopping process still holds
    finally:
        _flush_lock.release()
    flush()


def pending() -> dict[PendingKey, int]:
    """A copy of the counts this process holds (tests, diagnostics)."""
    tally.settle()
    with _lock:
        return dict(_pending)


def clear() -> None:
    """Forget the counts this process holds (tests)."""
    global _next_flush  # noqa: PLW0603  # the process's flush clock
    tally.clear()
    with _lock:
        _pending.clear()
    _next_flush = 0.0


# --- Flushing from a process ---------------------------------------------------------------------
def _redis() -> tuple[Any, str] | None:
    """The Redis client and the hash's name, or ``None`` when the shared cache is not Redis."""
    if not conf.redis_url():
        return None
    cache = shared_cache.backend()
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    if get_client is None:
        return None
    return get_client(write=True), cache.make_key(HASH)


def _field(key: PendingKey) -> str:
    """``<environment id>:<hour>:<flag key>:<variant>`` (keys never hold a colon)."""
    environment_id, flag, variant, hour = key
    return f"{environment_id}:{hour}:{flag}:{variant}"


def _parse(field: bytes | str) -> PendingKey | None:
    """The key of a hash field, ``None`` for one this version did not write."""
    text = field.decode() if isinstance(field, bytes) else field
    parts = text.split(":", 3)
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), parts[2], parts[3], int(parts[1])


def flush() -> int:
    """Move this process's counts to Redis (or the database without Redis); counts moved.

    On failure they are kept (bounded) for the next flush; nothing is raised.
    """
    tally.settle()
    with _lock:
        taken = dict(_pending)
        _pending.clear()
    if not taken:
        return 0
    try:
        target = _redis()
        if target is None:
            if not breakers.database.available():  # no request waits on a database that is down
                _keep(taken, "database unavailable")
                return 0
            store(taken)
        elif not shared_cache.available():
            _keep(taken, "redis unavailable")
            return 0
        else:
            client, name = target
            pipe = client.pipeline(transaction=True)
            for key, count in taken.items():
                pipe.hincrby(name, _field(key), count)
            pipe.execute()
    except Exception as error:  # Redis or the database down: keep counting in memory
        if _redis() is not None:
            shared_cache.failed("count_flush", error)
        _keep(taken, repr(error))
        return 0
    return len(taken)


def _keep(taken: Mapping[PendingKey, int], why: str) -> None:
    """Put counts that could not be flushed back, dropping the oldest hours past the bound."""
    limit = conf.count_max_pending()
    with _lock:
        _pending.update(taken)
        excess = len(_pending) - limit
        dropped = 0
        if excess > 0:
            for key in sorted(_pending, key=lambda key: key[3])[:excess]:
                dropped += _pending.pop(key)
    logger.warning(
        "evaluation_counts.flush_failed",
        extra={"error": why, "pending": len(taken), "kept_limit": limit},
    )
    if dropped:
        logger.warning(
            "evaluation_counts.dropped", extra={"evaluations": dropped, "counts": excess}
        )


# --- Storing in the database ---------------------------------------------------------------------
def resolved(counts: Mapping[PendingKey, int]) -> dict[CountKey, int]:
    """The counts keyed by flag id and hour (one query); flags no longer there are dropped."""
    environments = {key[0] for key in counts}
    flag_keys = {key[1] for key in counts}
    ids = {
        (environment_id, key): pk
        for environment_id, key, pk in Flag.objects.filter(
            project__environments__in=environments, key__in=flag_keys
        )
        .order_by()
        .values_list("project__environments__id", "key", "pk")
    }
    entries: list[tuple[CountKey, int]] = []
    for (environment_id, flag, variant, hour), count in counts.items():
        flag_id = ids.get((environment_id, flag))
        if flag_id is not None:
            entries.append(
                ((environment_id, flag_id, variant, datetime.fromtimestamp(hour, UTC)), count)
            )
    return merge_counts(entries)


def store(counts: Mapping[PendingKey, int]) -> int:
    """Add counts to ``FlagEvaluationCount`` (atomically); rows touched."""
    return record_counts(resolved(counts))


def store_pending() -> int:
    """The worker's job: move the Redis hash into the database; rows touched.

    Without Redis there is nothing to move (processes store their counts themselves).
    """
    flush()  # this process's own, if it evaluated anything
    target = _redis()
    if target is None or not shared_cache.available():
        return 0
    client, name = target
    raw = client.eval(_TAKE, 1, name)
    counts: dict[PendingKey, int] = {}
    for index in range(0, len(raw), 2):
        key = _parse(raw[index])
        if key is not None:
            counts[key] = counts.get(key, 0) + int(raw[index + 1])
    if not counts:
        return 0
    try:
        return store(counts)
    except Exception:  # the database refused (or anything else): nothing taken is lost
        _give_back(client, name, counts)
        raise


def _give_back(client: Any, name: str, counts: Mapping[PendingKey, int]) -> None:
    """Put counts the database refused back into the hash (logged if Redis refuses too)."""
    try:
        pipe = client.pipeline(transaction=True)
        for key, count in counts.items():
            pipe.hincrby(name, _field(key), count)
        pipe.execute()
    except Exception:  # nowhere left to keep them
        logger.exception("evaluation_counts.lost", extra={"evaluations": sum(counts.values())})
