"""Make changes through the management path and print when each one committed.

``python -m bench.server.changer FLAG_KEY COUNT INTERVAL [PROJECT]``: toggles ``FLAG_KEY`` in
``PROJECT``'s ``production`` environment (default ``bench-200``, the benchmark's W4 project)
``COUNT`` times with ``flags.services.flag_toggle``, one transaction each, ``INTERVAL`` seconds
apart. Prints ``ready`` once Django is set up, then one line ``<version> <commit time>`` per
change: the environment's new ruleset version and the wall-clock time (``time.time()``) at which
the transaction committed, taken by an ``on_commit`` hook registered before the service's own
(which rebuilds the cached ruleset and publishes the change), so the measured propagation
includes that work.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial


def _record(times: list[float]) -> None:
    times.append(time.time())


def main(argv: list[str]) -> int:
    """Toggle the flag ``COUNT`` times; one output line per committed change."""
    flag_key, count, interval = argv[0], int(argv[1]), float(argv[2])
    project = argv[3] if len(argv) > 3 else "bench-200"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")
    import django  # noqa: PLC0415

    django.setup()
    from django.db import transaction  # noqa: PLC0415

    from flags import services  # noqa: PLC0415
    from flags.models import Environment, FlagState  # noqa: PLC0415

    state = FlagState.objects.select_related("environment").get(
        flag__project__key=project, flag__key=flag_key, environment__key="production"
    )
    environment_id = state.environment_id
    print("ready", flush=True)
    for _ in range(count):
        time.sleep(interval)
        committed: list[float] = []
        with transaction.atomic():
            transaction.on_commit(partial(_record, committed))
            state = services.flag_toggle(state=state, enabled=not state.enabled, actor=None)
        version = Environment.objects.values_list("ruleset_version", flat=True).get(
            pk=environment_id
        )
        print(f"{version} {committed[0]:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
