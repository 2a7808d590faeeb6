"""The process's FlagShip client: created once, on first use, and shared by every thread.

Configuration comes from the environment: ``FLAGSHIP_URL`` and ``FLAGSHIP_SERVER_KEY``; or
``FLAGSHIP_BOOTSTRAP``, the path of a ruleset JSON file, to work offline (no network at all).
"""

from __future__ import annotations

import atexit
import os
import threading

from flagship_sdk import FlagShipClient

_lock = threading.Lock()
_client: FlagShipClient | None = None


def _build() -> FlagShipClient:
    bootstrap = os.environ.get("FLAGSHIP_BOOTSTRAP")
    if bootstrap:
        return FlagShipClient(
            "http://127.0.0.1:8000", "fss_offline", offline=True, bootstrap=bootstrap
        )
    return FlagShipClient(
        os.environ.get("FLAGSHIP_URL", "http://127.0.0.1:8000"),
        os.environ["FLAGSHIP_SERVER_KEY"],
    )


def client() -> FlagShipClient:
    """The FlagShip client of this process (created on the first call, after any fork)."""
    global _client  # noqa: PLW0603  # one client per process, by design
    if _client is None:
        with _lock:
            if _client is None:
                _client = _build()
                atexit.register(_client.close)  # sends the last evaluation counts
    return _client
