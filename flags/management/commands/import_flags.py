"""Import a project export (docs/export-format.md), all or nothing.

    python manage.py import_flags project.json [--dry-run] [--mode merge|replace] [--project KEY]

``FILE`` may be ``-`` for standard input. stdout: the diff (``+`` created, ``~`` changed, ``-``
archived or deleted); with ``--dry-run`` nothing is written. An invalid file exits with status 1
and the reason on stderr, having changed nothing. ``--project`` imports under another project key
(a copy next to the original).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags import services
from flags.errors import FlagShipError
from flags.services.project_import import MODES

from .import_ruleset import _read


class Command(BaseCommand):
    """Make a project what an export file describes, or show what that would change."""

    help = "Import a project export (docs/export-format.md); --dry-run prints the diff only."

    def add_arguments(self, parser: CommandParser) -> None:
        """FILE, --dry-run, --mode and --project."""
        parser.add_argument("file", metavar="FILE", help="The export JSON document, or - (stdin).")
        parser.add_argument("--dry-run", action="store_true", help="Print the diff, write nothing.")
        parser.add_argument("--mode", choices=MODES, default="merge", help="Default: merge.")
        parser.add_argument("--project", metavar="KEY", help="Import under this project key.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Read, import (or plan), print the diff."""
        document = _read(options["file"])
        try:
            plan = services.project_import(
                document,
                actor=None,
                mode=options["mode"],
                dry_run=options["dry_run"],
                project_key=options["project"],
            )
        except ValidationError as error:
            code = getattr(error, "code", None) or "invalid"
            raise CommandError(f"{code}: {'; '.join(error.messages)}") from None
        except FlagShipError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        heading = "Dry run (nothing written)" if plan.dry_run else "Imported"
        self.stdout.write(f"{heading}: project {plan.project}, mode {plan.mode}.")
        for line in plan.lines():
            self.stdout.write(line)
