"""The one in-memory tally of the evaluations this process served, for every consumer.

Every evaluation answer (REST and OFREP, single and bulk, on the fast path and on DRF's alike:
both call the view's one ``answer``) calls :func:`served` once. Two consumers read the tally:

- evaluation counts (``flags.evaluation.counting``: to Redis, then PostgreSQL, per hour), while
  ``FLAGSHIP_COUNT_EVALUATIONS`` is on;
- Prometheus (``flagship.metrics``: ``flagship_evaluations_total``), while
  ``FLAGSHIP_METRICS_ENABLED`` is on.

The request path does as little as Python allows: no Python code and no allocation per result.
The engine hands out the same result objects again and again (it builds every result of a flag
when it compiles a ruleset), and the server's are ``ServedResult``s, hashed by identity
(``flags.delivery.compiled``): an answer's results are tallied with ``Counter.update(results)``,
C-level, under an uncontended lock, and their flags and variants are read only when the tally is
drained. Issue 14 measured the two former tallies (one per consumer, the counting one building a
tuple per result) at about 120 µs of a 200-flag answer's 900; then one tally by ``id()``, 37 µs
(an integer allocated per result); this one about a third of that (bench/RESULTS.md).

:func:`settle` drains the tally, sums it by flag and variant, and hands each consumer the windows
recorded while it was on. Each consumer settles before it reads: the counting flush (due on the
request path every ``FLAGSHIP_COUNT_FLUSH_SECONDS``), the metrics flusher thread (every
``FLAGSHIP_METRICS_FLUSH_SECONDS``) and ``/metrics``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from flags import conf


class Result(Protocol):
    """An evaluation result (``flagship_sdk.engine.EvaluationResult``)."""

    @property
    def key(self) -> str:
        """The flag's key."""

    @property
    def variant(self) -> str | None:
        """The variant served."""


class Compiled(Protocol):
    """A compiled ruleset (``flags.delivery.compiled.CompiledRuleset``)."""

    @property
    def environment_id(self) -> int:
        """The environment's primary key."""

    @property
    def document(self) -> dict[str, Any]:
        """The ruleset document (its ``project`` and ``environment`` keys)."""


@dataclass(frozen=True)
class Where:
    """Where and when evaluations were served, and which consumers were on at the time."""

    environment_id: int
    project: str  # the project's key (Prometheus label)
    environment: str  # the environment's key (Prometheus label)
    hour: int  # start of the UTC hour, epoch seconds
    count: bool  # FLAGSHIP_COUNT_EVALUATIONS was on
    export: bool  # FLAGSHIP_METRICS_ENABLED was on


# Drained evaluations: where -> (flag key, variant or None) -> times served.
Drained = dict[Where, Counter[tuple[str, str | None]]]
Consumer = Callable[[Drained], None]

_lock = threading.Lock()
# where -> result (or (flag key, variant) for a result that cannot be a key) -> times served
_windows: dict[Where, Counter[Any]] = {}
_consumers: list[Consumer] = []


def served(compiled: Compiled, results: Collection[Result], *, at: float | None = None) -> None:
    """Tally one answer's results (no I/O). ``at``: when, in epoch seconds (tests); else now."""
    count, export = conf.count_evaluations(), conf.metrics_enabled()
    if not (count or export):
        return
    document = compiled.document
    where = Where(
        compiled.environment_id,
        str(document.get("project", "")),
        str(document.get("environment", "")),
        int(time.time() if at is None else at) // 3600 * 3600,
        count,
        export,
    )
    with _lock:
        window = _windows.get(where)
        if window is None:
            window = _windows[where] = Counter()
        try:
            window.update(results)
        except TypeError:  # a result that cannot be a key: those before it were counted
            _count_rest(window, list(results))


def _count_rest(window: Counter[Any], results: list[Result]) -> None:
    """Count the results from the first that cannot be a key on (that one by flag and variant)."""
    start = next(index for index, result in enumerate(results) if not hashable(result))
    for result in results[start:]:
        window[result if hashable(result) else (result.key, result.variant)] += 1


def hashable(result: object) -> bool:
    """Whether ``result`` can be a dictionary key (a ``ServedResult`` always can)."""
    try:
        hash(result)
    except TypeError:
        return False
    return True


def drain() -> Drained:
    """Take everything tallied so far, summed by flag and variant."""
    with _lock:
        taken = dict(_windows)
        _windows.clear()
    drained: Drained = {}
    for where, window in taken.items():
        sums: Counter[tuple[str, str | None]] = Counter()
        for served, times in window.items():
            sums[served if type(served) is tuple else (served.key, served.variant)] += times
        drained[where] = sums
    return drained


def consumer(function: Consumer) -> Consumer:
    """Register a consumer of :func:`settle` (a decorator; once per function)."""
    if function not in _consumers:
        _consumers.append(function)
    return function


def settle() -> None:
    """Drain the tally into every consumer (each takes the windows recorded for it)."""
    drained = drain()
    if drained:
        for function in _consumers:
            function(drained)


def clear() -> None:
    """Forget what is tallied (tests)."""
    with _lock:
        _windows.clear()


def _forked() -> None:
    """In a forked child (a gunicorn worker): nothing of the parent's, a lock of its own."""
    global _lock  # noqa: PLW0603  # this process's fresh lock
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork
    _windows.clear()


os.register_at_fork(after_in_child=_forked)
