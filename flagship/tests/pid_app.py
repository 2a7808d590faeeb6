"""A tiny WSGI application for the worker tests: answers the pid of the worker that served it.

``GET /slow`` sleeps a second first (a request in flight during a shutdown or a reload).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``200`` with the worker's pid as the body and in ``X-Worker-Pid``."""
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(1)
    body = str(os.getpid()).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
            ("X-Worker-Pid", body.decode()),
        ],
    )
    return [body]
