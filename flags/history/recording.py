"""Recording why a change was made, and which rows one change wrote, on every history row.

django-simple-history records who and when; the reason a person gives in a form (or an API client
in a header) is set around the service calls with ``reason(...)`` and lands in each history row's
``history_change_reason``, including rows written by cascades (a rule's conditions deleted with it)
and by many-to-many changes (a rule's segments).

Every row written in one transaction gets the same ``history_date`` (``transaction_moment``): a
change made of several rows (a rule with its conditions and segments) is one moment of the
timeline, and "the state right after this entry" includes all of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords

_reason: ContextVar[str | None] = ContextVar("flagship_change_reason", default=None)
_actor: ContextVar[Any | None] = ContextVar("flagship_change_actor", default=None)


@contextmanager
def reason(text: str | None) -> Iterator[None]:
    """Record ``text`` as the reason of every history row written inside the block."""
    token = _reason.set(text.strip() if text and text.strip() else None)
    try:
        yield
    finally:
        _reason.reset(token)


@contextmanager
def acting(actor: Any | None) -> Iterator[None]:
    """Record ``actor`` on every history row written inside the block that names nobody.

    The services save and delete objects with their actor; rows Django writes on its own (the
    conditions deleted with their rule) name nobody, and would otherwise fall back to the
    request's user, which an API key's or a token's request does not have.
    """
    person = actor if getattr(actor, "is_authenticated", False) else None
    token = _actor.set(person if person is not None else _actor.get())
    try:
        yield
    finally:
        _actor.reset(token)


def current_reason() -> str | None:
    """The reason given for the changes being made now, if any."""
    return _reason.get()


class _Moment:
    """An on-commit callback doing nothing: while it is pending, its transaction is still open."""

    def __init__(self, savepoint: str | None) -> None:
        self.at = timezone.now()
        self.savepoint = savepoint

    def __call__(self) -> None:
        """Nothing to do once the transaction has committed."""


def transaction_moment(using: str | None = None) -> datetime:
    """The one ``history_date`` of every row written in the current transaction.

    Outside a transaction, now. Inside, the time of its first history row: the moment is kept
    with a do-nothing on-commit callback, which Django drops on commit and on rollback, so a
    moment never outlives its transaction. Under a test case's own atomic blocks (which never
    commit), the outermost block opened by the code under test stands for the transaction.
    """
    connection = transaction.get_connection(using or DEFAULT_DB_ALIAS)
    if not connection.in_atomic_block:
        return timezone.now()
    blocks = connection.atomic_blocks
    first = next(
        (i for i, block in enumerate(blocks) if not getattr(block, "_from_testcase", False)), None
    )
    if first is None:
        return timezone.now()  # only a test case's blocks: as if each statement committed
    savepoint = connection.savepoint_ids[first - 1] if first > 0 else None
    kept = getattr(connection, "_flagship_moment", None)
    pending = any(entry[1] is kept for entry in connection.run_on_commit)
    if isinstance(kept, _Moment) and kept.savepoint == savepoint and pending:
        return kept.at
    moment = _Moment(savepoint)
    connection.on_commit(moment)
    connection._flagship_moment = moment  # kept on the connection while its transaction is open
    return moment.at


def _reason_of(instance: Any) -> Any:
    given = current_reason()
    return given if given is not None else getattr(instance, "_change_reason", None)


if TYPE_CHECKING:
    # simple-history ships no types: models declare ``history = AuditedHistory()`` as Any.
    AuditedHistory: Any
else:

    class AuditedHistory(HistoricalRecords):
        """simple-history's records, with the reason of the change being made (see ``reason``).

        ``indexes`` adds indexes to the history table (the feed's scopes and "the version before
        this one" read them: bench/RESULTS.md, audit log).
        """

        def __init__(self, *args: Any, indexes: tuple[Any, ...] = (), **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.extra_indexes = indexes

        def get_meta_options(self, model: Any) -> dict[str, Any]:
            """simple-history's options, and the indexes this model's history needs."""
            options: dict[str, Any] = super().get_meta_options(model)
            if self.extra_indexes:
                options["indexes"] = (*options.get("indexes", ()), *self.extra_indexes)
            return options

        def get_history_user(self, instance: Any) -> Any:
            """The object's actor, else the one acting around the service, else the request's."""
            if not hasattr(instance, "_history_user") and _actor.get() is not None:
                return _actor.get()
            return super().get_history_user(instance)

        def get_change_reason_for_object(self, instance: Any, history_type: str, using: Any) -> Any:
            """The reason given around the service call, else one set on the object itself."""
            return _reason_of(instance)

        def create_historical_record(
            self, instance: Any, history_type: str, using: Any = None
        ) -> None:
            """Write the row dated with its transaction's moment (unless a date was given)."""
            if hasattr(instance, "_history_date"):
                super().create_historical_record(instance, history_type, using=using)
                return
            instance._history_date = transaction_moment(using)
            try:
                super().create_historical_record(instance, history_type, using=using)
            finally:
                del instance._history_date
