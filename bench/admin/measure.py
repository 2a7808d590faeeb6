"""Time the admin's pages in-process, signed in as a staff release manager; count their queries.

Server time is the time Django's test client takes to answer a request: the whole Django stack
(middleware, sessions, the view, the template) and PostgreSQL, without a socket or a browser.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from unittest import mock
from urllib.parse import urlencode

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.models import User
from flags.models import Tag

from .seed import MANAGER, ScaleCatalogue

FLAGS = "/admin/flags/flag/"
AUDIT = "/admin/audit/"
TARGET_MS = 200.0  # p95 of every page (issue 16)
SMALL_PAGE, LARGE_PAGE = 25, 100  # the page sizes whose query counts must be equal


@dataclass(frozen=True)
class Page:
    """One page to time."""

    name: str
    url: str


@dataclass(frozen=True)
class Timing:
    """A page's timed requests, its status and its query count."""

    page: Page
    milliseconds: list[float]
    queries: int
    status: int

    @property
    def p50(self) -> float:
        """The median request, in milliseconds."""
        return statistics.median(self.milliseconds)

    @property
    def p95(self) -> float:
        """The 95th percentile (nearest rank), in milliseconds."""
        ordered = sorted(self.milliseconds)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class PageSizes:
    """A page's query counts at two page sizes."""

    name: str
    small: int
    large: int


