from django.apps import AppConfig
from django.db import connection


class FlagsConfig(AppConfig):
    """Projects, environments, flags, targeting and their history."""

    name = "flags"
    verbose_name = "Feature flags"

    def ready(self) -> None:
        """Connect ruleset delivery before the first request; reconcile versions after outages.

        ``flags.delivery.versions`` is imported here rather than by whichever request or commit
        first needs it. Importing it connects this process's receiver of pub/sub messages
        (``pubsub.connect``: versions first, then the streams), on which a stream, and a commit
        without Redis, rely even in a process where nothing else imported it yet; and it costs
        tens of milliseconds (the stream broker, redis-py), which the first change after a
        start-up would otherwise add to its propagation time.
        """
        from flagship import breakers  # noqa: PLC0415  # app modules load after the registry

        from . import checks  # noqa: F401, PLC0415  # registers them
        from .delivery import changes, versions  # noqa: F401, PLC0415  # versions: connects
        from .history import change_log  # noqa: PLC0415
        from .staleness import connect  # noqa: PLC0415
        from .webhooks import outbox  # noqa: PLC0415

        # The change event's subscribers (flags.delivery.changes): webhooks' outbox rows are
        # written in the change's own transaction; the audit log line once it has committed.
        changes.subscribe(in_transaction=outbox.enqueue, after_commit=change_log.record_committed)

        connect()  # stored stale inputs marked dirty on every change (flags.staleness)
        breakers.redis_breaker.on_recovery(_reconcile)
        breakers.database.on_recovery(_reconcile)


def _reconcile() -> None:
    """After an outage, bring the shared versions up to the database's (in the probe's thread)."""
    from .delivery import versions  # noqa: PLC0415  # imports models

    try:
        versions.reconcile_versions()
    finally:
        connection.close()  # the probe thread's connection goes back to the pool
