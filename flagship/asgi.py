"""ASGI entry point (long-lived streams are served from here)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")

application = get_asgi_application()
