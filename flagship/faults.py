"""A loopback TCP proxy that tests put between FlagShip and PostgreSQL or Redis, then cut.

::

    with FaultProxy("127.0.0.1", 5432) as proxy:  # listens on 127.0.0.1:<free port>
        ...  # point the database or cache setting at proxy.port
        proxy.sever()  # close every connection; refuse new ones (connection refused)
        ...  # the component is down, for real: sockets fail, drivers raise
        proxy.restore()  # accept and forward again
        proxy.stall()  # keep connections open and accept new ones, but forward nothing
        proxy.restore()  # (a partition, not a refusal: callers wait until their own timeouts)

Threads, not asyncio: the code under test is synchronous, and a daemon thread per direction
keeps the proxy independent of any event loop. Only loopback addresses are accepted.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

LOOPBACK = ("127.0.0.1", "::1", "localhost")
BUFFER = 65536


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` until severed."""

    def __init__(self, target_host: str, target_port: int) -> None:
        if target_host not in LOOPBACK:
            raise ValueError(f"fault proxies only forward to loopback, not {target_host!r}")
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._severed = False
        self._stalled = False
        self._stopped = False
        self.accepted = 0

    def url(self, url: str) -> str:
        """``url`` (``postgres://``, ``redis://``...) pointed at this proxy, not at its server."""
        parts = urlsplit(url)
        netloc = f"{self.host}:{self.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    # --- Lifecycle ----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        """Listen on a free loopback port (kept across sever/restore)."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind((self.host, 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def sever(self) -> None:
        """Close every proxied connection and stop listening: new connections are refused."""
        with self._lock:
            self._severed = True
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            _close(listener)
        for sock in sockets:
            _close(sock)

    def stall(self) -> None:
        """Forward nothing (bytes are read and dropped) while connections stay open."""
        self._stalled = True

    def restore(self) -> None:
        """Listen and forward again, on the same port."""
        self._stalled = False
        with self._lock:
            if not self._severed or self._stopped:
                return
            self._severed = False
        self._listen()

    def stop(self) -> None:
        """Sever for good."""
        self._stopped = True
        self.sever()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- Forwarding ---------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # the listener was closed (severed or stopped)
            try:
                upstream = socket.create_connection(self.target, timeout=2)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._severed:
                    _close(client)
                    _close(upstream)
                    continue
                self._sockets.update((client, upstream))
                self.accepted += 1
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(BUFFER)
                if not data:
                    break
                if not self._stalled:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``condition()`` every 10 ms until it is true (``True``) or ``timeout`` s passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
