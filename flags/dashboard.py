"""The admin index's dashboard: flags by state, stale flags, evaluations per day.

Each part costs a fixed number of queries whatever the number of projects and flags (flags by
state: two; stale flags: three, from the stored stale inputs (``flags.staleness``), and
:func:`flags.stale.stale_flags`'s three or four for flags changed since the worker computed them;
the chart: one). :func:`dashboard` gives only what the person may read (``view_flag``,
``view_flagevaluationcount``); recent changes are the index's sidebar (``flagship.admin_site``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from .charts import bar_chart, daily_evaluations
from .models import Environment, Flag, Project
from .stale import Stale
from .staleness import judged, verdict

STALE_SHOWN = 10


@dataclass(slots=True)
class EnvironmentCounts:
    """How many live flags are on and off in one environment."""

    key: str
    name: str
    color: str
    on: int
    off: int


@dataclass(slots=True)
class ProjectCounts:
    """A project's live and archived flags, and its environments' counts."""

    key: str
    name: str
    live: int
    archived: int
    flags_url: str
    environments: list[EnvironmentCounts] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StaleRow:
    """A stale flag, its page and why it is stale."""

    project: str
    key: str
    url: str
    stale: Stale


def flags_by_state() -> list[ProjectCounts]:
    """Per project: live and archived flags; per environment, live flags on and off (2 queries)."""
    live = Q(states__flag__archived=False)
    flags_url = reverse("admin:flags_flag_changelist")
    projects = {
        project.pk: ProjectCounts(
            key=project.key,
            name=project.name,
            live=project.live,
            archived=project.archived,
            flags_url=f"{flags_url}?{urlencode({'project': project.key})}",
        )
        # FlagShip's own project is not a product's: it has its own page (administrators only).
        for project in Project.objects.filter(system=False)
        .annotate(
            live=Count("flags", filter=Q(flags__archived=False)),
            archived=Count("flags", filter=Q(flags__archived=True)),
        )
        .order_by("name", "key")
    }
    for environment in (
        Environment.objects.filter(project__system=False)
        .annotate(
            on=Count("states", filter=live & Q(states__enabled=True)),
            off=Count("states", filter=live & Q(states__enabled=False)),
        )
        .order_by("project_id", "order", "key")
    ):
        annotated: Any = environment
        projects[environment.project_id].environments.append(
            EnvironmentCounts(
                environment.key, environment.name, environment.color, annotated.on, annotated.off
            )
        )
    return list(projects.values())


def stale_rows(shown: int = STALE_SHOWN) -> tuple[list[StaleRow], int, list[str]]:
    """The first ``shown`` stale live flags (by project and key), their number, their projects.

    From the stored stale inputs (``flags.staleness``; flags changed since: judged live), in a
    fixed number of queries whatever the number of flags.
    """
    now = timezone.now()
    live = Flag.objects.filter(archived=False, project__system=False)
    condition, judged_live = judged(live, now)
    stale = live.filter(condition)
    by_project = list(
        stale.order_by("project_id")
        .values_list("project_id", "project__key")
        .annotate(flags=Count("pk"))
    )
    if not by_project:
        return [], 0, []
    flags = list(stale.select_related("project", "staleness").order_by("project_id", "key")[:shown])
    rows = []
    for flag in flags:
        found = verdict(flag, now, judged_live)
        if found is not None:
            rows.append(
                StaleRow(
                    flag.project.key,
                    flag.key,
                    reverse("admin:flags_flag_change", args=[flag.pk]),
                    found,
                )
            )
    return rows, sum(count for _, _, count in by_project), [key for _, key, _ in by_project]


def stale_list_url(project: str) -> str:
    """The flag list of ``project``, filtered on stale flags."""
    query = urlencode({"project": project, "stale": "yes"})
    return f"{reverse('admin:flags_flag_changelist')}?{query}"


def dashboard(request: HttpRequest) -> dict[str, Any]:
    """The dashboard's parts this person may read (an absent key: nothing to show)."""
    user = request.user
    parts: dict[str, Any] = {}
    if user.has_perm("flags.view_flag") and user.has_perm("flags.view_flagstate"):
        parts["flags_by_state"] = flags_by_state()
    if user.has_perm("flags.view_flag"):
        rows, total, projects = stale_rows()
        parts["stale_flags"] = rows
        parts["stale_total"] = total
        parts["stale_links"] = [(project, stale_list_url(project)) for project in projects]
    if user.has_perm("flags.view_flagevaluationcount"):
        parts["evaluations_chart"] = bar_chart(
            daily_evaluations(), label="Evaluations per day", testid="evaluations-chart"
        )
    return parts
