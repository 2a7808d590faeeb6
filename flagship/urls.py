"""FlagShip's URLs: the admin is the product manager's workplace."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "FlagShip"
admin.site.site_title = "FlagShip"
admin.site.index_title = "Feature flags"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
]
