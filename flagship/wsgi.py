"""WSGI entry point (gunicorn): the lean path for evaluation routes, the full stack for the rest."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")
django.setup(set_prefix=False)  # as get_wsgi_application() does

from flagship.lean import application as _lean_application  # noqa: E402  # after setup()

application = _lean_application()
