"""The servers' entry points load the project."""

from __future__ import annotations

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler


def test_wsgi__imported__a_django_application() -> None:
    from flagship.wsgi import application  # noqa: PLC0415  # importing is what is tested

    assert isinstance(application, WSGIHandler)


def test_asgi__imported__a_django_application() -> None:
    from flagship.asgi import application  # noqa: PLC0415  # importing is what is tested

    assert isinstance(application, ASGIHandler)
