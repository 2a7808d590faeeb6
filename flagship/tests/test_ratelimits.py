"""Rate limits: admin sign-in per address, management API per user."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services as account_services
from accounts.models import User
from accounts.tests.factories import PASSWORD
from flagship.errors import PROBLEM_CONTENT_TYPE
from flagship.ratelimits import ManagementRateThrottle

pytestmark = pytest.mark.urls("flagship.tests.test_ratelimits")


class Management(APIView):
    def get(self, request: Request, version: str) -> Response:
        return Response({"ok": True})


urlpatterns: list[URLPattern | URLResolver] = [
    path("api/<version>/test/management/", Management.as_view()),
    path("", include("flagship.urls")),
]


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    cache.clear()


def test_admin_login__rate_limited_per_address(client: Client, editor: User, settings: Any) -> None:
    # Given a limit of two sign-in attempts a minute
    settings.FLAGSHIP_ADMIN_LOGIN_RATE = "2/m"
    form = {"username": "editor", "password": "wrong", "next": "/admin/"}
    assert client.post("/admin/login/", form).status_code == 200
    assert client.post("/admin/login/", form).status_code == 200
    # When a third attempt comes, even with the right password
    response = client.post("/admin/login/", {**form, "password": PASSWORD})
    # Then it is refused with Retry-After
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    # And the sign-in page itself still loads
    assert client.get("/admin/login/").status_code == 200


def test_admin_login__limit_off__never_refused(client: Client, editor: User, settings: Any) -> None:
    settings.FLAGSHIP_ADMIN_LOGIN_RATE = ""
    form = {"username": "editor", "password": "wrong"}
    assert all(client.post("/admin/login/", form).status_code == 200 for _ in range(5))


def test_management__rate_limited_per_user(
    client: Client, editor: User, viewer: User, settings: Any
) -> None:
    # Given a limit of two calls a minute per user
    settings.FLAGSHIP_MANAGEMENT_RATE = "2/m"
    client.force_login(editor)
    assert client.get("/api/v1/test/management/").status_code == 200
    assert client.get("/api/v1/test/management/").status_code == 200
    # When the user makes a third
    response = client.get("/api/v1/test/management/")
    # Then it is refused as a problem with Retry-After
    assert response.status_code == 429
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # And another user is not affected
    client.force_login(viewer)
    assert client.get("/api/v1/test/management/").status_code == 200


def test_management__admin_token_counts_as_its_owner(
    client: Client, editor: User, settings: Any
) -> None:
    settings.FLAGSHIP_MANAGEMENT_RATE = "1/m"
    _, secret = account_services.api_key_issue(kind="admin", name="ci", user=editor)
    headers = {"X-API-Key": secret}
    assert client.get("/api/v1/test/management/", headers=headers).status_code == 200
    assert client.get("/api/v1/test/management/", headers=headers).status_code == 429


def test_management_throttle__exempts_evaluation_and_anonymous(rf: Any, editor: User) -> None:
    throttle = ManagementRateThrottle()
    evaluation = Request(rf.get("/api/v1/evaluate"))
    evaluation.user = editor
    assert throttle.key(evaluation) is None
    anonymous = Request(rf.get("/api/v1/projects/"))
    assert throttle.key(anonymous) is None
    ofrep = Request(rf.get("/ofrep/v1/evaluate/flags"))
    ofrep.user = editor
    assert throttle.key(ofrep) is None


def test_management_throttle__environment_key_exempt(rf: Any, editor: User) -> None:
    request = Request(rf.get("/api/v1/projects/"))
    request.user = editor
    request.auth = type("Key", (), {"kind": "server"})()
    assert ManagementRateThrottle().key(request) is None
