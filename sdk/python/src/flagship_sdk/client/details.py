"""The values the client hands to its host: evaluation details, status and events."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..engine import RulesetProblem


class ClientErrorCode:
    """Error codes the client adds to the engine's (``FLAG_NOT_FOUND``, ``INVALID_CONTEXT``...)."""

    PROVIDER_NOT_READY: Final = "PROVIDER_NOT_READY"
    TYPE_MISMATCH: Final = "TYPE_MISMATCH"
    FLAG_NOT_FOUND: Final = "FLAG_NOT_FOUND"
    INVALID_CONTEXT: Final = "INVALID_CONTEXT"
    GENERAL: Final = "GENERAL"


class ClientStatus(enum.StrEnum):
    """Where the client stands.

    ``STALE`` means the client has data but the last synchronisation failed.
    """

    NOT_READY = "NOT_READY"
    READY = "READY"
    STALE = "STALE"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class EvaluationDetails:
    """The outcome of one evaluation, as the host sees it (the default on any error)."""

    key: str
    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    error_message: str | None = None
    rule: str | None = None
    version: int | None = None
    #: With reason ``PREREQUISITE_FAILED``: the first prerequisite flag that failed.
    prerequisite: str | None = None
    #: Set when evaluation passed over a rule disabled by a condition this SDK cannot use (a
    #: newer server's operator or value): the value may differ from what a newer SDK serves.
    problem: RulesetProblem | None = None


EventType = Literal["ready", "changed", "error", "stale"]


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """A notice to listeners: data is ready, changed, a synchronisation failed, or is stale."""

    type: EventType
    version: int | None = None
    message: str | None = None
    flags_changed: tuple[str, ...] | None = None
