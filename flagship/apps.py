"""FlagShip's own admin site, installed the documented way (an ``AdminConfig`` with its class).

Nothing here imports models: ``INSTALLED_APPS`` loads this module before the app registry is ready.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class FlagShipAdminConfig(AdminConfig):
    """``django.contrib.admin`` with ``flagship.admin_site.FlagShipAdminSite`` as ``admin.site``."""

    default_site = "flagship.admin_site.FlagShipAdminSite"
