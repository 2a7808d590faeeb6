"""OFREP URLs, under ``/ofrep/v1/``: no trailing slash, and never a redirect to one.

Every path below ``evaluate/flags/`` is the single-flag endpoint (an empty or unknown key answers
FLAG_NOT_FOUND in OFREP's shape), and ``no_append_slash`` keeps CommonMiddleware from redirecting.
"""

from django.urls import URLPattern, URLResolver, path, re_path
from django.views.decorators.common import no_append_slash

from . import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("evaluate/flags", no_append_slash(views.OfrepFlagsView.as_view()), name="ofrep-flags"),
    re_path(
        r"^evaluate/flags/(?P<key>.*)\Z",
        no_append_slash(views.OfrepFlagView.as_view()),
        name="ofrep-flag",
    ),
]
