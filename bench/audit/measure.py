"""Time the audit page (and Django's own LogEntry changelist) in-process, as a signed-in viewer."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.models import User
from flags.history.feed import audit_rows

from .seed import VIEWER, Catalogue
from .urls import PER_PAGE

AUDIT = "/admin/audit/"
LOG = "/baseline/admin/logentry/"
SLOW_MS = 150


@dataclass(frozen=True)
class Page:
    """One page to time."""

    name: str
    url: str
    baseline: bool = False


@dataclass(frozen=True)
class Timing:
    """How long a page took over several runs, and what it cost."""

    page: Page
    milliseconds: list[float]
    queries: int
    status: int

    @property
    def median(self) -> float:
        """The median run, in milliseconds."""
        return statistics.median(self.milliseconds)

    @property
    def spread(self) -> str:
        """Fastest and slowest run."""
        return f"{min(self.milliseconds):.0f}-{max(self.milliseconds):.0f}"


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


def _moment(moment: datetime) -> str:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).isoformat()


def pages(catalogue: Catalogue) -> list[Page]:
    """The audit page's first, middle and last pages and its filters; the baseline's likewise."""
    last = max(1, math.ceil(audit_rows().count() / PER_PAGE))
    log_last = max(1, math.ceil(LogEntry.objects.count() / PER_PAGE))
    since, until = catalogue.window
    actor = User.objects.get(username=catalogue.actor)
    week = urlencode({"since": _day(since), "until": _day(until)})
    log_week = urlencode({"action_time__gte": _moment(since), "action_time__lt": _moment(until)})
    return [
        Page("Audit log, first page", AUDIT),
        Page("Audit log, middle page", f"{AUDIT}?page={last // 2}"),
        Page("Audit log, last page", f"{AUDIT}?page={last}"),
        Page("Audit log, by project", f"{AUDIT}?project={catalogue.project_id}"),
        Page("Audit log, by environment", f"{AUDIT}?environment={catalogue.environment_id}"),
        Page(
            "Audit log, by flag",
            f"{AUDIT}?project={catalogue.project_id}&flag={catalogue.flag_key}",
        ),
        Page("Audit log, by person", f"{AUDIT}?actor={catalogue.actor}"),
        Page("Audit log, one week", f"{AUDIT}?{week}"),
        Page("Admin index (10 recent changes)", "/admin/"),
        Page("Baseline: LogEntry changelist, first page", LOG, baseline=True),
        Page("Baseline: LogEntry, middle page", f"{LOG}?p={log_last // 2}", baseline=True),
        Page("Baseline: LogEntry, last page", f"{LOG}?p={log_last}", baseline=True),
        Page("Baseline: LogEntry, by person", f"{LOG}?user__id__exact={actor.pk}", baseline=True),
        Page("Baseline: LogEntry, one week", f"{LOG}?{log_week}", baseline=True),
    ]


def measure(catalogue: Catalogue, *, runs: int) -> list[Timing]:
    """Each page once to warm up, then ``runs`` timed requests; its query count on the side.

    The project's URLs are served with Django's own admin site for the baseline beside them
    (``bench.audit.urls``), for the time of the measurement only.
    """
    with override_settings(ROOT_URLCONF="bench.audit.urls"):
        return _measure(catalogue, runs)


def _measure(catalogue: Catalogue, runs: int) -> list[Timing]:
    client = Client()
    client.force_login(User.objects.get(username=VIEWER))
    timings = []
    for page in pages(catalogue):
        response = client.get(page.url)
        with CaptureQueriesContext(connection) as captured:
            client.get(page.url)
        queries = len(captured)  # now: the next request clears the connection's query log
        milliseconds = []
        for _ in range(runs):
            start = time.perf_counter()
            client.get(page.url)
            milliseconds.append((time.perf_counter() - start) * 1000)
        timings.append(Timing(page, milliseconds, queries, response.status_code))
    return timings


def table(timings: list[Timing], after: list[Timing] | None = None) -> str:
    """The timings as a Markdown table (with a column per run of ``after``, if given)."""
    head = "| Page | Status | Queries | Median ms | Fastest-slowest ms |"
    rule = "|---|---:|---:|---:|---|"
    if after is not None:
        head += " With the indexes: median ms | Fastest-slowest ms |"
        rule += "---:|---|"
    lines = [head, rule]
    for index, timing in enumerate(timings):
        flag = " ⚠" if timing.median > SLOW_MS and not timing.page.baseline else ""
        line = (
            f"| {timing.page.name} | {timing.status} | {timing.queries} | "
            f"{timing.median:.1f}{flag} | {timing.spread} |"
        )
        if after is not None:
            other = after[index]
            line += f" {other.median:.1f} | {other.spread} |"
        lines.append(line)
    return "\n".join(lines)
