"""Evaluations per day, and the small bar chart that draws them as inline SVG (no JavaScript).

:func:`daily_evaluations` sums :class:`~flags.models.FlagEvaluationCount` per UTC day over the
last ``days`` days (one query, every day present, zero when nothing was counted);
:func:`bar_chart` draws such a series server-side: one ``<rect>`` per day, each with a
``<title>`` ("2026-12-06: 42 evaluations") for screen readers and tooltips, every label escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .models import Flag, FlagEvaluationCount

DAYS = 14
WIDTH = 420
HEIGHT = 120
LABELS = 16  # room under the bars for the first and last day
TOP = 14  # room above them for the highest count


def daily_evaluations(
    *, flag: Flag | None = None, days: int = DAYS, today: date | None = None
) -> list[tuple[date, int]]:
    """(UTC day, evaluations) for the ``days`` days ending ``today``, oldest first (one query).

    Every environment and variant adds up; ``flag`` narrows to one flag.
    """
    today = today or timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    rows = FlagEvaluationCount.objects.filter(
        hour__gte=datetime.combine(first, time.min, tzinfo=UTC),
        hour__lt=datetime.combine(today + timedelta(days=1), time.min, tzinfo=UTC),
    )
    if flag is not None:
        rows = rows.filter(flag=flag)
    totals = {
        day: total or 0
        for day, total in rows.order_by()
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("day")
        .annotate(total=Sum("count"))
        .values_list("day", "total")
    }
    return [(day, totals.get(day, 0)) for day in (first + timedelta(n) for n in range(days))]


def bar_chart(series: Sequence[tuple[date, int]], *, label: str, testid: str) -> SafeString:
    """An SVG bar chart of ``series`` (a bar per day, its ``<title>`` the day and the number)."""
    if not series:
        return format_html("{}", "")
    highest = max(count for _, count in series) or 1
    step = WIDTH / len(series)
    area = HEIGHT - LABELS - TOP
    bars = format_html_join(
        "",
        '<rect class="fs-bar" x="{}" y="{}" width="{}" height="{}" data-day="{}" data-count="{}">'
        "<title>{}: {} evaluation{}</title></rect>",
        (
            (
                f"{index * step + 1:.1f}",
                f"{TOP + area - count * area / highest:.1f}",
                f"{max(step - 2, 1):.1f}",
                f"{count * area / highest:.1f}",
                day.isoformat(),
                count,
                day.isoformat(),
                count,
                "" if count == 1 else "s",
            )
            for index, (day, count) in enumerate(series)
        ),
    )
    total = sum(count for _, count in series)
    return format_html(
        '<svg class="fs-chart" data-testid="{}" role="img" aria-label="{}" '
        'viewBox="0 0 {} {}" width="{}" height="{}" xmlns="http://www.w3.org/2000/svg">'
        "<title>{}: {} evaluations in {} days</title>"
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-opacity="0.3"/>'
        '<g fill="currentColor" fill-opacity="0.75">{}</g>'
        '<g font-size="10" fill="currentColor">'
        '<text x="0" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>'
        '<text x="{}" y="10" text-anchor="end">max {}</text></g></svg>',
        testid,
        label,
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        label,
        total,
        len(series),
        TOP + area,
        WIDTH,
        TOP + area,
        bars,
        HEIGHT - 3,
        series[0][0].isoformat(),
        WIDTH,
        HEIGHT - 3,
        series[-1][0].isoformat(),
        WIDTH,
        highest if total else 0,
    )
