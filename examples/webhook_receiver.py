"""A FlagShip webhook receiver: verifies each delivery's signature and refuses replays.

Run it with the secret FlagShip showed when the webhook was created::

    FLAGSHIP_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 8080

and point the webhook at ``http://<this host>:8080/``. Python's standard library only. It:

1. refuses (400) a request without the three ``webhook-*`` headers, or whose
   ``webhook-timestamp`` is more than ``--tolerance`` seconds (default 300) from this clock: a
   captured request replayed later is refused even though its signature is genuine;
2. recomputes ``v1,`` + base64(HMAC-SHA256(secret key, "<webhook-id>.<webhook-timestamp>.<body>"))
   and compares it in constant time with each signature in ``webhook-signature``; none equal: 401;
3. acknowledges (200, ``{"status": "duplicate"}``) an event id it has already processed without
   processing it again: FlagShip may send an event more than once (a retry after a lost answer, a
   redelivery), and a replay inside the tolerance carries an id already seen. Keep processed ids
   in your database with a unique constraint; this example keeps the last 100 000 in memory;
4. processes the event (here: prints one line) and answers 200 quickly. Do slow work after
   answering: FlagShip waits 10 s at most, then retries.

The format is the Standard Webhooks one, so its libraries (``pip install standardwebhooks``) verify
these signatures too: ``standardwebhooks.Webhook(secret).verify(body, headers)``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300
REMEMBERED_IDS = 100_000


class Refused(Exception):  # noqa: N818  # the receiver's own vocabulary: a refused request
    """A request that is not a genuine, fresh delivery (``status`` is the answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Verifier:
    """Checks deliveries signed with one secret and remembers the event ids processed."""

    def __init__(self, secret: str, tolerance: float = TOLERANCE_SECONDS) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.tolerance = tolerance
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, headers: dict[str, str], body: bytes) -> str:
        """The event id of a genuine, fresh delivery; ``Refused`` otherwise."""
        message_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not (message_id and timestamp.isdigit() and signatures):
            raise Refused(400, "missing or malformed webhook-* headers")
        if abs(time.time() - int(timestamp)) > self.tolerance:
            raise Refused(400, "timestamp outside the tolerance: a replay, or a wrong clock")
        signed = f"{message_id}.{timestamp}.".encode() + body
        digest = hmac.new(self.key, signed, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(digest).decode()
        if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in signatures.split()):
            raise Refused(401, "signature does not match")
        return message_id

    def first_time(self, message_id: str) -> bool:
        """Record an event id; whether it was new (``False``: already processed)."""
        with self._lock:
            if message_id in self._seen:
                return False
            self._seen[message_id] = None
            if len(self._seen) > REMEMBERED_IDS:
                self._seen.popitem(last=False)
            return True


def handler(verifier: Verifier) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``verifier``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                message_id = verifier.verify(headers, body)
            except Refused as refused:
                self._answer(refused.status, {"status": "refused", "reason": str(refused)})
                return
            if not verifier.first_time(message_id):
                self._answer(200, {"status": "duplicate"})
                return
            event = json.loads(body)
            print(  # noqa: T201  # this example's "processing"
                f"processed {event['id']} {event['type']} flags={','.join(event['flags'])}",
                flush=True,
            )
            self._answer(200, {"status": "processed"})

        def _answer(self, status: int, document: dict[str, str]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # the base's name
            """Quiet: the processing line is the log."""

    return Handler


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_SECONDS)
    options = parser.parse_args()
    secret = os.environ.get("FLAGSHIP_WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        sys.exit("Set FLAGSHIP_WEBHOOK_SECRET to the webhook's secret (whsec_...).")
    server = ThreadingHTTPServer(
        (options.host, options.port), handler(Verifier(secret, options.tolerance))
    )
    print(f"listening on http://{options.host}:{server.server_port}/", flush=True)  # noqa: T201
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
