"""Evaluation API URLs under ``/api/<version>/``: no trailing slash (one accepted), like OFREP."""

from django.urls import URLPattern, URLResolver, path

from flagship.routing import slash_optional

from . import counts, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("evaluate", views.EvaluateFlagsView.as_view(), name="evaluate-flags"),
    path("evaluate/<path:flag_key>", views.EvaluateFlagView.as_view(), name="evaluate-flag"),
    path("ruleset", views.RulesetView.as_view(), name="ruleset"),
    path("sdk/evaluations", counts.EvaluationCountsView.as_view(), name="sdk-evaluations"),
]

# Every route answers with or without its trailing slash (flagship.routing).
urlpatterns = slash_optional(urlpatterns)
