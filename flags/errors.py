"""Domain errors: plain Python with a stable ``code``; the API layer turns them into responses.

Invalid input is reported with Django's ``ValidationError`` (also carrying codes), so forms show
it next to the field; these classes cover the other ways a write can be refused.
"""

from __future__ import annotations


class FlagShipError(Exception):
    """Base of FlagShip's domain errors."""

    code = "flagship_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDeniedError(FlagShipError):
    """The actor may not make this change (e.g. a protected environment without the permission)."""

    code = "permission_denied"


class StaleVersionError(FlagShipError):
    """The object changed since the writer read it (optimistic concurrency)."""

    code = "stale_version"


class InUseError(FlagShipError):
    """The object is referenced elsewhere and cannot be removed or changed that way."""

    code = "in_use"


class ScheduleFinishedError(InUseError):
    """The scheduled change has no pending step left (done, failed or cancelled already)."""

    code = "schedule_finished"
