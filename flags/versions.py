"""One ruleset version, one committed state: how writes advance versions and builds read them.

**Writes** (``advance``, called by ``services.common.bump``): a transaction advances an
environment's ``ruleset_version`` once, however many rows and service calls it makes. The first
advance of an environment in a transaction runs the ``F()`` update and registers its announcement
with ``transaction.on_commit``; later ones find that announcement still pending and do nothing. The
pending announcement is the record, so a rollback forgets it exactly when it forgets the update:
Django drops the callbacks registered inside a savepoint that rolls back (and all of them when the
transaction does), so a write after a rolled-back savepoint advances the version again, and every
commit announces each environment once, with its final version.

Inside a test's transaction (pytest-django's ``django_db``, Django's ``TestCase``), nothing commits
between service calls: there, the outermost atomic block the application opened (the first one not
marked ``_from_testcase``) stands for the transaction, as it does in production.

**Reads** (``one_state``, used by ``snapshot.environment_ruleset``): a document is built from one
committed state and labelled with the version of that state. Outside a transaction the build gets
its own: on PostgreSQL ``REPEATABLE READ READ ONLY``, one snapshot for all its queries; on SQLite
one transaction is one snapshot already (a reader's WAL snapshot, or its shared lock on a rollback
journal, holds until it ends; ``transaction_mode=IMMEDIATE`` even excludes writers meanwhile).
Inside a caller's transaction the isolation level cannot change: at PostgreSQL's READ COMMITTED
each query would see a different committed state, so the build reads the environment row
``FOR SHARE``. Every change to an environment's ruleset advances that row in its own transaction,
so while the build holds the lock no other change to it can commit, and one that advanced it before
is waited for; the document is the committed state at its version plus the caller's own
uncommitted writes. Such a document is the caller's view, not a committed one: nothing that is
shared (the Redis documents, the compiled rulesets) may keep it, and a transaction that builds and
then writes should advance first (the lock upgrade of two such transactions would deadlock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F

from .models import Environment

SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"

# Set while this thread (or task) builds inside a snapshot transaction of its own.
_in_snapshot: ContextVar[bool] = ContextVar("flagship_in_snapshot", default=False)


@dataclass(frozen=True, slots=True)
class Announcement:
    """The on-commit callback of one advance: ``run(environment_ids)`` once the change committed."""

    environment_ids: tuple[int, ...]
    run: Callable[[list[int]], None]

    def __call__(self) -> None:
        """Announce the environments (after commit)."""
        self.run(list(self.environment_ids))


def advance(environment_ids: Iterable[int], announce: Callable[[list[int]], None]) -> list[int]:
    """Advance the versions of the environments this transaction has not advanced yet.

    Returns the ones advanced now; ``announce`` is called with them after commit (at once without
    a transaction).
    """
    ids = sorted(set(environment_ids))
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        done = _advanced(connection)
        ids = [pk for pk in ids if pk not in done]
    if not ids:
        return []
    Environment.objects.filter(pk__in=ids).update(ruleset_version=F("ruleset_version") + 1)
    transaction.on_commit(Announcement(tuple(ids), announce))
    return ids


def _advanced(connection: Any) -> set[int]:
    """The environments whose version the current transaction advanced (and still will commit)."""
    ours = _ours(connection)
    environments: set[int] = set()
    for entry in connection.run_on_commit:
        # (savepoint ids open at registration, callback, robust); the stubs know only two.
        savepoints, callback = entry[0], entry[1]
        if isinstance(callback, Announcement) and ours(savepoints):
            environments.update(callback.environment_ids)
    return environments


def _ours(connection: Any) -> Callable[[set[str]], bool]:
    """Whether a callback is this transaction's, by the savepoints open when it was registered.

    Every pending one is, unless a test's atomic blocks wrap the application's.
    """
    blocks = connection.atomic_blocks
    tests = 0
    while tests < len(blocks) and getattr(blocks[tests], "_from_testcase", False):
        tests += 1
    if tests == 0:
        return lambda savepoints: True  # the real transaction: pending means not yet committed
    if tests == len(blocks):
        return lambda savepoints: False  # no application block: each advance stands alone
    # The savepoint of the application's outermost block (one savepoint id per block, except the
    # block that began the transaction, which has none).
    sid = connection.savepoint_ids[tests + len(connection.savepoint_ids) - len(blocks)]
    if sid is None:  # atomic(savepoint=False): nothing tells its callbacks apart
        return lambda savepoints: False
    return lambda savepoints: sid in savepoints


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
