"""A real HTTP receiver on loopback for the webhook tests: records deliveries, answers as told.

``Receiver`` listens on ``127.0.0.1`` in a thread. Each request is recorded (headers, body, the
event id) and answered with the next scripted answer (:meth:`Receiver.answer`: a status, headers,
or a hang until :meth:`Receiver.release`), else 200. :meth:`Receiver.down` closes the socket (the
port refuses connections) and :meth:`Receiver.up` listens on the same port again.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver read it."""

    headers: dict[str, str]
    body: bytes
    at: float
    path: str = "/"

    @property
    def event(self) -> dict[str, Any]:
        """The JSON body."""
        document: dict[str, Any] = json.loads(self.body)
        return document

    @property
    def event_id(self) -> str:
        """The ``webhook-id`` header."""
        return self.headers.get("webhook-id", "")


@dataclass
class _Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Receiver:
    """A loopback HTTP server recording deliveries (use as a context manager)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: deque[_Answer] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._hanging = threading.Semaphore(0)
        self._server: _Server | None = None
        self.port = 0
        self.up()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.down()

    # --- control --------------------------------------------------------------------------------
    def url(self, path: str = "/hook") -> str:
        """The URL deliveries go to."""
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(
        self, status: int = 200, *, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``)."""
        with self._lock:
            self._answers.extend(_Answer(status, dict(headers or {})) for _ in range(times))

    def hang(self, *, times: int = 1) -> None:
        """Hold the next ``times`` requests unanswered until :meth:`release`."""
        self._released.clear()
        with self._lock:
            self._answers.extend(_Answer(hang=True) for _ in range(times))

    def release(self) -> None:
        """Let held requests go (answered 200)."""
        self._released.set()

    def wait_hanging(self, timeout: float = 10) -> bool:
        """Wait until a request is being held."""
        return self._hanging.acquire(timeout=timeout)

    def down(self) -> None:
        """Stop listening: connections to the port are refused."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def up(self) -> None:
        """Listen (again, on the same port once it had one)."""
        if self._server is not None:
            return
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    # --- reading --------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        """Event ids received, in order."""
        with self._lock:
            return [entry.event_id for entry in self.received]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 20) -> bool:
        """Wait until ``predicate(received)`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(list(self.received)):
                    return True
            time.sleep(0.02)
        with self._lock:
            return predicate(list(self.received))

    def _next(self) -> _Answer:
        with self._lock:
            return self._answers.popleft() if self._answers else _Answer()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                scripted = receiver._next()
                if scripted.hang:
                    receiver._hanging.release()
                    receiver._released.wait(60)
                with receiver._lock:
                    receiver.received.append(Received(headers, body, time.monotonic(), self.path))
                data = b'{"ok": true}' if scripted.status < 400 else b'{"error": "scripted"}'
                try:
                    self.send_response(scripted.status)
                    for name, value in scripted.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender gave up (timeout) or died

            def log_message(self, format: str, *args: object) -> None:  # base's name
                """Quiet."""

        return Handler
