"""The container health check: ``GET /healthz`` answers 200, with Python's standard library alone.

    python deploy/healthcheck.py [URL]

URL defaults to ``http://127.0.0.1:<port of GUNICORN_BIND>/healthz``. The request carries the first
host of ``DJANGO_ALLOWED_HOSTS`` as its ``Host`` header, so the probe passes Django's host check
without adding ``localhost`` to the allowed hosts. Exit 0 when healthy, 1 otherwise (with why).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def default_url() -> str:
    """``/healthz`` on loopback at the port gunicorn binds."""
    port = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").rsplit(":", 1)[-1]
    return f"http://127.0.0.1:{port}/healthz"


def probe_host() -> str | None:
    """A host name Django accepts: the first allowed host (``.example.com`` → ``example.com``)."""
    for entry in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        host = entry.strip().lstrip(".")
        if host and host != "*":
            return host
    return None


def main(argv: list[str]) -> int:
    """Probe once; 0 on a 200 answer."""
    url = argv[1] if len(argv) > 1 else default_url()
    request = urllib.request.Request(url)  # noqa: S310  # an http URL of our own
    host = probe_host()
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310
            status = response.status
    except (urllib.error.URLError, OSError) as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)  # noqa: T201
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
