"""A real in-process FlagShip server for the client's tests (the protocol only, no Django).

``GET /api/v1/ruleset`` (ETag/304), ``GET /api/v1/stream`` (SSE you can push into and cut),
``POST /api/v1/evaluate``, ``POST /api/v1/sdk/evaluations`` (payloads recorded), with switchable
failures: ``reset`` (close without answering), ``500``, ``malformed`` JSON, ``uncompilable``
ruleset, ``slow`` (beyond the client's timeout), and for the stream ``truncated`` and ``silent``.
With ``etags = False`` the ruleset is answered in full every time (no 304), as by a proxy that
drops ``If-None-Match``.
The server can be stopped and started again on the same port (connection refused meanwhile).
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flagship_sdk.engine import Ruleset

SERVER_KEY = "fss_test"
CLIENT_KEY = "fsc_test"


def boolean_flag(on: bool = True, **extra: Any) -> dict[str, Any]:
    """A boolean flag serving ``on`` by default."""
    return {
        "kind": "boolean",
        "variants": {"on": True, "off": False},
        "enabled": True,
        "off_variant": "off",
        "default_serve": {"variant": "on" if on else "off"},
        **extra,
    }


def value_flag(kind: str, value: Any) -> dict[str, Any]:
    """A flag of ``kind`` serving ``value``."""
    return {
        "kind": kind,
        "variants": {"v": value},
        "enabled": True,
        "off_variant": "v",
        "default_serve": {"variant": "v"},
    }


def ruleset_document(version: int, flags: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ruleset document."""
    if flags is None:
        flags = {"feature": boolean_flag(True)}
    return {"format": 1, "version": version, "flags": flags}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up on purpose in these tests (timeouts, cuts): stay quiet."""


class _Stream:
    """One open SSE answer: events are pushed into its queue."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.handler = handler
        self.queue: queue.Queue[str | None] = queue.Queue()

    def cut(self) -> None:
        self.queue.put(None)
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeServer:
        return self.server.fake

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, mode: str) -> bool:
        """Apply a failure mode; True when the request was answered (or dropped) by it."""
        if mode == "reset":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if mode == "500":
            self._json(500, {"code": "internal_error"})
            return True
        if mode == "slow":
            self.fake.release.wait(5)
            self._json(500, {"code": "too_late"})
            return True
        return False

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self) -> None:
        fake = self.fake
        fake.record(self)
        if self.path == "/api/v1/ruleset":
            self._ruleset()
        elif self.path == "/api/v1/stream":
            self._stream()
        else:
            self._json(404, {"code": "not_found"})

    def do_POST(self) -> None:
        fake = self.fake
        fake.record(self)
        if self.path == "/api/v1/evaluate":
            self._evaluate()
        elif self.path == "/api/v1/sdk/evaluations":
            body = self._body()
            if self._fail(fake.counts_mode):
                return
            with fake.lock:
                fake.count_payloads.append(body)
            self._json(202, {"accepted": len(body["counts"]), "ignored": 0})
        else:
            self._json(404, {"code": "not_found"})

    def _ruleset(self) -> None:
        fake = self.fake
        mode = fake.ruleset_mode
        if self._fail(mode):
            return
        with fake.lock:
            document = fake.document
        etag = f'"{document["version"]}"'
        if mode == "malformed":
            self._json(200, b'{"format": 1, "version": ', {"ETag": etag})
        elif mode == "uncompilable":
            self._json(200, {"format": 99, "version": "x", "flags": []}, {"ETag": etag})
        elif fake.etags and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(200, document, {"ETag": etag})

    def _evaluate(self) -> None:
        fake = self.fake
        body = self._body()
        if self._fail(fake.evaluate_mode):
            return
        if fake.evaluate_mode == "malformed":
            self._json(200, b'{"flags": ')
            return
        with fake.lock:
            document = fake.document
            fake.contexts.append(body.get("context"))
        ruleset = Ruleset.from_dict(document)
        flags = {}
        for key, result in ruleset.evaluate_all(body.get("context") or {}).items():
            flags[key] = {"value": result.value, "variant": result.variant, "reason": result.reason}
            if result.rule is not None:
                flags[key]["rule"] = result.rule
        self._json(200, {"flags": flags, "version": ruleset.version})

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self) -> None:
        fake = self.fake
        mode = fake.stream_mode
        if self._fail(mode):
            return
        if mode == "refuse":
            self._json(503, {"code": "unavailable"})
            return
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if mode == "truncated":
            self.wfile.write(b"40\r\nid: 9")  # a chunk cut short, in the middle of an event
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        stream = _Stream(self)
        last = self.headers.get("Last-Event-ID")
        with fake.lock:
            fake.last_event_ids.append(last)
            version = fake.document["version"]
            fake.streams.append(stream)
            fake.stream_connections += 1
            fake.stream_changed.notify_all()
        try:
            if mode != "silent":
                if fake.retry_ms is not None:
                    self._chunk(f"retry: {fake.retry_ms}\n\n")
                if last is None or not last.isdigit() or int(last) < version:
                    self._chunk(_event(version))
            while not fake.stopping.is_set():
                try:
                    item = stream.queue.get(timeout=fake.heartbeat)
                except queue.Empty:
                    if mode != "silent":
                        self._chunk(": ping\n\n")
                    continue
                if item is None:
                    return
                self._chunk(item)
        except OSError:
            return
        finally:
            with fake.lock:
                if stream in fake.streams:
                    fake.streams.remove(stream)
                fake.stream_changed.notify_all()


