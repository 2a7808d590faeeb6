"""Report stale flags (``flags.stale``): a text table, or JSON.

    python manage.py report_stale_flags [--project KEY] [--json]

Text: one line per stale flag (project, flag, lifecycle, stale since, reason), or "No stale
flags." JSON: ``{"generated_at": ..., "flags": [{"project", "flag", "name", "lifecycle",
"code", "reason", "since", "last_evaluated"}]}`` with times in ISO 8601 UTC. An unknown project
exits non-zero with the reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from django.utils import timezone

from flags.models import Flag, FlagEvaluationCount, Project
from flags.staleness import stale_verdicts


def _iso(moment: datetime | None) -> str | None:
    """``2026-11-26T12:00:00Z`` (``None`` stays ``None``)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Command(BaseCommand):
    """List the live flags that are stale, and why."""

    help = "List stale flags (FLAGSHIP_STALE_DAYS per lifecycle) as a table or as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        """--project and --json."""
        parser.add_argument("--project", metavar="KEY", help="Only this project's flags.")
        parser.add_argument("--json", action="store_true", help="Write JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Find the stale flags and write them."""
        flags = Flag.objects.filter(archived=False).select_related("project")
        if options["project"]:
            project = Project.objects.filter(key=options["project"]).first()
            if project is None:
                raise CommandError(f"No project {options['project']!r}.")
            flags = flags.filter(project=project)
        now = timezone.now()
        listed = list(flags.order_by("project__key", "key"))
        found = stale_verdicts(listed, now=now)
        last = dict(
            FlagEvaluationCount.objects.filter(flag_id__in=list(found))
            .order_by()
            .values("flag_id")
            .annotate(last=Max("hour"))
            .values_list("flag_id", "last")
        )
        rows = [
            {
                "project": flag.project.key,
                "flag": flag.key,
                "name": flag.name,
                "lifecycle": flag.lifecycle,
                "code": found[flag.pk].code,
                "reason": found[flag.pk].reason,
                "since": _iso(found[flag.pk].since),
                "last_evaluated": _iso(last.get(flag.pk)),
            }
            for flag in listed
            if flag.pk in found
        ]
        if options["json"]:
            document = {"generated_at": _iso(now), "flags": rows}
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
            return
        if not rows:
            self.stdout.write("No stale flags.")
            return
        headers = ("PROJECT", "FLAG", "LIFECYCLE", "STALE SINCE", "REASON")
        table = [headers] + [
            (row["project"], row["flag"], row["lifecycle"], row["since"] or "", row["reason"])
            for row in rows
        ]
        widths = [max(len(str(line[column])) for line in table) for column in range(4)]
        for line in table:
            cells = [str(cell).ljust(width) for cell, width in zip(line[:4], widths, strict=True)]
            self.stdout.write("  ".join([*cells, str(line[4])]))
        self.stdout.write(f"\n{len(rows)} stale flag(s).")
