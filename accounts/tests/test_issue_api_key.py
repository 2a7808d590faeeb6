"""``manage.py issue_api_key``: the secret alone on stdout, errors on stderr."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiKey
from flags import services
from flags.models import Environment

SECRET = re.compile(r"\Afsc_[A-Za-z0-9]{44}\n\Z")


@pytest.fixture
def staging(db: None) -> Environment:
    """The staging environment of project ``demo`` (flags' fixtures are not shared here)."""
    return services.project_create(key="demo", name="Demo").environments.get(key="staging")


def test_issue_api_key__client_key__prints_only_the_secret_which_authenticates(
    staging: Environment,
) -> None:
    """Given staging, when a client key is issued, then stdout is one secret line that works."""
    # Given
    out, err = StringIO(), StringIO()

    # When
    call_command(
        "issue_api_key",
        "--project=demo",
        "--environment=staging",
        "--kind=client",
        "--name=web",
        stdout=out,
        stderr=err,
    )

    # Then
    printed = out.getvalue()
    assert SECRET.match(printed), printed
    assert err.getvalue() == ""
    key = ApiKey.objects.get()
    assert (key.kind, key.name, key.environment) == ("client", "web", staging)
    # The key authenticates: management endpoints then refuse it (403), not 401.
    response = APIClient().get("/api/v1/me/", HTTP_X_API_KEY=printed.strip())
    assert response.status_code == 403


def test_issue_api_key__unknown_environment__errors_and_issues_nothing(
    staging: Environment,
) -> None:
    """Given demo without 'qa', when a key is issued for qa, then a CommandError and no key."""
    # When / Then
    with pytest.raises(CommandError, match="No environment 'qa' in project 'demo'"):
        call_command(
            "issue_api_key",
            "--project=demo",
            "--environment=qa",
            "--kind=server",
            stdout=StringIO(),
        )
    assert ApiKey.objects.count() == 0
