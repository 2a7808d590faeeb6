"""Server-Sent Events: a parser following the WHATWG rules, and a thread that follows a stream."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .transport import Backoff, StreamConnection, Transport, TransportError

# A stream that sends no byte for this many seconds is dead: 2.5 x the server's default heartbeat
# (15 s). Tests lower it.
SILENCE_LIMIT = 45.0
STREAM_PATH = "/api/v1/stream"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event."""

    type: str
    data: str
    id: str


class SSEParser:
    """Incremental SSE parser (https://html.spec.whatwg.org/multipage/server-sent-events.html).

    Feed it bytes as they arrive; it yields each dispatched event. Lines end with CRLF, LF or CR;
    comments (``:``) are ignored, ``retry`` sets ``retry`` (milliseconds), ``id`` sets the last
    event id (ignored when it holds NUL), multi-line ``data`` is joined with LF.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False
        self._started = False
        self._data: list[str] = []
        self._type = ""
        self.last_event_id = ""
        self.retry: int | None = None
        self.received_bytes = 0

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        """Parse ``chunk``; yield every event it completes."""
        self.received_bytes += len(chunk)
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split between two chunks
        self._pending_cr = False
        data = self._buffer + chunk
        start = 0
        length = len(data)
        while start < length:
            lf = data.find(b"\n", start)
            cr = data.find(b"\r", start)
            if lf < 0 and cr < 0:
                break
            if cr < 0 or (0 <= lf < cr):
                end, next_start = lf, lf + 1
            else:
                end = cr
                if cr + 1 < length:
                    next_start = cr + 2 if data[cr + 1] == 0x0A else cr + 1
                else:
                    next_start = cr + 1
                    self._pending_cr = True
            line = data[start:end]
            start = next_start
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                yield event
        self._buffer = data[start:]

    def _line(self, line: str) -> SSEEvent | None:
        if not self._started:
            self._started = True
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._type = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event_type = self._data, self._type
        self._data, self._type = [], ""
        if not data:
            return None
        return SSEEvent(type=event_type or "message", data="\n".join(data), id=self.last_event_id)


class StreamFollower:
    """Follows the change stream in a daemon thread, reconnecting with backoff.

    ``on_event`` gets each event; ``on_state(True)`` is called when a stream is open,
    ``on_state(False)`` when it is lost. ``last_event_id`` is sent on reconnection.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        on_event: Callable[[SSEEvent], None],
        on_state: Callable[[bool], None],
        backoff: Backoff,
        logger: logging.Logger,
        last_event_id: Callable[[], str | None],
    ) -> None:
        self._transport = transport
        self._on_event = on_event
        self._on_state = on_state
        self._backoff = backoff
        self._logger = logger
        self._last_event_id = last_event_id
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connection: StreamConnection | None = None
        self.connections = 0
        self._thread = threading.Thread(target=self._run, name="flagship-sdk-stream", daemon=True)

    def start(self) -> None:
        """Start following."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop following: close the open stream and join the thread for at most ``timeout``."""
        self._stop.set()
        with self._lock:
            connection = self._connection
        if connection is not None:
            connection.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            retry_ms: int | None = None
            try:
                retry_ms = self._follow_once()
            except AttributeError as error:
                # http.client when its socket is closed under a read (close(), a killed server).
                if not self._stop.is_set():
                    self._logger.warning("flagship.stream.lost: %r", error)
            except Exception:  # a bug must not kill the thread: log it and reconnect
                if not self._stop.is_set():
                    self._logger.exception("flagship.stream.failed")
            if self._stop.is_set():
                break
            delay = self._backoff.next_delay()
            if retry_ms is not None:
                delay = max(delay, retry_ms / 1000)
            self._stop.wait(delay)

    def _follow_once(self) -> int | None:
        """Open the stream and read it until it ends; return the server's ``retry`` if any."""
        headers: dict[str, str] = {}
        last = self._last_event_id()
        if last:
            headers["Last-Event-ID"] = last
        parser = SSEParser()
        try:
            connection = self._transport.open_stream(STREAM_PATH, headers, SILENCE_LIMIT)
        except TransportError as error:
            self._logger.warning("flagship.stream.connect_failed: %s", error)
            return None
        with self._lock:
            self._connection = connection
        if self._stop.is_set():
            connection.close()
            return None
        try:
            response = connection.response
            content_type = response.getheader("Content-Type", "")
            if response.status != 200 or not content_type.startswith("text/event-stream"):
                self._logger.warning(
                    "flagship.stream.refused: status %s, %s", response.status, content_type
                )
                return None
            self.connections += 1
            self._on_state(True)
            try:
                self._read(connection, parser)
            finally:
                self._on_state(False)
        finally:
            with self._lock:
                self._connection = None
            connection.close()
        return parser.retry

    def _read(self, connection: StreamConnection, parser: SSEParser) -> None:
        response = connection.response
        while not self._stop.is_set():
            try:
                chunk = response.read1(65536)
            except Exception as error:  # closed under us, truncated, reset...
                if not self._stop.is_set():
                    self._logger.warning("flagship.stream.lost: %r", error)
                return
            if not chunk:
                self._logger.info("flagship.stream.ended")
                return
            for event in parser.feed(chunk):
                self._backoff.reset()
                self._on_event(event)
