"""Evaluation API URLs, under ``/api/<version>/`` (no trailing slashes, like OFREP)."""

from django.urls import URLPattern, URLResolver, path

from . import counts, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("evaluate", views.EvaluateFlagsView.as_view(), name="evaluate-flags"),
    path("evaluate/<path:flag_key>", views.EvaluateFlagView.as_view(), name="evaluate-flag"),
    path("ruleset", views.RulesetView.as_view(), name="ruleset"),
    path("sdk/evaluations", counts.EvaluationCountsView.as_view(), name="sdk-evaluations"),
]
