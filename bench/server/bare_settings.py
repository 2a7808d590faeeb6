"""Settings of the bare ceiling: Django with nothing of FlagShip (``bench.server.bare_wsgi``).

No FlagShip settings, no installed applications, no middleware, no database, no cache: the
request goes through Django's WSGI handler and URL resolver to one view returning a constant
JSON body. Served by ``bench.server.run`` under the same ``gunicorn.conf.py`` (workers, threads,
worker class, keep-alive) as FlagShip: the ceiling issue 16's targets refer to.
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "bench-bare-" + "n0t-a-s3cret-" * 4)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.server.bare_urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LOGGING_CONFIG = None
