"""Who may do what on the API (management, evaluation, OFREP): every family by every caller.

Each family has one read and one write; the table gives the exact status for each caller, in the
order of ``CALLERS``: anonymous, Viewer, Editor, Release manager, Administrator, an
Administrator's admin token, a server key, a client key, a revoked key, an expired admin token.
"""

from __future__ import annotations

from typing import Any

import pytest

from flags.models import Environment, Flag
from flags.tests.api_clients import CALLERS, client_for

PROJECT = "/api/v1/projects/demo"
STATE = f"{PROJECT}/flags/new-checkout/environments"

# family: (method, path, body) of the read, of the write, then the statuses in CALLERS' order.
Request = tuple[str, str, dict[str, Any] | None]
MATRIX: dict[str, tuple[Request, tuple[int, ...], Request, tuple[int, ...]]] = {
    "projects": (
        ("get", "/api/v1/projects/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", "/api/v1/projects/", {"key": "other", "name": "Other"}),
        (401, 403, 403, 403, 201, 201, 403, 403, 401, 401),
    ),
    "environments": (
        ("get", f"{PROJECT}/environments/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("patch", f"{PROJECT}/environments/staging/", {"name": "Stage"}),
        (401, 403, 403, 403, 200, 200, 403, 403, 401, 401),
    ),
    "flags": (
        ("get", f"{PROJECT}/flags/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", f"{PROJECT}/flags/", {"key": "other", "name": "Other"}),
        (401, 403, 201, 201, 201, 201, 403, 403, 401, 401),
    ),
    "flag state (protected production)": (
        ("get", f"{STATE}/production/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", f"{STATE}/production/toggle/", {"enabled": True}),
        (401, 403, 403, 200, 200, 200, 403, 403, 401, 401),
    ),
    "flag state (staging)": (
        ("get", f"{STATE}/staging/history/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", f"{STATE}/staging/toggle/", {"enabled": True}),
        (401, 403, 200, 200, 200, 200, 403, 403, 401, 401),
    ),
    "segments": (
        ("get", f"{PROJECT}/segments/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", f"{PROJECT}/segments/", {"key": "staff", "name": "Staff"}),
        (401, 403, 201, 201, 201, 201, 403, 403, 401, 401),
    ),
    "tags": (
        ("get", "/api/v1/tags/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", "/api/v1/tags/", {"name": "payments"}),
        (401, 403, 201, 201, 201, 201, 403, 403, 401, 401),
    ),
    # Reviewing needs the approve permission, checked before the change request is looked up:
    # Editors get 403 even for one that does not exist, reviewers 404.
    "change requests": (
        ("get", f"{PROJECT}/change-requests/?status=open", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", f"{PROJECT}/change-requests/999/approve/", {"comment": "ok"}),
        (401, 403, 403, 404, 404, 404, 403, 403, 401, 401),
    ),
    # History is read-only: a write is refused by role first, then as a method (405).
    "history and audit": (
        ("get", "/api/v1/audit/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", "/api/v1/audit/", {}),
        (401, 403, 405, 405, 405, 405, 403, 403, 401, 401),
    ),
    "me": (
        ("get", "/api/v1/me/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("patch", "/api/v1/me/", {"email": "x@example.com"}),
        (401, 405, 405, 405, 405, 405, 403, 403, 401, 401),
    ),
    # Production is protected: its keys are managed by Release managers and Administrators.
    "environment keys": (
        ("get", f"{PROJECT}/environments/production/keys/", None),
        (401, 403, 403, 200, 200, 200, 403, 403, 401, 401),
        ("post", f"{PROJECT}/environments/production/keys/", {"name": "svc", "kind": "server"}),
        (401, 403, 403, 201, 201, 201, 403, 403, 401, 401),
    ),
    # An admin token may list its owner's tokens but never mint new ones.
    "admin tokens": (
        ("get", "/api/v1/me/tokens/", None),
        (401, 200, 200, 200, 200, 200, 403, 403, 401, 401),
        ("post", "/api/v1/me/tokens/", {"name": "ci"}),
        (401, 201, 201, 201, 201, 403, 403, 403, 401, 401),
    ),
}

CASES = [
    pytest.param((family, kind, caller, index), id=f"{family}-{kind}-{caller}")
    for family in MATRIX
    for kind in ("read", "write")
    for index, caller in enumerate(CALLERS)
]


@pytest.mark.parametrize("case", CASES)
def test_management_api__caller_reads_or_writes__gets_exact_status(
    case: tuple[str, str, str, int], staging: Environment, boolean_flag: Flag
) -> None:
    """Given a project with a flag, when a caller reads or writes a family, then the status."""
    # Given
    family, kind, caller, index = case
    read, read_statuses, write, write_statuses = MATRIX[family]
    method, path, body = read if kind == "read" else write
    expected = (read_statuses if kind == "read" else write_statuses)[index]
    client = client_for(caller, staging)

    # When
    response = getattr(client, method)(path, body, format="json")

    # Then
    assert response.status_code == expected, response.content
    assert response["API-Version"] == "v1"


# Evaluation families: only environment keys evaluate. A client key sees only client-visible
# flags (new-checkout is not one, so asking for it is a 404 that reveals nothing), and never the
# ruleset. People and admin tokens are not environment keys.
EVALUATION: dict[str, tuple[Request, tuple[int, ...]]] = {
    "evaluate all": (
        ("post", "/api/v1/evaluate", {"context": {"targetingKey": "u"}}),
        (401, 403, 403, 403, 403, 403, 200, 200, 401, 401),
    ),
    "evaluate one": (
        ("post", "/api/v1/evaluate/new-checkout", {"context": {"targetingKey": "u"}}),
        (401, 403, 403, 403, 403, 403, 200, 404, 401, 401),
    ),
    "ruleset": (
        ("get", "/api/v1/ruleset", None),
        (401, 403, 403, 403, 403, 403, 200, 403, 401, 401),
    ),
    # Counts of a flag a client key may not see are accepted and ignored (202, nothing stored).
    "sdk evaluation counts": (
        (
            "post",
            "/api/v1/sdk/evaluations",
            {"counts": [{"flag": "new-checkout", "hour": "2026-11-26T12:00:00Z", "count": 1}]},
        ),
        (401, 403, 403, 403, 403, 403, 202, 202, 401, 401),
    ),
    "ofrep one": (
        ("post", "/ofrep/v1/evaluate/flags/new-checkout", {"context": {"targetingKey": "u"}}),
        (401, 403, 403, 403, 403, 403, 200, 404, 401, 401),
    ),
    "ofrep bulk": (
        ("post", "/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "u"}}),
        (401, 403, 403, 403, 403, 403, 200, 200, 401, 401),
    ),
}

EVALUATION_CASES = [
    pytest.param((family, caller, index), id=f"{family}-{caller}")
    for family in EVALUATION
    for index, caller in enumerate(CALLERS)
]


@pytest.mark.parametrize("case", EVALUATION_CASES)
def test_evaluation_api__caller_evaluates__gets_exact_status(
    case: tuple[str, str, int], staging: Environment, boolean_flag: Flag
) -> None:
    """Given a project with a flag, when a caller evaluates, then the exact status."""
    # Given
    family, caller, index = case
    (method, path, body), statuses = EVALUATION[family]
    client = client_for(caller, staging)

    # When
    response = getattr(client, method)(path, body, format="json")

    # Then
    assert response.status_code == statuses[index], response.content
