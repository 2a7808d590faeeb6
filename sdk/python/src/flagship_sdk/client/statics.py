"""``is_enabled`` for static flags: served from a table, without evaluating.

Many flags do not read the context at all: kill switches, fully rolled out or disabled flags (the
engine's "static" flags, :meth:`flagship_sdk.engine.Ruleset.static_results`). For those the answer
is a constant, so ``FlagShipClient.is_enabled`` looks the key up in a table holding
``(value, cell)`` for them (``None`` for the other flags, so those cost no exception) and counts
the evaluation on the cell: a dictionary lookup and one ``next()``, a few tens of nanoseconds,
where the general path costs a method call, the engine and a counter look-up. Every other key goes
to the general path.

A static flag does not read the context, so here its value is served whatever the context is;
``evaluate`` (and the general path of flags that read the context) answers ``INVALID_CONTEXT`` for
a context that is not an object.

The table is rebuilt, with fresh counting cells, whenever the ruleset changes and whenever the
evaluation counter starts a new period; the old cells' counts are then folded into the counter
under the old period's hour.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..engine import Ruleset
from .counts import EvaluationCounter, count_value

# Every flag of the ruleset: (value, counting cell) for static boolean flags, None for the others.
Table = dict[str, tuple[bool, "itertools.count[int]"] | None]


class IsEnabled(Protocol):
    """The signature of ``FlagShipClient.is_enabled``."""

    def __call__(
        self, key: str, context: Mapping[str, Any] | None = None, default: bool = False
    ) -> bool:
        """Whether a boolean flag is on for ``context`` (``default`` on any error)."""
        ...  # pragma: no cover - a protocol


def _table_and_reader(slow: IsEnabled) -> tuple[IsEnabled, Callable[[Table], Table]]:
    """The fast ``is_enabled`` (a closure, so a call binds no ``self``) and its table's setter."""
    table: Table = {}

    def is_enabled(
        key: str, context: Mapping[str, Any] | None = None, default: bool = False
    ) -> bool:
        """Whether a boolean flag is on for ``context`` (``default`` on any error). Never raises."""
        try:
            entry = table[key]  # every flag has an entry: no exception on the general path
        except (KeyError, TypeError):  # no such flag, or an unhashable key: reported there
            return slow(key, context, default)
        if entry is not None:
            next(entry[1])
            return entry[0]
        return slow(key, context, default)  # not a static boolean flag

    def install(new: Table) -> Table:
        nonlocal table
        old, table = table, new
        return old

    return is_enabled, install


class StaticFlags:
    """The static boolean flags of the current ruleset, with their counting cells."""

    def __init__(self, slow: IsEnabled) -> None:
        self.is_enabled, self._install = _table_and_reader(slow)
        self._lock = threading.Lock()
        self._counter: EvaluationCounter | None = None
        self._ruleset: Ruleset | None = None
        self._variants: dict[str, str | None] = {}
        self._hour = ""

    def attach(self, counter: EvaluationCounter) -> None:
        """Count through ``counter`` from now on (and follow its periods)."""
        self._counter = counter
        counter.on_rotate = self.rotate
        self.install(self._ruleset)

    def rotate(self) -> None:
        """The counter started a new period: fresh cells, old counts folded."""
        self.install(self._ruleset)

    def install(self, ruleset: Ruleset | None) -> None:
        """Serve the static boolean flags of ``ruleset``; fold the counts of the previous table."""
        table: Table = {}
        variants: dict[str, str | None] = {}
        if ruleset is not None:
            table = dict.fromkeys(ruleset)
            for key, result in ruleset.static_results().items():
                if type(result.value) is bool:
                    table[key] = (result.value, itertools.count())
                    variants[key] = result.variant
        counter = self._counter
        with self._lock:
            self._ruleset = ruleset
            old = self._install(table)
            old_variants, self._variants = self._variants, variants
            old_hour, self._hour = self._hour, counter.hour if counter is not None else ""
        if counter is not None and old_hour:
            self._fold(counter, old, old_variants, old_hour)

    @staticmethod
    def _fold(
        counter: EvaluationCounter, old: Table, variants: dict[str, str | None], hour: str
    ) -> None:
        cells = [(key, entry[1]) for key, entry in old.items() if entry is not None]
        if not any(count_value(cell) for _, cell in cells):
            return
        # A thread that read the old table just before the swap may still be counting on it.
        time.sleep(2 * sys.getswitchinterval())
        counts = {}
        for key, cell in cells:
            count = count_value(cell)
            if count:
                counts[key, variants.get(key), hour] = count
        counter.merge(counts)
