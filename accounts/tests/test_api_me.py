"""The current user endpoint."""

from __future__ import annotations

from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD


def test_me__release_manager__role_and_permissions_that_matter(release_manager: User) -> None:
    """Given a Release manager, when they ask who they are, then their role and permissions."""
    # Given
    client = APIClient()
    client.login(username=release_manager.username, password=PASSWORD)

    # When
    response = client.get("/api/v1/me/")

    # Then
    assert response.status_code == 200
    assert response["API-Version"] == "v1"
    assert response.json() == {
        "username": "release",
        "email": "release@example.com",
        "first_name": "",
        "last_name": "",
        "roles": ["Release manager"],
        "permissions": [
            "flags.view_flag",
            "flags.add_flag",
            "flags.change_flag",
            "flags.change_flagstate",
            "flags.change_protected_environment",
            "flags.add_segment",
            "flags.change_segment",
            "flags.delete_segment",
            "flags.add_tag",
        ],
    }


def test_me__anonymous__is_401() -> None:
    """Given no credentials, when /me/ is asked, then 401."""
    # When
    response = APIClient().get("/api/v1/me/")

    # Then
    assert response.status_code == 401
