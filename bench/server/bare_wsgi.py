"""The bare ceiling as a WSGI application (``gunicorn -c gunicorn.conf.py bench.server.bare_wsgi``).

Django with ``bench.server.bare_settings`` only: no FlagShip settings, no middleware, no database.
"""

from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.server.bare_settings"

application: WSGIHandler = get_wsgi_application()
