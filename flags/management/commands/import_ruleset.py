"""Import a ruleset document (docs/ruleset-format.md, format 1) into one environment.

    python manage.py import_ruleset ruleset.json --project demo --environment production [--create]

Creates the document's segments and flags through ``flags.services.importing`` in one
transaction: everything or, on any refusal, nothing. ``FILE`` may be ``-`` for standard input.
With ``--create``, a missing project (with just that environment) or environment is created first.
stdout: what was written; errors: the reason, with a non-zero exit.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from flags import services
from flags.errors import PermissionDeniedError
from flags.models import Environment, Project
from flags.services.importing import import_ruleset


class Command(BaseCommand):
    """Import a ruleset document's segments and flags into a project's environment."""

    help = "Import a ruleset document (format 1) into an environment, all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        """FILE, --project, --environment and --create."""
        parser.add_argument("file", metavar="FILE", help="The ruleset JSON document, or - (stdin).")
        parser.add_argument("--project", required=True, help="Project key.")
        parser.add_argument("--environment", required=True, help="Environment key.")
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create the project (with only this environment) or the environment if missing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read, import, report the counts."""
        document = _read(options["file"])
        started = time.perf_counter()
        try:
            with transaction.atomic():
                environment = _environment(options["project"], options["environment"], options)
                result = import_ruleset(document=document, environment=environment)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        except PermissionDeniedError as error:
            raise CommandError(str(error)) from None
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"Imported into {options['project']}/{options['environment']} in {seconds:.1f} s: "
            f"{result.summary()}."
        )


def _read(name: str) -> Any:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"Cannot read {name}: {error.strerror or error}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{name} is not JSON: {error}.") from None


def _environment(project_key: str, environment_key: str, options: dict[str, Any]) -> Environment:
    environment = (
        Environment.objects.select_related("project")
        .filter(project__key=project_key, key=environment_key)
        .first()
    )
    if environment is not None:
        return environment
    if not options["create"]:
        raise CommandError(
            f"No environment {environment_key!r} in project {project_key!r} (--create creates it)."
        )
    project = Project.objects.filter(key=project_key).first()
    if project is None:
        project = services.project_create(
            key=project_key,
            name=project_key,
            environments=((environment_key, environment_key, False, "#6b7280"),),
        )
        return project.environments.get()
    return services.environment_create(project=project, key=environment_key, name=environment_key)
