"""FlagShip's own flags: the optional capabilities switched at run time by the system project.

The system project (``Project.system``, created by migration ``flags.0013``, key ``flagship``)
holds one boolean flag per capability in its environment ``production``. :func:`enabled` answers
with FlagShip's own engine, from the compiled ruleset this process keeps (``delivery.compiled``)
at the version this process knows (``delivery.versions``), so the delivery that carries a change
to every SDK carries it here too (``docs/operations.md``, "FlagShip's own flags"):

- **warm** (the version pushed through pub/sub, the answers of that version computed): two
  dictionary look-ups, no query and no Redis command;
- **untrusted versions** (no Redis, ``FLAGSHIP_VERSION_CACHE_SECONDS=0``, or the subscription
  lost): the version is read as evaluation reads it (``versions.known_version``) at most every
  ``POLL_SECONDS`` per process, and a pub/sub notice about the system environment drops that
  memory at once;
- **failures** (the database or Redis down): the answers of the last version this process
  compiled; a process that never compiled one, or an installation without the system project
  (a flag missing from it), answers each capability's default.

A change to the system environment also tells this process's open streams to check the
``stream`` capability again (``flags.stream.subscriptions``), so they close when it goes off.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from django.db import DatabaseError
from django.db.models import Model, QuerySet

from flags.models import Environment
from flags.stream import subscriptions

from .delivery import compiled, pubsub, versions

logger = logging.getLogger(__name__)

STREAM: Final = "stream"
WEBHOOKS: Final = "webhooks"
SCHEDULED_CHANGES: Final = "scheduled-changes"
CHANGE_REQUESTS: Final = "change-requests"
ADMIN_PREVIEW: Final = "admin-preview"

# Who sees and changes the system project (superusers and the Administrator role).
PERMISSION: Final = "flags.manage_system_project"
ENVIRONMENT_KEY: Final = "production"
# While versions are not pushed: how long a process keeps a version it read (the bound on how
# late it sees a change then), and how long it waits before looking again for a missing project.
POLL_SECONDS = 0.5
MISSING_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Capability:
    """One flag of the system project: what it switches, and its answer when nothing is known."""

    key: str
    default: bool
    switches: str


CAPABILITIES: Final[dict[str, Capability]] = {
    capability.key: capability
    for capability in (
        Capability(STREAM, True, "GET /api/v1/stream (off: 503, open streams close)"),
        Capability(WEBHOOKS, True, "the worker's webhook deliveries (off: they wait)"),
        Capability(SCHEDULED_CHANGES, True, "the worker's scheduled steps (off: they wait)"),
        Capability(CHANGE_REQUESTS, True, "opening change requests (off: refused)"),
        Capability(ADMIN_PREVIEW, False, "admin features in preview"),
    )
}


@dataclass(frozen=True, slots=True)
class _Place:
    environment_id: int
    project_id: int


@dataclass(frozen=True, slots=True)
class _Answers:
    version: int
    values: dict[str, bool]


_lock = threading.Lock()
_place: _Place | None = None
_missing_since: float | None = None  # when the system environment was last looked for in vain
_answers: _Answers | None = None
_polled: tuple[int, float] | None = None  # (version, when) while versions are not pushed


def enabled(key: str) -> bool:
    """Whether capability ``key`` is on (``KeyError`` for a key :data:`CAPABILITIES` lacks)."""
    capability = CAPABILITIES[key]
    answers = _current()
    if answers is None:
        return capability.default
    return answers.values.get(key, capability.default)


def _current() -> _Answers | None:
    """The answers at the version this process knows (the last ones when it knows none)."""
    place = _place or _find_place()
    if place is None:
        return None
    known = _answers
    version = _version(place)
    if version is None or (known is not None and known.version >= version):
        return known
    try:
        entry = compiled.compiled_for(place.environment_id, place.project_id, version)
        ruleset = entry.ruleset
        values: dict[str, bool] = {}
        for key, capability in CAPABILITIES.items():
            result = ruleset.evaluate(key, {})
            values[key] = result.value if isinstance(result.value, bool) else capability.default
    except Exception:  # the database or Redis failed: the last answers stand
        logger.warning("capabilities.not_compiled", exc_info=True)
        return known
    fresh = _Answers(entry.version, values)
    _store(fresh)
    return fresh


def _store(fresh: _Answers) -> None:
    global _answers  # noqa: PLW0603  # one process-wide memory, guarded by _lock
    with _lock:
        if _answers is None or _answers.version <= fresh.version:
            if _answers is not None and _answers.values != fresh.values:
                logger.info("capabilities.changed", extra={"capabilities": fresh.values})
            _answers = fresh


def _version(place: _Place) -> int | None:
    """The system environment's version: pushed, else read at most every ``POLL_SECONDS``."""
    global _polled  # noqa: PLW0603  # see _store
    pushed = versions.version(place.environment_id)
    if pushed is not None:
        return pushed
    polled = _polled
    now = time.monotonic()
    if polled is not None and now - polled[1] < POLL_SECONDS:
        return polled[0]
    try:
        current = versions.known_version(place.environment_id)
    except Environment.DoesNotExist:
        _forget_place()
        return None
    except Exception:  # the database and Redis failed: the last answers stand
        return None
    _polled = (current, now)
    return current


