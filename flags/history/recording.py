"""Recording why a change was made, on every history row it writes.

django-simple-history records who and when; the reason a person gives in a form (or an API client
in a header) is set around the service calls with ``reason(...)`` and lands in each history row's
``history_change_reason``, including rows written by cascades (a rule's conditions deleted with it)
and by many-to-many changes (a rule's segments).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from simple_history.models import HistoricalRecords

_reason: ContextVar[str | None] = ContextVar("flagship_change_reason", default=None)


@contextmanager
def reason(text: str | None) -> Iterator[None]:
    """Record ``text`` as the reason of every history row written inside the block."""
    token = _reason.set(text.strip() if text and text.strip() else None)
    try:
        yield
    finally:
        _reason.reset(token)


def current_reason() -> str | None:
    """The reason given for the changes being made now, if any."""
    return _reason.get()


def _reason_of(instance: Any) -> Any:
    given = current_reason()
    return given if given is not None else getattr(instance, "_change_reason", None)


if TYPE_CHECKING:
    # simple-history ships no types: models declare ``history = AuditedHistory()`` as Any.
    AuditedHistory: Any
else:

    class AuditedHistory(HistoricalRecords):
        """simple-history's records, with the reason of the change being made (see ``reason``)."""

        def get_change_reason_for_object(self, instance: Any, history_type: str, using: Any) -> Any:
            """The reason given around the service call, else one set on the object itself."""
            return _reason_of(instance)
