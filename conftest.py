"""Test-wide settings and fixtures shared by every app's tests."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ENV", "test")

import pytest  # the environment must be set before Django reads settings

from accounts import roles


@pytest.fixture
def viewer(db: None) -> object:
    """A user in the Viewer group."""
    from accounts.tests.factories import UserFactory  # noqa: PLC0415  # needs Django set up

    return UserFactory(username="viewer", role=roles.VIEWER)


@pytest.fixture
def editor(db: None) -> object:
    """A user in the Editor group."""
    from accounts.tests.factories import UserFactory  # noqa: PLC0415  # needs Django set up

    return UserFactory(username="editor", role=roles.EDITOR)


@pytest.fixture
def release_manager(db: None) -> object:
    """A user in the Release manager group."""
    from accounts.tests.factories import UserFactory  # noqa: PLC0415  # needs Django set up

    return UserFactory(username="release", role=roles.RELEASE_MANAGER)


@pytest.fixture
def administrator(db: None) -> object:
    """A user in the Administrator group."""
    from accounts.tests.factories import UserFactory  # noqa: PLC0415  # needs Django set up

    return UserFactory(username="admin", role=roles.ADMINISTRATOR)
