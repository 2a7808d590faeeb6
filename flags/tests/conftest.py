"""Fixtures for the flags app: a project with its three environments, flags, child processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flags import services
from flags.models import Environment, Flag, Project, Segment
from flagship.processes import Processes


@pytest.fixture
def project(db: None) -> Project:
    """Project ``demo`` with development, staging and a protected production."""
    return services.project_create(key="demo", name="Demo")


@pytest.fixture
def production(project: Project) -> Environment:
    """The protected production environment."""
    return project.environments.get(key="production")


@pytest.fixture
def staging(project: Project) -> Environment:
    """The unprotected staging environment."""
    return project.environments.get(key="staging")


@pytest.fixture
def boolean_flag(project: Project) -> Flag:
    """A boolean flag ``new-checkout``, off everywhere."""
    return services.flag_create(project=project, key="new-checkout", name="New checkout")


@pytest.fixture
def string_flag(project: Project) -> Flag:
    """A string flag ``banner-text`` with three variants."""
    return services.flag_create(
        project=project,
        key="banner-text",
        name="Banner text",
        kind=Flag.Kind.STRING,
        variants=[("none", ""), ("sale", "Winter sale!"), ("new", "Try our new checkout")],
    )


@pytest.fixture
def beta_testers(project: Project) -> Segment:
    """Segment ``beta-testers``: emails at example.com."""
    return services.segment_create(
        project=project,
        key="beta-testers",
        name="Beta testers",
        conditions=[
            {"attribute": "email", "operator": "str_ends_with", "values": ["@example.com"]}
        ],
    )


@pytest.fixture
def processes(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Processes]:
    """Child processes, stopped at the end (their logs printed when the test failed)."""
    running = Processes(tmp_path)
    failed_before = request.session.testsfailed
    yield running
    if request.session.testsfailed > failed_before:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.stem}\n{running.tail(log.stem, 60)}")  # noqa: T201  # the failure's
    running.stop()
