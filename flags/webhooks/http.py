"""One delivery attempt: a POST to the address just checked, bounded in time, never redirected."""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from .addresses import AddressRefusedError, parts, resolve

USER_AGENT = "FlagShip-Webhooks/1"
RESPONSE_KEPT = 1_000  # characters of the answer's body kept on the delivery


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got: a status and body, or an error (and whether it may be retried)."""

    status: int | None
    body: str = ""
    error: str = ""
    retry_after: float | None = None
    duration_ms: int = 0
    refused: bool = False  # the address may not receive deliveries: never retried

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Connection errors, timeouts, 429 and 5xx are retried; other answers are final."""
        if self.refused:
            return False
        if self.status is None:
            return True
        return self.status == 429 or self.status >= 500


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to one checked address, whatever the URL's host resolves to now."""

    def __init__(self, address: tuple[int, str], port: int, timeout: float) -> None:
        super().__init__(address[1], port, timeout=timeout)
        self._family = address[0]

    def connect(self) -> None:
        """Connect to the pinned address."""
        self.sock = _connect(self._family, self.host, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to one checked address; the certificate is checked for the host name."""

    def __init__(self, address: tuple[int, str], hostname: str, port: int, timeout: float) -> None:
        super().__init__(address[1], port, timeout=timeout, context=ssl.create_default_context())
        self._family = address[0]
        self._hostname = hostname

    def connect(self) -> None:
        """Connect to the pinned address and start TLS for the URL's host name."""
        sock = _connect(self._family, self.host, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._hostname)  # type: ignore[attr-defined]  # set by HTTPSConnection


def _connect(family: int, address: str, port: int, timeout: float | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST ``body`` to ``url``; never raises (errors are in the answer)."""
    started = time.monotonic()
    try:
        split = parts(url)
        host = split.hostname or ""
        https = split.scheme == "https"
        port = split.port or (443 if https else 80)
        addresses = resolve(host, port)
    except AddressRefusedError as error:
        return Answer(None, error=str(error), refused=True)
    except OSError as error:
        return Answer(None, error=str(error), duration_ms=_ms(started))
    path = (split.path or "/") + (f"?{split.query}" if split.query else "")
    host_header = host if split.port is None else f"{host}:{split.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if split.port is None else f"[{host}]:{split.port}"
    request_headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    last_error = ""
    for address in addresses[:3]:
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            break
        connection: http.client.HTTPConnection = (
            _PinnedHTTPS(address, host, port, remaining)
            if https
            else _PinnedHTTP(address, port, remaining)
        )
        try:
            connection.request("POST", path, body=body, headers=request_headers)
            response = connection.getresponse()
            text = response.read(RESPONSE_KEPT * 4).decode("utf-8", "replace")[:RESPONSE_KEPT]
            return Answer(
                response.status,
                body=text,
                retry_after=_retry_after(response.getheader("Retry-After")),
                duration_ms=_ms(started),
            )
        except TimeoutError:
            return Answer(None, error=f"no answer within {timeout:g} s", duration_ms=_ms(started))
        except (OSError, http.client.HTTPException) as error:
            last_error = f"{type(error).__name__}: {error}"
        finally:
            connection.close()
    return Answer(None, error=last_error or "timed out", duration_ms=_ms(started))


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
