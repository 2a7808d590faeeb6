"""HTTP over the standard library (``http.client``), with a timeout on every call, and backoff."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import __version__

USER_AGENT = f"flagship-python/{__version__}"

# Longest answer body the client reads (a ruleset of 10 000 flags is a few megabytes).
MAX_BODY_BYTES = 64 * 1024 * 1024


class TransportError(Exception):
    """A request failed: no connection, a timeout, or an answer that could not be read."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A complete HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body)


class Transport:
    """Makes requests to one FlagShip server with an environment key.

    Each request uses its own connection (no shared state between threads) and the timeout
    applies to connecting and to every read.
    """

    def __init__(self, base_url: str, sdk_key: str, timeout: float) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._sdk_key = sdk_key
        self.timeout = timeout

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {
            "X-API-Key": self._sdk_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if extra:
            headers.update(extra)
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw_body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> HttpAnswer:
        """Send one request and read the whole answer; raise ``TransportError`` on failure.

        ``body`` is sent as JSON, ``raw_body`` as given (already JSON).
        """
        all_headers = self._headers(headers)
        payload = raw_body
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        connection = self._connection(self.timeout if timeout is None else timeout)
        try:
            connection.request(method, self._prefix + path, body=payload, headers=all_headers)
            response = connection.getresponse()
            data = response.read(MAX_BODY_BYTES + 1)
            if len(data) > MAX_BODY_BYTES:
                raise TransportError(f"{method} {path}: the answer is too large")
            return HttpAnswer(
                response.status, {k.lower(): v for k, v in response.getheaders()}, data
            )
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise TransportError(f"{method} {path}: {error!r}") from error
        finally:
            connection.close()

    def open_stream(
        self, path: str, headers: Mapping[str, str] | None, read_timeout: float
    ) -> StreamConnection:
        """Open an SSE stream; the caller reads ``response`` and must ``close()`` it."""
        all_headers = self._headers(headers)
        all_headers["Accept"] = "text/event-stream"
        all_headers["Cache-Control"] = "no-cache"
        connection = self._connection(self.timeout)
        try:
            connection.request("GET", self._prefix + path, headers=all_headers)
            response = connection.getresponse()
            if connection.sock is not None:
                connection.sock.settimeout(read_timeout)
        except (OSError, http.client.HTTPException, ValueError) as error:
            connection.close()
            raise TransportError(f"GET {path}: {error!r}") from error
        return StreamConnection(connection, response)


class StreamConnection:
    """An open streaming answer that another thread may close at any time."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        self.connection = connection
        self.response = response
        self._sock = connection.sock
        self._closed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection; a blocked read in another thread returns or raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):  # closing a broken connection
            self.response.close()
        self.connection.close()


class Backoff:
    """Exponential backoff with full jitter: delay ~ U(0, min(cap, base * 2**attempt))."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling (up to ``cap``)."""
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 62)))
        self.attempt += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        """Start again from the base delay (after a success)."""
        self.attempt = 0
