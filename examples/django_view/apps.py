"""Start the FlagShip client when Django starts, without waiting for it."""

from __future__ import annotations

import os

from django.apps import AppConfig


class FlagDemoConfig(AppConfig):
    """The app: ``INSTALLED_APPS = ["django_view"]``."""

    name = "django_view"
    verbose_name = "FlagShip demo"

    def ready(self) -> None:
        """Create the client now, so the first request finds data (never waits, never raises).

        Under ``gunicorn --preload`` this method runs in the master process, before the fork,
        where a client's threads would be lost: set ``FLAGSHIP_LAZY=1`` there and the client is
        created by the first request of each worker instead.
        """
        if os.environ.get("FLAGSHIP_LAZY") == "1":
            return
        from . import flags  # noqa: PLC0415  # the app registry is ready now

        flags.client()
