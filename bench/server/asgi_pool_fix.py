"""``flagship.asgi`` with one change, for a what-if measurement only: streams return the database.

The stock stream view (``flags.stream.views``) runs its authentication and version look-ups with
``sync_to_async``; under ASGI each request gets its own thread, and that thread's pooled database
connection is only returned when the request finishes, i.e. when the stream ends. So every open
stream pins one connection of the pool (``DATABASE_POOL_MAX_SIZE``, default 10) and the 11th
concurrent stream waits for the pool and fails. This module wraps those two look-ups so the
connection is returned after each one, to measure what fan-out costs once that is fixed. It is not
FlagShip's code: ``bench.server.run`` reports its rows separately and labels them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.handlers.asgi import ASGIHandler
from django.db import connection

from flagship.asgi import application as _application


def _returning_connection[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()  # with a pool: back to the pool

    return wrapper


def _patch() -> None:
    from flags.stream import views  # noqa: PLC0415  # after Django is set up

    views._authenticate = _returning_connection(views._authenticate)
    views._current_version = _returning_connection(views._current_version)


_patch()
application: ASGIHandler = _application