def _event(version: int) -> str:
    data = json.dumps({"version": version, "etag": f'"{version}"'})
    return f"id: {version}\nevent: ruleset\ndata: {data}\n\n"


class FakeServer:
    """The test server; ``url`` stays the same across ``stop()``/``start()``."""

    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.stream_changed = threading.Condition(self.lock)
        self.document: dict[str, Any] = ruleset_document(1)
        self.ruleset_mode = "ok"
        self.stream_mode = "ok"
        self.evaluate_mode = "ok"
        self.counts_mode = "ok"
        self.etags = True
        self.heartbeat = 0.2
        self.retry_ms: int | None = None
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.count_payloads: list[Any] = []
        self.contexts: list[Any] = []
        self.last_event_ids: list[str | None] = []
        self.streams: list[_Stream] = []
        self.stream_connections = 0
        self.stopping = threading.Event()
        self.release = threading.Event()
        self.port = port or free_port()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self.stopping.clear()
        self.release.clear()
        httpd = _Server(("127.0.0.1", self.port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        self._httpd = None
        self.stopping.set()
        self.release.set()
        httpd.shutdown()
        httpd.server_close()
        self.cut_streams()
        assert self._thread is not None
        self._thread.join(5)

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests.append((handler.command, handler.path, dict(handler.headers.items())))

    def request_count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for _, p, _ in self.requests if path is None or p == path)

    def paths(self) -> Counter[str]:
        with self.lock:
            return Counter(p for _, p, _ in self.requests)

    def set_ruleset(self, document: dict[str, Any], *, push: bool = True) -> None:
        with self.lock:
            self.document = document
            streams = list(self.streams)
        if push:
            for stream in streams:
                stream.queue.put(_event(document["version"]))

    def push_raw(self, text: str) -> None:
        with self.lock:
            streams = list(self.streams)
        for stream in streams:
            stream.queue.put(text)

    def cut_streams(self) -> None:
        with self.lock:
            streams, self.streams = list(self.streams), []
        for stream in streams:
            stream.cut()

    def wait_streams(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` streams are open."""
        with self.stream_changed:
            return self.stream_changed.wait_for(lambda: len(self.streams) >= count, timeout)

    def wait_connections(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` stream connections were made in all."""
        with self.stream_changed:
            return self.stream_changed.wait_for(lambda: self.stream_connections >= count, timeout)


def free_port() -> int:
    """A port nothing listens on (connection refused until a server starts there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
