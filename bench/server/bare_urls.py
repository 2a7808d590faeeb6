"""The bare ceiling's one route: ``GET /ceiling`` answers a constant small JSON body."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

BODY = b'{"ok": true}'


def constant(request: HttpRequest) -> HttpResponse:
    """Constant bytes, nothing else."""
    return HttpResponse(BODY, content_type="application/json")


def healthz(request: HttpRequest) -> HttpResponse:
    """For the benchmark's start-up wait (``wait_http``)."""
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns: list[URLPattern] = [path("ceiling", constant), path("healthz", healthz)]
