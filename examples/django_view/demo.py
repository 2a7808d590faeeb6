"""Run the example on its own: ``cd examples && python -m django_view.demo runserver``.

A one-file Django project around the app (no database, no templates): with ``FLAGSHIP_URL`` and
``FLAGSHIP_SERVER_KEY`` it follows a FlagShip server; with ``FLAGSHIP_BOOTSTRAP=ruleset.json`` it
works offline from that file.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management import execute_from_command_line


def configure() -> None:
    """Minimal settings: the app, its URLs, no database."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=True,
        SECRET_KEY="django-view-example-not-secret",  # noqa: S106  # a local demo
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF="django_view.urls",
        INSTALLED_APPS=["django_view.apps.FlagDemoConfig"],
        MIDDLEWARE=[],
        DATABASES={},
    )


if __name__ == "__main__":
    configure()
    execute_from_command_line(sys.argv)
