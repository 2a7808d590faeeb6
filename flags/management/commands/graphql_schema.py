"""Write the GraphQL schema (SDL) to ``docs/schema.graphql``, or check that it is current.

python manage.py graphql_schema            # write docs/schema.graphql
python manage.py graphql_schema --check    # exit 1 (with a diff) if the file differs; CI runs it
python manage.py graphql_schema --output -  # print it
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from flags.graphql.schema import printed

DEFAULT_PATH = "docs/schema.graphql"


class Command(BaseCommand):
    """Export the schema built from the code, or compare it with the checked-in file."""

    help = "Write docs/schema.graphql from the code, or --check that it is current."

    def add_arguments(self, parser: CommandParser) -> None:
        """--output and --check."""
        parser.add_argument(
            "--output",
            default=None,
            metavar="FILE",
            help=f"Where the schema goes ('-': stdout); default {DEFAULT_PATH}.",
        )
        parser.add_argument(
            "--check", action="store_true", help="Fail with a diff if the file is not current."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Write, print or check."""
        schema = printed()
        output = options["output"]
        if output == "-":
            sys.stdout.write(schema)
            return
        path = Path(output) if output else Path(settings.BASE_DIR) / DEFAULT_PATH
        if options["check"]:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != schema:
                diff = difflib.unified_diff(
                    current.splitlines(keepends=True),
                    schema.splitlines(keepends=True),
                    fromfile=str(path),
                    tofile="the code's schema",
                )
                self.stderr.write("".join(diff))
                raise CommandError(
                    f"{path} is not the code's schema: run `python manage.py graphql_schema`."
                )
            self.stdout.write(f"{path} is current.")
            return
        path.write_text(schema, encoding="utf-8")
        self.stdout.write(f"Wrote {path}.")
