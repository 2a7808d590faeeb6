"""Test-wide settings and fixtures shared by every app's tests."""

from __future__ import annotations

# DJANGO_ENV=test is set by the flagship.tests.required_services plugin, loaded before Django reads
# its settings.
from collections.abc import Iterator

import pytest

from accounts import roles
from accounts.models import User
from accounts.tests.factories import make_user
from flagship import breakers


@pytest.fixture
def viewer(db: None) -> User:
    """A user in the Viewer group."""
    return make_user(username="viewer", role=roles.VIEWER)


@pytest.fixture
def editor(db: None) -> User:
    """A user in the Editor group."""
    return make_user(username="editor", role=roles.EDITOR)


@pytest.fixture
def release_manager(db: None) -> User:
    """A user in the Release manager group."""
    return make_user(username="release", role=roles.RELEASE_MANAGER)


@pytest.fixture
def administrator(db: None) -> User:
    """A user in the Administrator group."""
    return make_user(username="admin", role=roles.ADMINISTRATOR)


@pytest.fixture(autouse=True)
def _closed_breakers() -> Iterator[None]:
    """Every test starts and ends with PostgreSQL's and Redis's circuit breakers closed."""
    breakers.reset()
    yield
    breakers.reset()


@pytest.fixture(autouse=True)
def _no_pending_counts() -> Iterator[None]:
    """Every test starts and ends with no evaluation counts held in this process."""
    from flags.evaluation import counting  # noqa: PLC0415  # after Django is set up

    counting.clear()
    yield
    counting.clear()


@pytest.fixture(autouse=True)
def _fresh_capabilities() -> Iterator[None]:
    """Every test starts and ends knowing nothing of FlagShip's own flags (a fresh process)."""
    from flags import capabilities  # noqa: PLC0415  # after Django is set up

    capabilities.clear()
    yield
    capabilities.clear()
