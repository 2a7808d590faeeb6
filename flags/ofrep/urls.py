"""OFREP URLs, under ``/ofrep/v1/``: no trailing slash (one is accepted too), never a redirect.

``evaluate/flags/`` is the bulk endpoint too; every other path below it is the single-flag one
(a trailing slash is not part of the key; an empty or unknown key answers FLAG_NOT_FOUND in
OFREP's shape), and ``no_append_slash`` keeps CommonMiddleware from redirecting.
"""

from django.urls import URLPattern, URLResolver, path, re_path
from django.views.decorators.common import no_append_slash

from flagship.routing import slash_optional

from . import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("evaluate/flags", no_append_slash(views.OfrepFlagsView.as_view()), name="ofrep-flags"),
    re_path(
        r"^evaluate/flags/(?P<key>.*)\Z",
        no_append_slash(views.OfrepFlagView.as_view()),
        name="ofrep-flag",
    ),
]

# Every route answers with or without its trailing slash (flagship.routing).
urlpatterns = slash_optional(urlpatterns)
