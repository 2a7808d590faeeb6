"""A ruleset from a newer server: the client takes it, evaluates it, and logs each problem once."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from .conftest import ClientFactory, wait_for
from .fake_server import FakeServer, boolean_flag, ruleset_document

PROBLEM_PATH = 'flags["glob"].rules[0].conditions[0].operator'
LOGGER = "flagship_sdk"


def _newer_document(version: int) -> dict[str, Any]:
    """A document whose flag "glob" uses an operator this SDK does not know, beside sound flags."""
    glob = boolean_flag(
        False,
        rules=[
            {
                "id": "r-glob",
                "conditions": [{"attribute": "email", "operator": "str_glob", "values": ["*"]}],
                "serve": {"variant": "on"},
            },
            {
                "id": "r-de",
                "conditions": [{"attribute": "country", "operator": "in", "values": ["DE"]}],
                "serve": {"variant": "on"},
            },
        ],
    )
    return ruleset_document(version, {"glob": glob, "feature": boolean_flag(True)})


def _problem_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("flagship.client.ruleset_problem:")
    ]


def test_unknown_operator_served__two_polls_of_the_version__ready_and_logged_once(
    make_client: ClientFactory, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a server serving, in full every time, a ruleset with an operator this SDK does not know
    server.set_ruleset(_newer_document(3), push=False)
    server.etags = False
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # When a polling client starts and polls the same version twice more
    client = make_client(stream=False, poll_interval=0.02)
    assert client.wait_until_ready(5)
    assert wait_for(lambda: server.request_count("/api/v1/ruleset") >= 3)
    # Then it is ready with that version and evaluates every flag
    assert client.ruleset_version == 3
    assert client.is_enabled("feature") is True
    assert client.is_enabled("glob", {"country": "DE"}) is True
    details = client.evaluate("glob", True, {"email": "ann@example.com"})
    assert (details.value, details.reason, details.error_code) == (False, "DEFAULT", None)
    assert details.problem is not None
    assert (details.problem.code, details.problem.path) == ("unknown_operator", PROBLEM_PATH)
    assert client.evaluate("feature", False).problem is None
    assert client.evaluate_all({"country": "DE"})["glob"].problem == details.problem
    # And the problem was logged exactly once, as one warning line naming version, code and path
    assert _problem_lines(caplog) == [
        f"flagship.client.ruleset_problem: version 3, unknown_operator at {PROBLEM_PATH}: "
        "unknown operator 'str_glob'; the condition never matches"
    ]
    [record] = [r for r in caplog.records if r.getMessage().startswith("flagship.client.ruleset_")]
    assert record.levelno == logging.WARNING
    assert record.__dict__["problem_code"] == "unknown_operator"


def test_same_version_from_bootstrap_then_server__logged_once_new_version_logged_again(
    make_client: ClientFactory, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a client bootstrapped with a newer server's ruleset, which the server also serves
    server.set_ruleset(_newer_document(3), push=False)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    client = make_client(stream=False, poll_interval=60, bootstrap=_newer_document(3))
    # When the server's copy of the same version replaces the bootstrap
    assert wait_for(lambda: client.data_source == "server")
    # Then the problem was logged once
    assert len(_problem_lines(caplog)) == 1
    # And a new version with the problem still in it is logged again, once
    server.set_ruleset(_newer_document(4), push=False)
    assert client.refresh() is True
    assert client.refresh() is True
    lines = _problem_lines(caplog)
    assert len(lines) == 2
    assert lines[1].startswith("flagship.client.ruleset_problem: version 4, unknown_operator")


def test_many_problems__logged__bounded_with_a_count_of_the_rest(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a ruleset with 25 flags using an unknown operator
    flag = {
        "kind": "boolean",
        "variants": {"on": True, "off": False},
        "enabled": True,
        "off_variant": "off",
        "rules": [
            {
                "id": "r",
                "conditions": [{"attribute": "a", "operator": "str_glob", "values": ["*"]}],
                "serve": {"variant": "on"},
            }
        ],
        "default_serve": {"variant": "off"},
    }
    document = ruleset_document(5, {f"f{index}": flag for index in range(25)})
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # When an offline client takes it
    client = make_client(offline=True, bootstrap=document)
    # Then 20 problems are logged one by one, and the 5 others counted on one line
    assert client.ready
    assert len(_problem_lines(caplog)) == 20
    assert any(
        r.getMessage() == "flagship.client.ruleset_problems_truncated: version 5, 5 more problems"
        for r in caplog.records
    )
