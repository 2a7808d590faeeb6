"""FlagShip's URLs: the admin (people), the versioned API and OFREP (machines)."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from flags.graphql.schema import schema
from flags.graphql.view import FlagShipGraphQLView
from flagship.metrics_http import metrics_view
from flagship.routing import slash_optional

# The evaluation routes come first: Django tries patterns in order, and the management API's
# dozens of routes would otherwise be matched against every SDK request.
urlpatterns = [
    path("ofrep/v1/", include("flags.ofrep.urls")),
    path("api/<version>/", include("flags.evaluation.urls")),
    path("api/<version>/", include("flags.stream.urls")),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # Browsers ask for /favicon.ico when a page names no icon. The static URL is looked up per
    # request (lazily), as the storage may name the file by its hash.
    path(
        "favicon.ico",
        RedirectView.as_view(url=lazy(static, str)("flags/favicon.svg"), permanent=True),
    ),
    path("admin/", admin.site.urls),
    # Every API route answers with or without its trailing slash (the included URLconfs too).
    *slash_optional(
        [
            path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
            path(
                "api/docs/",
                SpectacularSwaggerView.as_view(url_name="api-schema"),
                name="api-docs",
            ),
        ]
    ),
    path("api/<version>/", include("accounts.api.urls")),
    path("api/<version>/", include("flags.api.urls")),
    # GraphQL beside REST (docs/graphql.md); GraphiQL for browsers in development only.
    path("graphql", FlagShipGraphQLView.as_view(schema=schema), name="graphql"),
    path("", include("flagship.health")),  # /healthz and /readyz
    # Prometheus, for the metrics token or allowed addresses only (flagship.metrics_http).
    path("metrics", metrics_view, name="metrics"),
]

# Errors outside DRF views: problem details under /api/, Django's own pages elsewhere.
handler404 = "flagship.errors.api_not_found"
handler500 = "flagship.errors.api_server_error"
