"""FlagShip's admin site: Django's, with the audit log and everyone's recent changes on the index.

Installed as ``admin.site`` by ``flagship.apps.FlagShipAdminConfig``. Every model admin registers
with it as usual (``@admin.register``). Only flags' and accounts' models and history are imported
at the top, never ``flags.admin``: the model admins import ``admin.site``, which is this module's
class (the audit form, in ``flags.admin.forms``, is imported by the view that uses it).

- ``/admin/audit/`` (``admin:audit``): every change by everyone, newest first, 50 a page, filtered
  by project, environment, flag, person and dates (``flags.admin.forms.audit``), in words
  (``flags.history.entries``). Whoever may read flag states (every role) may read it.
- The index's dashboard (``flags.dashboard``): flags by state per project and environment, stale
  flags, evaluations per day (an SVG chart), each shown to those who may read it.
- The index's sidebar: the ten most recent changes by everyone, in place of Django's "Recent
  actions" (only the viewer's own admin log entries, which FlagShip's services do not write).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from flags import capabilities
from flags.dashboard import dashboard
from flags.history.entries import entries
from flags.history.feed import FeedPaginator, audit_rows, window
from flags.history.links import HistoryRow, history_links

VIEW_HISTORY = "flags.view_flagstate"  # reading history is reading flags (as in the API)
PER_PAGE = 50
RECENT = 10


class FlagShipAdminSite(admin.AdminSite):
    """The admin of FlagShip: the audit log, and recent changes by everyone on the index."""

    site_header = "FlagShip"
    site_title = "FlagShip"
    index_title = "Feature flags"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        """Django's admin URLs, and ``audit/`` (``admin:audit``)."""
        return [path("audit/", self.admin_view(self.audit_view), name="audit"), *super().get_urls()]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """The index: the dashboard, and the most recent changes by everyone (as permitted)."""
        context = {**(extra_context or {}), "dashboard": dashboard(request)}
        if request.user.has_perm(VIEW_HISTORY):
            rows = audit_rows(hidden_project_id=capabilities.hidden_project_id(request.user))
            context["recent_changes"] = history_links(request, entries(window(rows, 0, RECENT)))
        return super().index(request, context)

    def audit_view(self, request: HttpRequest) -> HttpResponse:
        """Every change, newest first, filtered and paginated (403 without ``view_flagstate``)."""
        if not request.user.has_perm(VIEW_HISTORY):
            raise PermissionDenied
        # Imported here: flags.admin registers its model admins with admin.site, this class.
        from flags.admin.forms.audit import AuditFilterForm  # noqa: PLC0415

        hidden = capabilities.hidden_project_id(request.user)
        form = AuditFilterForm(request.GET, hidden_project_id=hidden)
        page = None
        rows: list[HistoryRow] = []
        if form.is_valid():
            paginator = FeedPaginator(
                audit_rows(**form.filters(), hidden_project_id=hidden), PER_PAGE
            )
            page = paginator.get_page(request.GET.get("page"))
            rows = history_links(request, entries(page.object_list))
        context = {
            **self.each_context(request),
            "title": "Audit log",
            "subtitle": None,
            "form": form,
            "filtered": any(form.data.get(name) for name in form.fields),
            "flag_keys": form.flag_suggestions(),
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number) if page else [],
            "rows": rows,
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/audit.html", context)
