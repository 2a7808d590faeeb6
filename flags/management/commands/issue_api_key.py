"""Issue an environment key from the command line; stdout carries the secret and nothing else.

    python manage.py issue_api_key --project demo --environment production --kind server

Meant for provisioning scripts (``SECRET=$(manage.py issue_api_key ...)``): errors go to stderr
with a non-zero exit, and the secret is never logged.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiKey
from accounts.services import api_key_issue
from flags.models import Environment


class Command(BaseCommand):
    """Issue a server or client key for one environment of a project."""

    help = "Issue a server or client API key for an environment and print its secret (once)."

    def add_arguments(self, parser: CommandParser) -> None:
        """--project, --environment, --kind and an optional --name."""
        parser.add_argument("--project", required=True, help="Project key.")
        parser.add_argument("--environment", required=True, help="Environment key.")
        parser.add_argument(
            "--kind",
            required=True,
            choices=[ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT],
            help="server (may download rules) or client (evaluated values only).",
        )
        parser.add_argument("--name", default="", help="What the key is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Issue the key and write its secret, alone, to stdout."""
        environment = (
            Environment.objects.select_related("project")
            .filter(project__key=options["project"], key=options["environment"])
            .first()
        )
        if environment is None:
            raise CommandError(
                f"No environment {options['environment']!r} in project {options['project']!r}."
            )
        name = options["name"] or f"{options['kind']} key (issued from the command line)"
        try:
            _, secret = api_key_issue(kind=options["kind"], name=name, environment=environment)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(secret)
