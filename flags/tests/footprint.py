"""What the database holds, for tests of writes that must change nothing (no row, no version)."""

from __future__ import annotations

from typing import Any

from django.apps import apps


def footprint() -> dict[str, Any]:
    """Every row count of the flags app (history included), every version and every state."""
    from flags.models import Environment, FlagState  # noqa: PLC0415  # models after app loading

    counts: dict[str, Any] = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("flags").get_models(include_auto_created=True)
    }
    counts["versions"] = sorted(Environment.objects.values_list("pk", "ruleset_version"))
    counts["states"] = sorted(FlagState.objects.values_list("pk", "version", "enabled"))
    return counts
