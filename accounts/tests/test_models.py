"""FlagShip's user model: the swappable custom user, how people are named, roles through groups."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model

from accounts import roles
from accounts.models import User
from accounts.tests.factories import PASSWORD, make_user


def test_user_model__configured__is_accounts_user() -> None:
    # Given the settings
    # When the user model is resolved
    # Then it is FlagShip's own (custom from the first migration)
    assert settings.AUTH_USER_MODEL == "accounts.User"
    assert get_user_model() is User


def test_user_str__with_full_name__is_the_full_name(db: None) -> None:
    # Given a user with a first and last name
    user = make_user(username="ada")
    user.first_name, user.last_name = "Ada", "Lovelace"
    # When shown
    # Then the full name is used
    assert str(user) == "Ada Lovelace"


def test_user_str__without_name__is_the_username(db: None) -> None:
    # Given a user without a name
    user = make_user(username="ada")
    # When shown
    # Then the username is used
    assert str(user) == "ada"


def test_make_user__with_role__in_that_group_only_and_can_sign_in(db: None) -> None:
    # Given a user made as an editor
    user = make_user(username="erin", role=roles.EDITOR)
    # When their groups are read and they sign in with the test password
    # Then they are in the Editor group only, staff, and the password works (it is stored hashed)
    assert list(user.groups.values_list("name", flat=True)) == ["Editor"]
    assert user.is_staff is True
    assert authenticate(username="erin", password=PASSWORD) == user
    assert user.password != PASSWORD


def test_user__verbose_names__read_as_people_say_them() -> None:
    # Given the user model
    # When its names are read
    # Then they are lower-case words, as the admin expects
    assert (User._meta.verbose_name, User._meta.verbose_name_plural) == ("user", "users")
