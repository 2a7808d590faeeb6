"""Environment keys and admin tokens through the management API: secrets shown once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import ApiKey, User
from accounts.services import api_key_issue
from accounts.tests.factories import PASSWORD
from flags import services
from flags.models import Environment

KEYS = "/api/v1/projects/demo/environments/staging/keys/"


@pytest.fixture
def staging(db: None) -> Environment:
    """The staging environment of project ``demo`` (flags' fixtures are not shared here)."""
    return services.project_create(key="demo", name="Demo").environments.get(key="staging")


def signed_in(user: User) -> APIClient:
    """A client with ``user``'s session."""
    client = APIClient()
    client.login(username=user.username, password=PASSWORD)
    return client


def test_key_create__by_editor_in_staging__returns_secret_once(
    editor: User, staging: Environment
) -> None:
    """Given an Editor, when a staging server key is created, then its secret only in the 201."""
    # Given
    client = signed_in(editor)

    # When
    created = client.post(KEYS, {"name": "checkout", "kind": "server"}, format="json")
    listed = client.get(KEYS)

    # Then
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert keys.parse(secret) == ("server", created.json()["lookup"])
    assert ApiKey.objects.get().secret_hash == keys.digest(secret)
    assert listed.status_code == 200
    assert secret not in listed.content.decode()
    assert [row.get("secret") for row in listed.json()["results"]] == [None]


def test_key_create__admin_kind__is_400_on_kind(editor: User, staging: Environment) -> None:
    """Given an Editor, when an admin-kind key is asked of an environment, then 400 on kind."""
    # When
    response = signed_in(editor).post(KEYS, {"name": "x", "kind": "admin"}, format="json")

    # Then
    assert response.status_code == 400
    assert "kind" in str(response.json())
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("how", ["delete", "revoke"])
def test_key_revoke__then_used__is_401(how: str, editor: User, staging: Environment) -> None:
    """Given a server key, when revoked (DELETE or POST revoke), then it no longer authenticates."""
    # Given
    key, secret = api_key_issue(kind="server", name="svc", environment=staging)
    client = signed_in(editor)

    # When
    if how == "delete":
        response = client.delete(f"{KEYS}{key.lookup}/")
        assert response.status_code == 204
    else:
        response = client.post(f"{KEYS}{key.lookup}/revoke/")
        assert response.status_code == 200
        assert response.json()["revoked_at"] is not None

    # Then
    used = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert used.status_code == 401
    assert ApiKey.objects.get().revoked_at is not None


@pytest.mark.parametrize("count", [3, 30])
def test_key_list__3_or_30_keys__same_number_of_queries(
    count: int,
    editor: User,
    staging: Environment,
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    """Given 3 or 30 keys, when listed, then the same number of queries."""
    # Given
    for number in range(count):
        api_key_issue(kind="client", name=f"k{number}", environment=staging, actor=editor)
    client = signed_in(editor)

    # When / Then
    with django_assert_num_queries(8):
        response = client.get(KEYS)
    assert response.json()["count"] == count


def test_token_create__with_expiry__authenticates_as_owner_until_revoked(editor: User) -> None:
    """Given an Editor, when they issue a token, then it acts as them and dies on revoke."""
    # Given
    client = signed_in(editor)
    expires = (timezone.now() + timedelta(days=30)).isoformat()

    # When
    created = client.post(
        "/api/v1/me/tokens/", {"name": "ci", "expires_at": expires}, format="json"
    )
    secret = created.json()["secret"]
    as_token = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    revoked = client.delete(f"/api/v1/me/tokens/{created.json()['lookup']}/")
    after = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    # Then
    assert created.status_code == 201
    assert (created.json()["kind"], created.json()["environment"]) == ("admin", None)
    assert (as_token.status_code, as_token.json()["username"]) == (200, "editor")
    assert revoked.status_code == 204
    assert after.status_code == 401


def test_token_list__other_users_tokens__not_listed_or_revocable(
    editor: User, viewer: User
) -> None:
    """Given the viewer's token, when the editor lists or revokes it, then it is not theirs."""
    # Given
    key, _ = api_key_issue(kind="admin", name="mine", user=viewer)
    client = signed_in(editor)

    # When
    listed = client.get("/api/v1/me/tokens/")
    revoked = client.delete(f"/api/v1/me/tokens/{key.lookup}/")

    # Then
    assert listed.json()["results"] == []
    assert revoked.status_code == 404
    assert ApiKey.objects.get().revoked_at is None


def test_token_create__expiry_in_past__is_400_on_expires_at(editor: User) -> None:
    """Given an Editor, when a token would expire in the past, then 400 on expires_at."""
    # When
    response = signed_in(editor).post(
        "/api/v1/me/tokens/",
        {"name": "ci", "expires_at": "2000-01-01T00:00:00Z"},
        format="json",
    )

    # Then
    assert response.status_code == 400
    assert "expires_at" in str(response.json())
