"""The admin's people and API keys pages: issue once, revoke, and who may."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import keys
from accounts.models import ApiKey, User
from accounts.tests.factories import PASSWORD
from flags import services as flag_services
from flags.models import Environment


@pytest.fixture
def staging(db: None) -> Environment:
    """The staging environment of a fresh project."""
    project = flag_services.project_create(key="shop", name="Shop")
    return project.environments.get(key="staging")


def _client(user: User) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_api_key_admin__administrator_issues__secret_shown_once_and_stored_hashed(
    administrator: User, staging: Environment
) -> None:
    # Given an Administrator on the add page
    client = _client(administrator)
    # When they issue a server key for staging
    response = client.post(
        reverse("admin:accounts_apikey_add"),
        {"kind": "server", "name": "checkout-service", "environment": staging.pk},
        follow=True,
    )
    # Then the secret is shown once, works as a key, and only its hash is stored
    assert response.status_code == 200
    shown = re.search(r"fss_[A-Za-z0-9]{44}", response.content.decode())
    assert shown is not None
    key = ApiKey.objects.get(name="checkout-service")
    assert key.secret_hash == keys.digest(shown.group(0))
    assert shown.group(0) not in str(ApiKey.objects.values_list().get(pk=key.pk))
    assert key.created_by == administrator
    again = client.get(reverse("admin:accounts_apikey_change", args=[key.pk]))
    assert shown.group(0) not in again.content.decode()


@pytest.mark.django_db
def test_api_key_admin__revoke_action__revokes_through_the_service(
    administrator: User, staging: Environment
) -> None:
    from accounts.services import api_key_issue  # noqa: PLC0415  # keeps the import near its use

    key, _ = api_key_issue(kind="client", name="web", environment=staging, actor=administrator)
    response = _client(administrator).post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.history.first().history_user == administrator


@pytest.mark.django_db
def test_api_key_admin__editor__forbidden(editor: User) -> None:
    response = _client(editor).get(reverse("admin:accounts_apikey_changelist"))
    assert response.status_code == 403


@pytest.mark.django_db
def test_user_admin__administrator__lists_users_with_roles(
    administrator: User, viewer: User
) -> None:
    response = _client(administrator).get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 200
    assert "Viewer" in response.content.decode()
