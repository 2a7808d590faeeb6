"""Wait for the database at start-up, with exponential backoff and jitter.

``manage.py wait_for_db --timeout 30`` (used before ``migrate`` by ``make run`` and containers)
tries to connect, then waits 0.1 s, 0.2 s, 0.4 s ... (capped at ``max_delay``), each wait
randomised between half and all of it (jitter: many replicas starting together do not retry in
step). It returns as soon as a connection succeeds; on timeout it raises
``DatabaseWaitTimeoutError`` with the last error.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections


class DatabaseWaitTimeoutError(Exception):
    """The database did not answer within the timeout."""


def try_connect(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Open a connection and run ``SELECT 1``; raise the driver's error otherwise."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def wait_for_database(
    *,
    timeout: float,
    alias: str = DEFAULT_DB_ALIAS,
    initial_delay: float = 0.1,
    max_delay: float = 5.0,
    on_retry: Callable[[int, float, Exception], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Block until the database answers; return the number of attempts made."""
    deadline = time.monotonic() + timeout
    delay = initial_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            try_connect(alias)
        except Exception as error:  # any failure to connect is retried
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseWaitTimeoutError(
                    f"The database ({alias}) did not answer within {timeout:g} s "
                    f"after {attempt} attempts: {error}"
                ) from error
            pause = min(delay * random.uniform(0.5, 1.0), remaining)  # noqa: S311  # jitter, not crypto
            if on_retry is not None:
                on_retry(attempt, pause, error)
            sleep(pause)
            delay = min(delay * 2, max_delay)
        else:
            return attempt