def pages(catalogue: ScaleCatalogue) -> list[Page]:
    """The flag list plain, filtered, searched and paged; a flag's page and timeline; the audit."""
    project = urlencode({"project": catalogue.project_key})
    tag = Tag.objects.get(name=catalogue.tag_name)
    flag = catalogue.busiest_flag_id
    listed = f"{FLAGS}?{project}"
    middle = max(1, catalogue.flags // 50 // 2)
    return [
        Page("Flag list", listed),
        Page("Flag list, archived too", f"{listed}&archived=all"),
        Page("Flag list, lifecycle experiment", f"{listed}&lifecycle__exact=experiment"),
        Page("Flag list, stale", f"{listed}&stale=yes"),
        Page("Flag list, by tag", f"{listed}&tags__id__exact={tag.pk}"),
        Page("Flag list, untagged", f"{listed}&tags__isnull=True"),
        Page(
            f"Flag list, on in {catalogue.environment_key}",
            f"{listed}&in_{catalogue.environment_key}=on",
        ),
        Page("Flag list, off in development", f"{listed}&in_development=off"),
        Page("Flag list, search a key", f"{listed}&q=flag-123"),
        Page("Flag list, search, no match", f"{listed}&q=no-such-flag"),
        Page("Flag list, middle page", f"{listed}&p={middle}"),
        Page("Flag page (busiest flag)", f"{FLAGS}{flag}/change/"),
        Page("Timeline (busiest flag)", f"{FLAGS}{flag}/history/"),
        Page(
            "Timeline, one environment",
            f"{FLAGS}{flag}/history/?environment={catalogue.environment_id}",
        ),
        Page("Timeline, page 3", f"{FLAGS}{flag}/history/?page=3"),
        Page("Audit log", AUDIT),
        Page("Audit log, by project", f"{AUDIT}?project={catalogue.project_id}"),
        Page(
            "Audit log, by flag",
            f"{AUDIT}?project={catalogue.project_id}&flag={catalogue.busiest_flag_key}",
        ),
        Page("Audit log, by environment", f"{AUDIT}?environment={catalogue.environment_id}"),
        Page("Audit log, by person", f"{AUDIT}?actor={catalogue.actor}"),
        Page("Admin index (10 recent changes)", "/admin/"),
    ]


def signed_in() -> Client:
    """A client signed in as the benchmark's staff release manager."""
    client = Client()
    client.force_login(User.objects.get(username=MANAGER))
    return client


def _queries(client: Client, url: str) -> tuple[int, int]:
    """The status and the number of queries of one request."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    return response.status_code, len(captured)


def measure(
    catalogue: ScaleCatalogue, *, runs: int, only: Callable[[Page], bool] | None = None
) -> list[Timing]:
    """Each page once to warm up and count its queries, then ``runs`` timed requests."""
    client = signed_in()
    timings = []
    for page in pages(catalogue):
        if only is not None and not only(page):
            continue
        client.get(page.url)
        status, queries = _queries(client, page.url)
        milliseconds = []
        for _ in range(runs):
            start = time.perf_counter()
            client.get(page.url)
            milliseconds.append((time.perf_counter() - start) * 1000)
        timings.append(Timing(page, milliseconds, queries, status))
    return timings


@contextmanager
def _per_page(size: int) -> Iterator[None]:
    """Every paginated page of the admin at ``size`` rows a page."""
    patches: list[AbstractContextManager[object]] = [
        override_settings(FLAGSHIP={"ADMIN_FLAGS_PER_PAGE": size}),
        mock.patch("flags.admin.timeline.PER_PAGE", size),
        mock.patch("flagship.admin_site.PER_PAGE", size),
    ]
    for patch in patches:
        patch.__enter__()
    try:
        yield
    finally:
        for patch in reversed(patches):
            patch.__exit__(None, None, None)


def page_sizes(catalogue: ScaleCatalogue) -> list[PageSizes]:
    """The query counts of the paginated pages at 25 and at 100 rows a page."""
    client = signed_in()
    chosen = [page for page in pages(catalogue) if page.name.split(",")[0] != "Flag page (busiest"]
    counts: dict[int, list[int]] = {}
    for size in (SMALL_PAGE, LARGE_PAGE):
        with _per_page(size):
            counts[size] = []
            for page in chosen:
                client.get(page.url)  # warm: caches, sessions
                counts[size].append(_queries(client, page.url)[1])
    return [
        PageSizes(page.name, small, large)
        for page, small, large in zip(chosen, counts[SMALL_PAGE], counts[LARGE_PAGE], strict=True)
    ]


def table(timings: list[Timing], sizes: list[PageSizes]) -> str:
    """The timings as a Markdown table; misses of the target and page-size-dependent counts ⚠."""
    by_name = {size.name: size for size in sizes}
    lines = [
        f"| Page | Status | Queries | Queries at {SMALL_PAGE} / {LARGE_PAGE} a page | "
        "p50 ms | p95 ms |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for timing in timings:
        miss = " ⚠" if timing.p95 > TARGET_MS else ""
        size = by_name.get(timing.page.name)
        counts = "—"
        if size is not None:
            counts = f"{size.small} / {size.large}" + _mark(size)
        lines.append(
            f"| {timing.page.name} | {timing.status} | {timing.queries} | {counts} | "
            f"{timing.p50:.1f} | {timing.p95:.1f}{miss} |"
        )
    return "\n".join(lines)


def _per_kind(name: str) -> bool:
    """Whether the page reads its rows' changes per kind of object shown (flags.history.feed)."""
    return name.startswith(("Timeline", "Audit", "Admin index"))


def _mark(size: PageSizes) -> str:
    """⚠ for a count that changes with the page size; † where the kinds of object shown differ."""
    if size.small == size.large:
        return ""
    return " †" if _per_kind(size.name) else " ⚠"


NOTE = (
    "† History pages read their rows' changes with one query per kind of object on the page "
    "(flag, state, rule, condition...): two page sizes may show different kinds, never a query "
    "per row (flags/tests/test_admin_scale.py checks the difference against the kinds shown)."
)


def misses(timings: list[Timing], sizes: list[PageSizes]) -> list[str]:
    """What missed: a p95 over the target, a status not 200, a count that grows with the page."""
    found = [f"{t.page.name}: p95 {t.p95:.0f} ms" for t in timings if t.p95 > TARGET_MS]
    found += [f"{t.page.name}: status {t.status}" for t in timings if t.status != 200]
    found += [
        f"{s.name}: {s.small} vs {s.large} queries"
        for s in sizes
        if s.small != s.large and not _per_kind(s.name)
    ]
    return found
