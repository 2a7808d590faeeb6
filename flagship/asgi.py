"""ASGI entry point: serves the change stream (``/api/v1/stream``) without a thread per stream.

The API and the admin run under gunicorn's WSGI workers (``flagship.wsgi``); the proxy routes
``/api/v1/stream`` to an ASGI server running this application (docs/streaming.md).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")

application = get_asgi_application()
