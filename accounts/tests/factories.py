"""Test data for people: users in each role.

Plain typed functions rather than factory_boy: factory_boy is untyped, and under mypy --strict
every call site would need an ignore.
"""

from __future__ import annotations

from itertools import count

from django.contrib.auth.models import Group

from accounts.models import User

PASSWORD = "correct-horse-battery-staple"  # noqa: S105  # a test-only password
_numbers = count(1)


def make_user(*, username: str | None = None, role: str | None = None, staff: bool = True) -> User:
    """Create a user with the test password, in ``role``'s group when given."""
    name = username or f"user{next(_numbers)}"
    user = User.objects.create_user(
        username=name, email=f"{name}@example.com", password=PASSWORD, is_staff=staff
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
