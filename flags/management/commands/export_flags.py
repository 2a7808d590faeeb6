"""Export a project (docs/export-format.md) as JSON.

    python manage.py export_flags PROJECT [--output FILE] > project.json

stdout (or ``--output``): the export document; an unknown project exits non-zero with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags import services
from flags.models import Project


class Command(BaseCommand):
    """Write a project's flags, variants, segments and states per environment as JSON."""

    help = "Export a project as a JSON document (docs/export-format.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        """PROJECT and --output."""
        parser.add_argument("project", metavar="PROJECT", help="Project key.")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Export and write."""
        project = Project.objects.filter(key=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        text = json.dumps(services.project_export(project), indent=2, ensure_ascii=False)
        if options["output"]:
            try:
                Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            except OSError as error:
                raise CommandError(f"Cannot write {options['output']}: {error}.") from None
        else:
            self.stdout.write(text)
