"""FlagShip's own project for tests: present (a transactional test's flush removes what the
migration made), and its flags switched as an administrator switches them (no tests here)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

from django.apps import apps
from django.db import connection

from flags import services
from flags.models import FlagState, Project

# The migration's module name starts with a digit: it can only be imported by name.
_migration: Any = importlib.import_module("flags.migrations.0013_system_project")


def ensure_system_project() -> Project:
    """The system project, created as migration ``flags.0013`` creates it if it is missing."""
    _migration.create_system_project(apps, None)
    return Project.objects.get(system=True)


def remove_system_project() -> None:
    """Delete the system project as the migration does when it is reversed."""
    _migration.delete_system_project(apps, SimpleNamespace(connection=connection))


def system_state(key: str) -> FlagState:
    """The state of one of FlagShip's own flags."""
    return FlagState.objects.select_related("environment__project", "flag").get(
        flag__project__system=True, flag__key=key
    )


def switch(key: str, *, on: bool, actor: Any) -> FlagState:
    """Turn one of FlagShip's own flags on or off through the service, as the admin does."""
    return services.flag_toggle(state=system_state(key), enabled=on, actor=actor)
