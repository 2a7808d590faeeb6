"""One timeline per flag, newest first.

Every change to the flag, its variants, each environment's state, its rules, conditions and
prerequisites, and the segments its rules use. Filterable by environment and by person; each
entry says who (linked only for those who may follow the link), when, why, and what changed in the
forms' words (``flags.history.entries``). An entry of an environment offers "revert <environment>
to this moment" to those who may change that environment (``flags.admin.revert``). The flag's
page shows the latest entries; its "History" button opens the whole timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import selectors
from ..history.entries import entries
from ..history.feed import FeedPaginator, audit_people, audit_rows, window
from ..history.links import HistoryRow, history_links
from ..models import Environment, Flag
from .base import can_change_environment, require_visible

PER_PAGE = 50
ON_FLAG_PAGE = 10


@dataclass(frozen=True)
class TimelineRow(HistoryRow):
    """An entry of the timeline with its links, and its revert link where there is one."""

    revert_url: str | None = None


class TimelineFilterForm(forms.Form):
    """Which of the flag's ``environments``, and whose changes (the people in ``everything``)."""

    environment = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    user = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Changed by")

    def __init__(
        self,
        *args: Any,
        environments: list[Environment],
        everything: QuerySet[Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        environment = self.fields["environment"]
        assert isinstance(environment, forms.TypedChoiceField)  # noqa: S101  # declared above
        environment.choices = [
            ("", "Every environment"),
            *((e.pk, e.name) for e in environments),
        ]
        ids = audit_people(everything)
        users = get_user_model()._default_manager.filter(pk__in=ids).order_by("username")
        user = self.fields["user"]
        assert isinstance(user, forms.TypedChoiceField)  # noqa: S101  # declared above
        user.choices = [("", "Anyone"), *((u.pk, u.get_username()) for u in users)]


def timeline_rows(
    request: HttpRequest, flag: Flag, rows: Any, environments: list[Environment]
) -> list[TimelineRow]:
    """A page of feed rows as the timeline shows them, with revert links where allowed."""
    states = {state.environment_id: state.pk for state in flag.states.all()}
    changeable = {
        environment.pk
        for environment in environments
        if can_change_environment(request.user, environment)
    }
    shown = []
    for row in history_links(request, entries(rows)):
        entry = row.entry
        revert_url = None
        if entry.environment_id in changeable and entry.environment_id in states:
            url = reverse("admin:flags_flagstate_revert", args=[states[entry.environment_id]])
            revert_url = f"{url}?at={entry.model}:{entry.history_id}"
        shown.append(
            TimelineRow(
                entry=entry, user_url=row.user_url, flag_url=row.flag_url, revert_url=revert_url
            )
        )
    return shown


def latest(request: HttpRequest, flag: Flag) -> list[TimelineRow]:
    """The flag's latest changes, for its page."""
    environments = selectors.environment_list(flag.project)
    return timeline_rows(
        request, flag, window(audit_rows(flag_id=flag.pk), 0, ON_FLAG_PAGE), environments
    )


def timeline_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, flag_id: int
) -> HttpResponse:
    """The whole timeline of a flag, filtered and paginated."""
    flag = get_object_or_404(Flag.objects.select_related("project"), pk=flag_id)
    if not model_admin.has_view_permission(request, flag):
        raise PermissionDenied
    require_visible(request, flag.project)
    # The flag's whole feed: its people for the form, and the rows shown when nothing is
    # filtered (its scope, three queries, read once).
    everything = audit_rows(flag_id=flag.pk)
    environments = selectors.environment_list(flag.project)
    form = TimelineFilterForm(request.GET, environments=environments, everything=everything)
    environment_id = user_id = None
    if form.is_valid():
        environment_id = form.cleaned_data["environment"]
        user_id = form.cleaned_data["user"]
    rows = everything
    if environment_id is not None or user_id is not None:
        rows = audit_rows(flag_id=flag.pk, environment_id=environment_id, user_id=user_id)
    paginator = FeedPaginator(rows, PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Timeline of {flag.key}",
        "flag": flag,
        "form": form,
        "filtered": environment_id is not None or user_id is not None,
        "rows": timeline_rows(request, flag, page.object_list, environments),
        "page_obj": page,
        "page_range": paginator.get_elided_page_range(page.number),
        "opts": model_admin.model._meta,
        "original": flag,
    }
    return TemplateResponse(request, "flags/timeline.html", context)