def _find_place() -> _Place | None:
    """Find the system environment (once per process; again after ``MISSING_RETRY_SECONDS``)."""
    global _place, _missing_since  # noqa: PLW0603  # see _store
    missing = _missing_since
    if missing is not None and time.monotonic() - missing < MISSING_RETRY_SECONDS:
        return None
    try:
        row = (
            Environment.objects.filter(project__system=True)
            .order_by("order", "pk")
            .values_list("pk", "project_id")
            .first()
        )
    except DatabaseError:
        row = None
    if row is None:
        _missing_since = time.monotonic()
        return None
    _place, _missing_since = _Place(*row), None
    return _place


def _forget_place() -> None:
    global _place, _answers, _polled  # see _store
    with _lock:
        _place, _answers, _polled = None, None, None


def is_system_environment(environment_id: int) -> bool:
    """Whether ``environment_id`` is the system environment this process knows."""
    place = _place
    return place is not None and place.environment_id == environment_id


def clear() -> None:
    """Forget the system project and every answer (tests)."""
    global _missing_since  # noqa: PLW0603  # see _store
    _forget_place()
    _missing_since = None


# --- Who sees the system project ----------------------------------------------------------------
def may_manage(user: Any) -> bool:
    """Whether ``user`` may see and change the system project (administrators only)."""
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(PERMISSION))


def hidden_project_id(user: Any) -> int | None:
    """The system project's id when ``user`` may not see it (for the audit feed), else ``None``."""
    if may_manage(user):
        return None
    place = _place or _find_place()
    return None if place is None else place.project_id


def visible[M: Model](queryset: QuerySet[M], user: Any, project_path: str) -> QuerySet[M]:
    """``queryset`` without the system project's rows unless ``user`` may manage it.

    ``project_path`` leads from the model to its project (``""`` for projects themselves).
    """
    if may_manage(user):
        return queryset
    return queryset.exclude(**{f"{project_path}__system" if project_path else "system": True})


# --- Changes to the system environment ----------------------------------------------------------
def _ruleset_changed(change: pubsub.RulesetChanged) -> None:
    """A committed change: drop the polled version and let open streams check ``stream``."""
    global _polled  # noqa: PLW0603  # see _store
    if is_system_environment(change.environment_id):
        _polled = None
        subscriptions.broker.recheck()


def _subscribed(again: bool) -> None:
    if again:  # notices may have been missed
        subscriptions.broker.recheck()


# Connected after ``versions`` (imported above), so a notice moves the process's version first.
pubsub.connect(pubsub.Receiver(ruleset_changed=_ruleset_changed, subscribed=_subscribed))
