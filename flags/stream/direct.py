"""Writing an event straight to a stream's connection, once per change for thousands of streams.

One stream server holds thousands of streams (bench/server/stream_scale.py: 10 000). Through
ASGI, each event of each stream wakes that stream's coroutine, which yields it to Django's
handler, which awaits the server's ``send``: tens of microseconds of Python per subscriber, so a
change reaches the 10 000th stream a second after the first. Under uvicorn's HTTP/1.1 server
(httptools, its default), an event can instead be written to the connection's transport directly,
framed once per change and format (:func:`chunk`), in the same loop callback that hands the change
to every stream (``subscriptions._notify_all``): a few microseconds each, mostly the socket write.

:meth:`DirectWriter.of` finds the server's response cycle behind the ``send`` callable the
application received (``flagship.asgi`` puts it in the scope as :data:`SEND_KEY`); only a cycle
with uvicorn's attributes and a chunked response qualifies, else the stream keeps the generic
path. :meth:`DirectWriter.write` refuses (and the stream wakes and sends through ASGI, which waits
for the client) whenever the generic path would have to wait or stop: the response is not started
or has completed, the client went away, the server paused writing, or the client is slow to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Where flagship.asgi keeps the ASGI ``send`` callable in the scope.
SEND_KEY = "flagship.send"
# A client this far behind (bytes buffered for it) gets its events through ASGI again, which
# waits for it and coalesces versions, so a stalled client never buffers more than this.
MAX_BUFFERED = 64 * 1024
_CYCLE_ATTRIBUTES = ("chunked_encoding", "response_started", "response_complete", "disconnected")


@lru_cache(maxsize=256)
def chunk(text: str) -> bytes:
    r"""``text`` as one HTTP/1.1 chunk (``<size>\\r\\n<bytes>\\r\\n``), built once per event."""
    body = text.encode()
    return b"%x\r\n%s\r\n" % (len(body), body)


class DirectWriter:
    """Writes whole chunks to one uvicorn (httptools) response's transport while it may."""

    __slots__ = ("_cycle", "_flow", "_transport")

    def __init__(self, cycle: Any, transport: Any, flow: Any) -> None:
        self._cycle = cycle
        self._transport = transport
        self._flow = flow

    @classmethod
    def of(cls, scope: Mapping[str, Any]) -> DirectWriter | None:
        """The writer of this request's connection; ``None`` when the server is not uvicorn's."""
        send = scope.get(SEND_KEY)
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        flow = getattr(cycle, "flow", None)
        if (
            cycle is None
            or type(cycle).__module__ != "uvicorn.protocols.http.httptools_impl"
            # uvloop's transports are not asyncio.Transport subclasses: what is used is checked
            or not all(
                callable(getattr(transport, name, None))
                for name in ("write", "is_closing", "get_write_buffer_size")
            )
            or not hasattr(flow, "write_paused")
            or not all(hasattr(cycle, name) for name in _CYCLE_ATTRIBUTES)
        ):
            return None
        return cls(cycle, transport, flow)

    def write(self, data: bytes) -> bool:
        """Write one chunk now; ``False`` (nothing written) when ASGI's ``send`` must do it."""
        cycle, transport = self._cycle, self._transport
        if (
            cycle.chunked_encoding is not True
            or not cycle.response_started
            or cycle.response_complete
            or cycle.disconnected
            or self._flow.write_paused
            or transport.is_closing()
            or transport.get_write_buffer_size() > MAX_BUFFERED
        ):
            return False
        transport.write(data)
        return True
