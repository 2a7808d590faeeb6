"""The project's URLs, and Django's own admin site holding only its LogEntry (the baseline).

A separate ``AdminSite`` (``/baseline/``) leaves FlagShip's ``admin.site`` untouched: Django does
not register LogEntry, and registering it on the project's site would change that site for
whatever runs after the benchmark in the same process.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.urls import URLPattern, URLResolver, include, path

PER_PAGE = 50  # rows per page on both pages (flagship.admin_site.PER_PAGE)


class LogEntryAdmin(admin.ModelAdmin[LogEntry]):
    """Django's changelist of its own admin log: the framework's history page, nothing of ours.

    Registered the plain way, with filters by person and time as the audit page has.
    """

    list_display = ("action_time", "user", "content_type", "object_repr", "action_flag")
    list_filter = ("action_time", "user")
    list_per_page = PER_PAGE


baseline = admin.AdminSite(name="baseline")
baseline.register(LogEntry, LogEntryAdmin)

urlpatterns: list[URLPattern | URLResolver] = [
    path("baseline/", baseline.urls),
    path("", include("flagship.urls")),
]
