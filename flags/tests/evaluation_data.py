"""Shared data for the evaluation, OFREP and OpenFeature SDK tests.

``build_flags`` fills the staging environment with one flag of each kind and state the endpoints
must answer differently; ``issue`` gives a key's secret.
"""

from __future__ import annotations

from accounts.models import ApiKey, User
from accounts.services import api_key_issue
from flags import services
from flags.models import Environment, Flag, FlagState, Project

VISIBLE = ("new-checkout", "discount", "max-items", "theme")


def state(flag: Flag, environment: Environment) -> FlagState:
    """A flag's state in an environment."""
    return flag.states.get(environment=environment)


def serve(flag: Flag, environment: Environment, variant: str, *, enabled: bool = True) -> None:
    """Switch a flag on (or off) with a default serve."""
    services.flag_state_update(
        state=state(flag, environment),
        actor=None,
        enabled=enabled,
        default_serve={"variant": variant},
    )


def build_flags(project: Project, environment: Environment) -> dict[str, Flag]:
    """One flag of each kind, a disabled one and one whose prerequisite fails.

    - ``new-checkout`` (boolean, client-visible): on for country DE (rule), else off (DEFAULT).
    - ``banner-text`` (string, server only): "Winter sale!" for everyone (STATIC).
    - ``discount`` (number, client-visible): 0.5 (STATIC). ``max-items`` (number): 10 (STATIC).
    - ``theme`` (json, client-visible): an object (STATIC).
    - ``legacy`` (boolean): disabled, so DISABLED with its off variant.
    - ``child`` (boolean): serves on, but needs ``legacy`` on: PREREQUISITE_FAILED, off.
    """
    flags = {
        "new-checkout": services.flag_create(
            project=project, key="new-checkout", name="New checkout", client_visible=True
        ),
        "banner-text": services.flag_create(
            project=project,
            key="banner-text",
            name="Banner text",
            kind=Flag.Kind.STRING,
            variants=[("none", ""), ("sale", "Winter sale!")],
        ),
        "discount": services.flag_create(
            project=project,
            key="discount",
            name="Discount",
            kind=Flag.Kind.NUMBER,
            variants=[("none", 0), ("half", 0.5)],
            client_visible=True,
        ),
        "max-items": services.flag_create(
            project=project,
            key="max-items",
            name="Max items",
            kind=Flag.Kind.NUMBER,
            variants=[("five", 5), ("ten", 10)],
            client_visible=True,
        ),
        "theme": services.flag_create(
            project=project,
            key="theme",
            name="Theme",
            kind=Flag.Kind.JSON,
            variants=[("light", {"bg": "#fff"}), ("dark", {"bg": "#000", "contrast": 1.5})],
            client_visible=True,
        ),
        "legacy": services.flag_create(project=project, key="legacy", name="Legacy"),
        "child": services.flag_create(project=project, key="child", name="Child"),
    }
    serve(flags["new-checkout"], environment, "off")
    services.rule_create(
        state=state(flags["new-checkout"], environment),
        serve={"variant": "on"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
    )
    serve(flags["banner-text"], environment, "sale")
    serve(flags["discount"], environment, "half")
    serve(flags["max-items"], environment, "ten")
    serve(flags["theme"], environment, "dark")
    serve(flags["child"], environment, "on")
    services.prerequisite_add(
        state=state(flags["child"], environment), parent=flags["legacy"], actor=None
    )
    return flags


def issue(environment: Environment, kind: str = ApiKey.Kind.SERVER) -> str:
    """Issue an environment key; return its secret."""
    _key, secret = api_key_issue(kind=kind, name=f"{kind} key", environment=environment)
    return secret


def issue_admin(user: User) -> str:
    """Issue an admin token for a user; return its secret."""
    _key, secret = api_key_issue(kind=ApiKey.Kind.ADMIN, name="automation", user=user)
    return secret
