"""One committed state per build: the read transaction a ruleset document is built in.

A document labelled version N must be exactly the committed state at N (``versions`` makes one
transaction advance an environment's version once). ``documents.environment_ruleset`` therefore
reads in :func:`one_state`. Outside a transaction the build gets its own: on PostgreSQL
``REPEATABLE READ READ ONLY``, one snapshot for all its queries; on SQLite one transaction is one
snapshot already (a reader's WAL snapshot, or its shared lock on a rollback journal, holds until it
ends; ``transaction_mode=IMMEDIATE`` even excludes writers meanwhile). Inside a caller's
transaction the isolation level cannot change: at PostgreSQL's READ COMMITTED each query would see
a different committed state, so the build reads the environment row ``FOR SHARE``. Every change to
an environment's ruleset advances that row in its own transaction, so while the build holds the
lock no other change to it can commit, and one that advanced it before is waited for; the document
is the committed state at its version plus the caller's own uncommitted writes. Such a document is
the caller's view, not a committed one: nothing that is shared (the Redis documents, the compiled
rulesets) may keep it, and a transaction that builds and then writes should advance first (the
lock upgrade of two such transactions would deadlock).

This is apart from ``versions`` because ``versions`` builds documents (after a commit) and so
imports the builder, which imports this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction

SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"

# Set while this thread (or task) builds inside a snapshot transaction of its own.
_in_snapshot: ContextVar[bool] = ContextVar("flagship_in_snapshot", default=False)


@contextmanager
def one_state() -> Iterator[bool]:
    """Read one committed state in the block (see the module's docstring).

    Yields whether the reader must also lock the environment row (``FOR SHARE``): in a caller's
    transaction at PostgreSQL's READ COMMITTED.
    """
    connection = transaction.get_connection()
    if _in_snapshot.get():
        yield False
        return
    if connection.in_atomic_block or not connection.get_autocommit():
        yield connection.vendor == "postgresql" and _read_committed(connection)
        return
    token = _in_snapshot.set(True)
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(SNAPSHOT)  # before any query of the transaction
            yield False
    finally:
        _in_snapshot.reset(token)


def _read_committed(connection: Any) -> bool:
    from psycopg import IsolationLevel  # noqa: PLC0415  # only PostgreSQL needs it

    # Django reads OPTIONS["isolation_level"] when it connects (READ COMMITTED unless set); at
    # REPEATABLE READ or SERIALIZABLE the caller's transaction is one snapshot already.
    level = getattr(connection, "isolation_level", None)
    return level is None or level == IsolationLevel.READ_COMMITTED
