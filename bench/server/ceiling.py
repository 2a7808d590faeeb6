"""The stack's ceiling: a trivial Django view returning constant bytes, as a WSGI application.

Served by ``bench.server.run`` with the same ``gunicorn.conf.py`` and environment as FlagShip
(``gunicorn -c gunicorn.conf.py bench.server.ceiling:application``): the same settings, the same
middleware stack, only the URLconf swapped for this module's single view. What is left between
this and FlagShip's endpoints is the endpoints' own work (authentication, rate limiting, cache
look-ups, evaluation, serialisation).
"""

from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

BODY = b'{"ok": true}'


def constant(request: HttpRequest) -> HttpResponse:
    """Constant bytes: no database, no cache, no authentication."""
    return HttpResponse(BODY, content_type="application/json")


urlpatterns: list[URLPattern] = [path("ceiling", constant)]

django.setup(set_prefix=False)
settings.ROOT_URLCONF = __name__
application: WSGIHandler = get_wsgi_application()
