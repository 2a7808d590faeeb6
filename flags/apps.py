from django.apps import AppConfig
from django.db import connection


class FlagsConfig(AppConfig):
    """Projects, environments, flags, targeting and their history."""

    name = "flags"
    verbose_name = "Feature flags"

    def ready(self) -> None:
        """Import the change notices now, not on the first commit; reconcile after outages.

        ``flags.services.common._announce`` imports ``flags.events`` lazily (its import graph
        stays free of the stream); importing it (redis.asyncio and friends) takes ~45 ms, which the
        first change after a start-up would otherwise add to its propagation time.
        """
        from flagship import breakers  # noqa: PLC0415  # app modules load after the registry

        from . import checks, events  # noqa: F401, PLC0415  # checks: registers them
        from .delivery import changes  # noqa: PLC0415
        from .history import change_log  # noqa: PLC0415
        from .webhooks import outbox  # noqa: PLC0415

        # The change event's subscribers (flags.delivery.changes): webhooks' outbox rows are
        # written in the change's own transaction; the audit log line once it has committed.
        changes.subscribe(in_transaction=outbox.enqueue, after_commit=change_log.record_committed)

        breakers.redis_breaker.on_recovery(_reconcile)
        breakers.database.on_recovery(_reconcile)


def _reconcile() -> None:
    """After an outage, bring the shared versions up to the database's (in the probe's thread)."""
    from .evaluation import cache  # noqa: PLC0415  # imports models

    try:
        cache.reconcile_versions()
    finally:
        connection.close()  # the probe thread's connection goes back to the pool
