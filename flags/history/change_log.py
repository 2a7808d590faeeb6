"""The audit log line of every committed change: a change-event subscriber (after commit).

One ``change.committed`` line per change event, with its id, type, project, environments,
flags, actor and reason: what an operator ships to a log store to keep an audit trail outside
the database. Before/after stay in the event (``ChangeEvent``), not in the log.
"""

from __future__ import annotations

import logging

from flags.models import ChangeEvent

logger = logging.getLogger("flags.audit")


def record_committed(event: ChangeEvent) -> None:
    """Log one committed change (registered with ``changes.subscribe`` in ``FlagsConfig``)."""
    logger.info(
        "change.committed",
        extra={
            "event_id": str(event.id),
            "type": event.kind,
            "project": event.project_key,
            "environments": [environment["key"] for environment in event.environments],
            "flags": event.flags,
            "actor": event.actor_name or None,
            "reason": event.reason,
        },
    )
