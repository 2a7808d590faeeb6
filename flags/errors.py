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


class NotFoundError(FlagShipError):
    """Something a request names by key does not exist (or is hidden from the caller)."""

    code = "not_found"


class StaleVersionError(FlagShipError):
    """The object changed since the writer read it (optimistic concurrency)."""

    code = "stale_version"


class InUseError(FlagShipError):
    """The object is referenced elsewhere and cannot be removed or changed that way."""

    code = "in_use"


class ScheduleFinishedError(InUseError):
    """The scheduled change has no pending step left (done, failed or cancelled already)."""

    code = "schedule_finished"


class ChangeRequestRequiredError(PermissionDeniedError):
    """The environment takes change requests: a person's change there must be proposed."""

    code = "change_request_required"


class ChangeRequestClosedError(InUseError):
    """The change request was applied, rejected or withdrawn already."""

    code = "change_request_closed"


class NotApprovedError(InUseError):
    """The change request lacks the approvals its environment requires."""

    code = "not_approved"


class ChangeRequestConflictError(InUseError):
    """A flag state the change request changes was changed since: it must be rebased."""

    code = "change_request_conflict"


class CapabilityDisabledError(FlagShipError):
    """An optional capability is switched off by FlagShip's own flags (``flags.capabilities``)."""

    code = "capability_disabled"
