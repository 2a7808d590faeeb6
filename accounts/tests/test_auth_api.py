"""JWT endpoints under /api/v1/auth/: obtain, refresh (rotation + blacklist), verify, logout."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flagship.errors import PROBLEM_CONTENT_TYPE

# The auth routes as accounts/api/urls.py includes them, ahead of the project's (so these tests
# do not depend on that include being in place).
pytestmark = pytest.mark.urls("accounts.tests.test_auth_api")
urlpatterns: list[URLPattern | URLResolver] = [
    path("api/<version>/auth/", include("accounts.api.auth_urls")),
    path("", include("flagship.urls")),
]
AUTH = "/api/v1/auth"


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    cache.clear()


def post(client: Client, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data, content_type="application/json")


def obtain(client: Client, user: User) -> dict[str, str]:
    response = post(client, f"{AUTH}/token/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    tokens: dict[str, str] = response.json()
    return tokens


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["code"] == code


def test_obtain__valid_credentials__access_and_refresh(client: Client, editor: User) -> None:
    tokens = obtain(client, editor)
    assert set(tokens) == {"access", "refresh"}


def test_obtain__wrong_password__401_no_active_account(client: Client, editor: User) -> None:
    response = post(client, f"{AUTH}/token/", {"username": "editor", "password": "wrong"})
    assert_problem(response, 401, "no_active_account")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_obtain__missing_fields__400_field_errors(client: Client, db: None) -> None:
    response = post(client, f"{AUTH}/token/", {})
    assert_problem(response, 400, "invalid")
    assert {error["field"] for error in response.json()["errors"]} == {"username", "password"}


def test_refresh__rotates_and_blacklists_the_old_token(client: Client, editor: User) -> None:
    # Given a refresh token
    tokens = obtain(client, editor)
    # When it is exchanged
    response = post(client, f"{AUTH}/token/refresh/", {"refresh": tokens["refresh"]})
    # Then a new pair comes back
    assert response.status_code == 200
    rotated = response.json()
    assert set(rotated) == {"access", "refresh"}
    assert rotated["refresh"] != tokens["refresh"]
    # And the old refresh token no longer works
    again = post(client, f"{AUTH}/token/refresh/", {"refresh": tokens["refresh"]})
    assert_problem(again, 401, "token_not_valid")
    # While the new one does
    assert (
        post(client, f"{AUTH}/token/refresh/", {"refresh": rotated["refresh"]}).status_code == 200
    )


def test_verify__valid_and_invalid(client: Client, editor: User) -> None:
    tokens = obtain(client, editor)
    assert post(client, f"{AUTH}/token/verify/", {"token": tokens["access"]}).status_code == 200
    response = post(client, f"{AUTH}/token/verify/", {"token": "garbage"})
    assert_problem(response, 401, "token_not_valid")


def test_logout__blacklists_the_refresh_token(client: Client, editor: User) -> None:
    tokens = obtain(client, editor)
    response = post(client, f"{AUTH}/logout/", {"refresh": tokens["refresh"]})
    assert response.status_code == 204
    assert response.content == b""
    again = post(client, f"{AUTH}/token/refresh/", {"refresh": tokens["refresh"]})
    assert_problem(again, 401, "token_not_valid")


def test_logout__invalid_token__401(client: Client, db: None) -> None:
    assert_problem(post(client, f"{AUTH}/logout/", {"refresh": "x"}), 401, "token_not_valid")


def test_access_token__authenticates_api_calls(client: Client, editor: User) -> None:
    # The token endpoints need no credentials, so check the access token on verify's sibling:
    # a JWT-authenticated request to an unknown route is still a 404, not a 401.
    tokens = obtain(client, editor)
    response = client.get(
        "/api/v1/no-such-thing/", headers={"Authorization": f"Bearer {tokens['access']}"}
    )
    assert_problem(response, 404, "not_found")


def test_token__rate_limited_per_address(client: Client, editor: User, settings: Any) -> None:
    # Given a limit of two calls a minute
    settings.FLAGSHIP_AUTH_RATE = "2/m"
    body = {"username": "editor", "password": "wrong"}
    assert post(client, f"{AUTH}/token/", body).status_code == 401
    assert post(client, f"{AUTH}/token/", body).status_code == 401
    # When a third comes from the same address
    response = post(client, f"{AUTH}/token/", body)
    # Then it is refused with a whole number of seconds to wait
    assert_problem(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    # And another address is not affected
    other = client.post(
        f"{AUTH}/token/", body, content_type="application/json", REMOTE_ADDR="10.0.0.9"
    )
    assert other.status_code == 401
