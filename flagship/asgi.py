"""ASGI entry point: serves the change stream (``/api/v1/stream``) without a thread per stream.

The API and the admin run under gunicorn's WSGI workers (``flagship.wsgi``); the proxy routes
``/api/v1/stream`` to an ASGI server running this application (docs/streaming.md).

Two things for a server of thousands of streams: the application keeps the server's ``send`` in
the request's scope, so a stream can write its events to its connection directly
(``flags.stream.direct``); and only the stream server imports this module, so it raises its own
open-file limit here, every stream being a socket (``flagship.fdlimit``; docs/operations.md, "File
descriptors").
"""

import os
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler

from flagship.fdlimit import raise_open_files_limit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")


class StreamingASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the server's ``send`` kept in the scope (``flagship.send``)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one connection (Django's), ``send`` reachable from the request's scope."""
        if scope["type"] == "http":
            scope = {**scope, "flagship.send": send}
        await super().__call__(scope, receive, send)


django.setup(set_prefix=False)  # what get_asgi_application() does; it configures logging too
application = StreamingASGIHandler()
OPEN_FILES = raise_open_files_limit()
