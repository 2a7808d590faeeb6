"""A benchmark's PostgreSQL database: created for one run, dropped after it, even on error."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg


class NoServerError(RuntimeError):
    """``DATABASE_URL`` names no PostgreSQL server."""


def database_url(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit("DATABASE_URL must be a PostgreSQL URL (postgres://...)")
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def scratch_database(prefix: str) -> Iterator[tuple[str, str]]:
    """Create ``<prefix>_<pid>`` on ``DATABASE_URL``'s server; yield its name and URL; drop it.

    Django's connections to it (when Django was set up meanwhile) are closed first.
    """
    server = os.environ.get("DATABASE_URL", "")
    if not server:
        raise NoServerError(
            "DATABASE_URL is required (a PostgreSQL server the run may create a database on)"
        )
    name = f"{prefix}_{os.getpid()}"
    url = database_url(server, name)
    with psycopg.connect(server, autocommit=True) as admin_connection:
        admin_connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, url
    finally:
        _close_connections()
        with psycopg.connect(server, autocommit=True) as admin_connection:
            admin_connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _close_connections() -> None:
    if "django" in sys.modules:
        from django.db import connections  # noqa: PLC0415  # only once Django was set up

        for connection in connections.all(initialized_only=True):
            connection.close()
            close_pool = getattr(connection, "close_pool", None)
            if close_pool is not None:
                close_pool()
