from django.apps import AppConfig


class FlagsConfig(AppConfig):
    """Projects, environments, flags, targeting and their history."""

    name = "flags"
    verbose_name = "Feature flags"

    def ready(self) -> None:
        """Import the change notices now, not on the first commit.

        ``flags.services.common._announce`` imports ``flags.events`` lazily (its import graph
        stays free of the stream); importing it (redis.asyncio and friends) takes ~45 ms, which the
        first change after a start-up would otherwise add to its propagation time.
        """
        from . import events  # noqa: F401, PLC0415
