"""Seed a migrated FlagShip database for the live tests; print the credentials as JSON.

Run by the harness in a subprocess against the template database (``SQLITE_PATH``)::

    python -m live_tests.seed  # (with cwd /work/main and the environment the server gets)

It creates project ``live`` (development, staging, production) with three flags; in staging
``new-checkout`` (boolean, client-visible) is on and serves ``on``, ``banner-text`` (string,
client-visible) is on and serves ``sale``, ``server-only`` (boolean, hidden from client keys) is
off. An Administrator with an admin token, and a server and a client key of staging.
"""

from __future__ import annotations

import json
import sys

import django


def seed() -> dict[str, str]:
    """Create the data; return the secrets (shown once, so the harness keeps them)."""
    from django.contrib.auth.models import Group  # noqa: PLC0415  # after django.setup()

    from accounts import roles  # noqa: PLC0415
    from accounts.models import ApiKey, User  # noqa: PLC0415
    from accounts.services import api_key_issue  # noqa: PLC0415
    from flags import services  # noqa: PLC0415
    from flags.models import Flag, FlagState  # noqa: PLC0415

    project = services.project_create(key="live", name="Live")
    staging = project.environments.get(key="staging")
    checkout = services.flag_create(
        project=project, key="new-checkout", name="New checkout", client_visible=True
    )
    banner = services.flag_create(
        project=project,
        key="banner-text",
        name="Banner text",
        kind=Flag.Kind.STRING,
        variants=[("none", ""), ("sale", "Winter sale!")],
        client_visible=True,
    )
    services.flag_create(project=project, key="server-only", name="Server only")
    banner_state = FlagState.objects.get(flag=banner, environment=staging)
    services.flag_state_update(
        state=banner_state, actor=None, enabled=True, default_serve={"variant": "sale"}
    )
    state = FlagState.objects.get(flag=checkout, environment=staging)
    services.flag_state_update(
        state=state, actor=None, enabled=True, default_serve={"variant": "on"}
    )
    admin = User.objects.create_user(username="live-admin", password=None, is_staff=True)
    admin.groups.add(Group.objects.get(name=roles.ADMINISTRATOR))
    _, admin_token = api_key_issue(kind=ApiKey.Kind.ADMIN, name="live", user=admin)
    _, server_key = api_key_issue(kind=ApiKey.Kind.SERVER, name="live", environment=staging)
    _, client_key = api_key_issue(kind=ApiKey.Kind.CLIENT, name="live", environment=staging)
    return {"admin_token": admin_token, "server_key": server_key, "client_key": client_key}


def main() -> None:
    """Set Django up, seed, print the secrets."""
    django.setup()
    sys.stdout.write(json.dumps(seed()))


if __name__ == "__main__":
    main()
