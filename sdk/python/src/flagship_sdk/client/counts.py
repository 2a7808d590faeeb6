"""Evaluation counts: kept in memory per (flag, variant, hour UTC), sent in batches.

The hot path must stay cheap, so it takes no lock: each (flag, variant) of the current period has
an ``itertools.count`` cell, and ``next(cell)`` is atomic. Cells are created under a lock (bounded);
the sending thread starts a new period at every hour boundary and before each send, and folds the
previous period's cells into ``pending`` (keyed by flag, variant and hour) after a short grace
period that lets increments already under way land.
"""

from __future__ import annotations

import itertools
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from .transport import USER_AGENT, Transport, TransportError

COUNTS_PATH: Final = "/api/v1/sdk/evaluations"
MAX_KEYS: Final = 10_000
MAX_BATCH: Final = 1_000

CellKey = tuple[str, str | None]
CountKey = tuple[str, str | None, str]

_COUNT_REPR = re.compile(r"count\((\d+)\)")


def count_value(cell: itertools.count[int]) -> int:
    """How many times ``next`` was called on a cell started at 0."""
    match = _COUNT_REPR.fullmatch(repr(cell))
    return int(match.group(1)) if match else 0


def hour_of(now: float) -> tuple[str, float]:
    """The ISO hour (``2026-11-26T12:00:00Z``) holding ``now`` and when that hour ends."""
    start = int(now // 3600) * 3600
    return time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(start)), float(start + 3600)


class EvaluationCounter:
    """Counts evaluations; at most ``max_keys`` keys, increments of further keys are ``dropped``."""

    def __init__(self, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._max_keys = max_keys
        self._clock = clock
        self.cells: dict[CellKey, itertools.count[int]] = {}
        self.hour, self.hour_end = hour_of(clock())
        self._pending: dict[CountKey, int] = {}
        self._sink: itertools.count[int] = itertools.count()
        self._dropped = 0
        # Called when a period starts (the client's static-flag counters follow the periods).
        self.on_rotate: Callable[[], None] | None = None

    @property
    def dropped(self) -> int:
        """Evaluations not counted because the bound was reached."""
        return count_value(self._sink) + self._dropped

    def cell(self, flag: str, variant: str | None) -> itertools.count[int]:
        """The cell of a key in the current period, created when the bound allows."""
        key = (flag, variant)
        with self._lock:
            cells = self.cells
            cell = cells.get(key)
            if cell is None:
                if len(cells) + len(self._pending) >= self._max_keys:
                    return self._sink
                cell = cells[key] = itertools.count()
            return cell

    def record(self, flag: str, variant: str | None) -> None:
        """Count one evaluation (the client inlines this on its hot path)."""
        try:
            next(self.cells[flag, variant])
        except KeyError:
            next(self.cell(flag, variant))

    def rotate(self, grace: float | None = None) -> None:
        """Start a new period; fold the previous one into the pending counts.

        ``cells`` stays the same dict (the client holds it): each key gets a fresh cell, and keys
        that were idle for a whole period are removed to free their place.
        """
        with self._lock:
            cells, hour = self.cells, self.hour
            old = dict(cells)
            for key in old:
                cells[key] = itertools.count()
            self.hour, self.hour_end = hour_of(self._clock())
        if self.on_rotate is not None:
            self.on_rotate()
        if not old:
            return
        time.sleep(2 * sys.getswitchinterval() if grace is None else grace)
        with self._lock:
            counts: dict[CountKey, int] = {}
            for (flag, variant), cell in old.items():
                count = count_value(cell)
                if count:
                    counts[flag, variant, hour] = count
                else:
                    current = cells.get((flag, variant))
                    if current is not None and count_value(current) == 0:
                        del cells[flag, variant]
            self._merge_locked(counts)

    def _merge_locked(self, counts: dict[CountKey, int]) -> None:
        pending = self._pending
        for key, count in counts.items():
            if count <= 0:
                continue
            current = pending.get(key)
            if current is not None:
                pending[key] = current + count
            elif len(pending) < self._max_keys:
                pending[key] = count
            else:
                self._dropped += count

    def pending(self) -> dict[CountKey, int]:
        """A copy of the counts waiting to be sent (after ``rotate``)."""
        with self._lock:
            return dict(self._pending)

    def drain(self) -> dict[CountKey, int]:
        """Take every pending count."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def merge(self, counts: dict[CountKey, int]) -> None:
        """Put counts back (a failed send); keys beyond the bound are dropped."""
        with self._lock:
            self._merge_locked(counts)


def payload(counts: list[tuple[CountKey, int]]) -> dict[str, Any]:
    """The body of ``POST /api/v1/sdk/evaluations`` for one batch."""
    return {
        "sdk": USER_AGENT,
        "counts": [
            {"flag": flag, "variant": variant, "hour": hour, "count": count}
            for (flag, variant, hour), count in counts
        ],
    }


class CountsSender:
    """Sends the counts every ``interval`` seconds from a daemon thread, and once more on stop."""

    def __init__(
        self,
        counter: EvaluationCounter,
        transport: Transport,
        interval: float,
        logger: logging.Logger,
    ) -> None:
        self._counter = counter
        self._transport = transport
        self._interval = interval
        self._logger = logger
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self.sent_batches = 0
        self._thread = threading.Thread(target=self._run, name="flagship-sdk-counts", daemon=True)

    def start(self) -> None:
        """Start the sending thread."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the thread and send what is left, waiting at most about ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        remaining = deadline - time.monotonic()
        if remaining > 0:
            self.flush(timeout=remaining)

    def _run(self) -> None:
        next_send = time.monotonic() + self._interval
        while True:
            now = time.monotonic()
            until_hour = self._counter.hour_end - time.time()
            if self._stop.wait(max(0.0, min(next_send - now, until_hour))):
                return
            if time.time() >= self._counter.hour_end:
                self._counter.rotate()
            if time.monotonic() >= next_send:
                try:
                    self.flush()
                except Exception:  # never let the thread die
                    self._logger.exception("flagship.counts.flush_failed")
                next_send = time.monotonic() + self._interval

    def flush(self, timeout: float | None = None) -> bool:
        """Send every count now; put back what was not accepted. True when nothing is left."""
        with self._send_lock:
            self._counter.rotate()
            counts = self._counter.drain()
            if not counts:
                return True
            items = list(counts.items())
            for index in range(0, len(items), MAX_BATCH):
                if not self._send(items[index : index + MAX_BATCH], timeout):
                    self._counter.merge(dict(items[index:]))
                    return False
            return True

    def _send(self, batch: list[tuple[CountKey, int]], timeout: float | None) -> bool:
        """Send one batch; True when it needs no retry (accepted, or refused for good: 4xx)."""
        try:
            answer = self._transport.request(
                "POST", COUNTS_PATH, body=payload(batch), timeout=timeout
            )
        except TransportError as error:
            self._logger.warning("flagship.counts.send_failed: %s", error)
            return False
        if 200 <= answer.status < 300:
            self.sent_batches += 1
            return True
        self._logger.warning("flagship.counts.send_failed: status %s", answer.status)
        return 400 <= answer.status < 500 and answer.status not in (408, 429)
