from django.apps import AppConfig


class FlagsConfig(AppConfig):
    """Projects, environments, flags, targeting and their history."""

    name = "flags"
    verbose_name = "Feature flags"
