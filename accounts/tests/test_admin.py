"""The admin's people and API keys pages: issue once, revoke, and who may."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts import keys
from accounts.models import ApiKey, User
from accounts.services import api_key_issue
from accounts.tests.factories import PASSWORD
from flags import services as flag_services
from flags.models import Environment
from flags.tests.admin_pages import attributes, find_all, page, text
from flags.tests.html_forms import FORM_CONTENT_TYPE, encoded, submission


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


# --- Issuing a key whose scope does not fit its kind -----------------------------------------


def _shown_errors(response: Any) -> dict[str, list[str]]:
    """The errors the page shows: by the field whose row they are in, "above" for the form's own."""
    shown: dict[str, list[str]] = {}
    for element, ancestors in find_all(page(response), "ul"):
        classes = str(attributes(element).get("class") or "").split()
        if "errorlist" not in classes:
            continue
        rows = [
            name.removeprefix("field-")
            for ancestor in ancestors
            for name in str(attributes(ancestor).get("class") or "").split()
            if name.startswith("field-")
        ]
        place = rows[-1] if rows and "nonfield" not in classes else "above"
        shown.setdefault(place, []).extend(text(item) for item, _ in find_all(element, "li"))
    return shown


@pytest.mark.django_db
def test_api_key_admin__server_key_with_a_user__errors_next_to_environment_and_user(
    administrator: User, staging: Environment
) -> None:
    # Given an Administrator on the add page
    client = _client(administrator)
    # When they issue a server key with a user instead of an environment
    response = client.post(
        reverse("admin:accounts_apikey_add"),
        {"kind": "server", "name": "checkout-service", "user": administrator.pk},
    )
    # Then the form comes back with an error in words next to each field to fix, none above it,
    # no database constraint name on the page, and no key stored
    assert response.status_code == 200
    assert _shown_errors(response) == {
        "environment": ["Choose the environment this server key evaluates in."],
        "user": [
            "A server key belongs to its environment, not to a user: leave this empty "
            "(only admin tokens have a user)."
        ],
    }
    assert "api_key_scope_matches_kind" not in response.content.decode()
    assert ApiKey.objects.count() == 0


@pytest.mark.django_db
def test_api_key_admin__admin_token_with_an_environment__errors_next_to_user_and_environment(
    administrator: User, staging: Environment
) -> None:
    # Given an Administrator on the add page
    client = _client(administrator)
    # When they issue an admin token for an environment instead of a user
    response = client.post(
        reverse("admin:accounts_apikey_add"),
        {"kind": "admin", "name": "ci", "environment": staging.pk},
    )
    # Then the errors are next to the user and the environment, and no key is stored
    assert response.status_code == 200
    assert _shown_errors(response) == {
        "user": ["Choose the user this admin token acts as."],
        "environment": ["An admin token acts as its user in every environment: leave this empty."],
    }
    assert ApiKey.objects.count() == 0


@pytest.mark.django_db
def test_api_key_issue__client_key_with_environment_and_user__refused_on_user(
    administrator: User, staging: Environment
) -> None:
    # Given a client key asked for with both an environment and a user
    # When the service issues it
    with pytest.raises(ValidationError) as refused:
        api_key_issue(kind="client", name="web", environment=staging, user=administrator)
    # Then it is refused next to the user, and nothing is stored
    assert refused.value.message_dict == {
        "user": [
            "A client key belongs to its environment, not to a user: leave this empty "
            "(only admin tokens have a user)."
        ]
    }
    assert ApiKey.objects.count() == 0


# --- A user's change form, saved unchanged ---------------------------------------------------


@pytest.mark.django_db
def test_user_admin__change_form_saved_unchanged__stored_user_unchanged(
    administrator: User, viewer: User
) -> None:
    # Given a user who joined and last signed in at times with microseconds
    User.objects.filter(pk=viewer.pk).update(
        last_login=datetime(2026, 11, 3, 9, 15, 42, 123456, tzinfo=UTC),
        date_joined=datetime(2026, 1, 20, 17, 5, 9, 654321, tzinfo=UTC),
    )
    before = User.objects.filter(pk=viewer.pk).values().get()
    groups_before = list(viewer.groups.values_list("name", flat=True))
    client = _client(administrator)
    url = reverse("admin:accounts_user_change", args=[viewer.pk])
    page = client.get(url)
    # When the change form is sent back exactly as a browser would send it, with "Save"
    entries = submission(page.content.decode(), "user_form", "_save")
    response = client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)
    # Then it is saved, and the stored user (dates to the microsecond, groups) is unchanged
    assert response.status_code == 302
    assert User.objects.filter(pk=viewer.pk).values().get() == before
    assert list(viewer.groups.values_list("name", flat=True)) == groups_before


@pytest.mark.django_db
def test_user_admin__history_page__answers(administrator: User, viewer: User) -> None:
    # Given an Administrator
    client = _client(administrator)
    # When they open a user's History page
    response = client.get(reverse("admin:accounts_user_history", args=[viewer.pk]))
    # Then it answers (Django's log of admin changes; users have no simple-history records)
    assert response.status_code == 200


@pytest.mark.django_db
def test_api_key_admin__rename__through_the_service_with_history_and_event(
    administrator: User, staging: Environment
) -> None:
    # Given a key and its change page as a browser submits it
    key, _ = api_key_issue(kind="server", name="checkout", environment=staging, actor=administrator)
    client = _client(administrator)
    url = reverse("admin:accounts_apikey_change", args=[key.pk])
    data = [
        (field, "payments" if field == "name" else value)
        for field, value in submission(client.get(url).content.decode(), "apikey_form", "_save")
    ]
    # When the Administrator renames it
    response = client.post(url, encoded(data), content_type=FORM_CONTENT_TYPE)
    # Then the stored name changed, a history row names who, and one api_key.renamed event says
    # from what to what
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "payments"
    latest = key.history.latest()
    assert (latest.name, latest.history_user) == ("payments", administrator)
    from flags.models import ChangeEvent  # noqa: PLC0415

    event = ChangeEvent.objects.get(kind="api_key.renamed")
    assert event.actor_name == administrator.username
    assert isinstance(event.after, dict)
    assert event.after["name"] == "payments"
