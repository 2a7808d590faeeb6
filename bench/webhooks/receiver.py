"""The benchmark's receiver: answers 200 at once and appends ``<webhook-id> <path> <time>`` lines.

Run as its own process (``python -m bench.webhooks.receiver --port P --out FILE``) so that its
threads do not share a GIL with the workers or the writer being measured.
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO


def serve(port: int, out: IO[str]) -> None:
    """Serve on loopback until killed, recording every POST."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with lock:
                out.write(f"{self.headers.get('webhook-id', '-')} {self.path} {arrived:.6f}\n")
                out.flush()

        def log_message(self, format: str, *args: object) -> None:  # base's name
            """Quiet."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    Server(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    """Parse the port and output file, then serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    with open(options.out, "a", encoding="utf-8") as out:  # a plain log file
        serve(options.port, out)


if __name__ == "__main__":
    main()
