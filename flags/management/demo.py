"""The demo shop: people in every role, a project with realistic flags, and generated bulk flags.

Everything is written through the services, and only what is missing is created, so seeding twice
changes nothing (no duplicate history either). ``manage.py seed_demo`` is the front door.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group

from accounts import roles
from accounts.models import User

from .. import services
from ..models import Flag, Project, Segment, Tag
from ..services import FlagSpec

PROJECT_KEY = "demo"
PROJECT_NAME = "Demo shop"
GENERATED_PREFIX = "generated-"

Serve = dict[str, Any]


def variant(key: str) -> Serve:
    """Serve one variant."""
    return {"variant": key}


def split(*weights: tuple[str, int]) -> Serve:
    """Serve a weighted split; weights in percent."""
    return {"split": [{"variant": key, "weight": percent * 1000} for key, percent in weights]}


@dataclass(frozen=True)
class DemoUser:
    """A person to sign in as: one per role, plus a superuser."""

    username: str
    role: str | None
    superuser: bool = False

    @property
    def password_variable(self) -> str:
        """The environment variable that sets this user's password."""
        return f"FLAGSHIP_DEMO_{self.username.upper().replace('-', '_')}_PASSWORD"


USERS = (
    DemoUser("viewer", roles.VIEWER),
    DemoUser("editor", roles.EDITOR),
    DemoUser("release-manager", roles.RELEASE_MANAGER),
    DemoUser("administrator", roles.ADMINISTRATOR),
    DemoUser("admin", None, superuser=True),
)
SHARED_PASSWORD_VARIABLE = "FLAGSHIP_DEMO_PASSWORD"  # noqa: S105  # a variable's name, not a password


@dataclass(frozen=True)
class DemoRule:
    """A targeting rule: conditions, segment keys, an optional rollout in percent, a serve."""

    serve: Serve
    description: str = ""
    conditions: Sequence[dict[str, Any]] = ()
    segments: Sequence[str] = ()
    rollout_percent: int | None = None


@dataclass(frozen=True)
class DemoState:
    """A flag in one environment."""

    enabled: bool
    default_serve: Serve
    rules: Sequence[DemoRule] = ()
    prerequisites: Sequence[tuple[str, Sequence[str]]] = ()


@dataclass(frozen=True)
class DemoFlag:
    """A flag of the demo project and its state in each environment (absent: off)."""

    key: str
    name: str
    description: str
    kind: str = Flag.Kind.BOOLEAN
    variants: Sequence[tuple[str, Any]] | None = None
    lifecycle: str = Flag.Lifecycle.RELEASE
    tags: Sequence[str] = ()
    client_visible: bool = False
    states: dict[str, DemoState] = field(default_factory=dict)


TAGS = (
    ("checkout", "#0ea5e9"),
    ("payments", "#a855f7"),
    ("search", "#14b8a6"),
    ("growth", "#f97316"),
    ("ops", "#ef4444"),
)

SEGMENTS = (
    (
        "beta-testers",
        "Beta testers",
        "Our own staff and invited testers: everyone with an @example.com address.",
        [{"attribute": "email", "operator": "str_ends_with", "values": ["@example.com"]}],
    ),
    (
        "enterprise-customers",
        "Enterprise customers",
        "Accounts on the enterprise plan.",
        [{"attribute": "plan", "operator": "in", "values": ["enterprise"]}],
    ),
)

BETA_TESTERS = DemoRule(variant("on"), "Beta testers first", segments=["beta-testers"])
DACH = {"attribute": "country", "operator": "in", "values": ["DE", "AT", "CH"]}
STANDARD_CHECKOUT = {
    "maxItems": 50,
    "currency": "EUR",
    "guestCheckout": True,
    "paymentMethods": ["card", "paypal"],
}

FLAGS = (
    DemoFlag(
        key="new-checkout",
        name="New checkout",
        description="The one-page checkout replacing the three-step one.",
        tags=["checkout"],
        states={
            "development": DemoState(enabled=True, default_serve=variant("on")),
            "staging": DemoState(
                enabled=True,
                default_serve=variant("off"),
                rules=[
                    BETA_TESTERS,
                    DemoRule(variant("on"), "Half of everyone", rollout_percent=50),
                ],
            ),
            "production": DemoState(
                enabled=True,
                default_serve=variant("off"),
                rules=[
                    BETA_TESTERS,
                    DemoRule(variant("on"), "A quarter of everyone", rollout_percent=25),
                ],
            ),
        },
    ),
    DemoFlag(
        key="express-checkout",
        name="Express checkout",
        description="One-click buying for returning customers; builds on the new checkout.",
        tags=["checkout"],
        states={
            "development": DemoState(
                enabled=True, default_serve=variant("on"), prerequisites=[("new-checkout", ["on"])]
            ),
            "staging": DemoState(
                enabled=True, default_serve=variant("on"), prerequisites=[("new-checkout", ["on"])]
            ),
            "production": DemoState(
                enabled=True,
                default_serve=variant("off"),
                rules=[BETA_TESTERS],
                prerequisites=[("new-checkout", ["on"])],
            ),
        },
    ),
    DemoFlag(
        key="banner-text",
        name="Banner text",
        description="The promotion banner at the top of every page.",
        kind=Flag.Kind.STRING,
        variants=[
            ("none", ""),
            ("sale", "Winter sale: 20 % off everything"),
            ("sale-de", "Winterschlussverkauf: 20 % auf alles"),
        ],
        lifecycle=Flag.Lifecycle.PERMANENT,
        tags=["growth"],
        client_visible=True,
        states={
            "staging": DemoState(
                enabled=True,
                default_serve=variant("sale"),
                rules=[DemoRule(variant("sale-de"), "German-speaking", conditions=[DACH])],
            ),
            "production": DemoState(
                enabled=True,
                default_serve=variant("sale"),
                rules=[DemoRule(variant("sale-de"), "German-speaking", conditions=[DACH])],
            ),
        },
    ),
    DemoFlag(
        key="search-results-per-page",
        name="Search results per page",
        description="Does a longer result page sell more? 20 against 50 results.",
        kind=Flag.Kind.NUMBER,
        variants=[("ten", 10), ("twenty", 20), ("fifty", 50)],
        lifecycle=Flag.Lifecycle.EXPERIMENT,
        tags=["search", "growth"],
        states={
            "development": DemoState(enabled=True, default_serve=variant("fifty")),
            "staging": DemoState(enabled=True, default_serve=variant("twenty")),
            "production": DemoState(
                enabled=True, default_serve=split(("twenty", 50), ("fifty", 50))
            ),
        },
    ),
    DemoFlag(
        key="checkout-config",
        name="Checkout configuration",
        description="Limits and payment methods of the checkout, per customer group.",
        kind=Flag.Kind.JSON,
        variants=[
            ("standard", STANDARD_CHECKOUT),
            (
                "enterprise",
                {**STANDARD_CHECKOUT, "maxItems": 500, "paymentMethods": ["card", "invoice"]},
            ),
            ("legacy-app", {**STANDARD_CHECKOUT, "guestCheckout": False}),
        ],
        lifecycle=Flag.Lifecycle.PERMANENT,
        tags=["checkout", "payments"],
        states={
            environment: DemoState(
                enabled=True,
                default_serve=variant("standard"),
                rules=[
                    DemoRule(
                        variant("enterprise"), "Enterprise plan", segments=["enterprise-customers"]
                    ),
                    DemoRule(
                        variant("legacy-app"),
                        "Apps before 5.0 cannot do guest checkout",
                        conditions=[
                            {
                                "attribute": "appVersion",
                                "operator": "semver_lt",
                                "values": ["5.0.0"],
                            }
                        ],
                    ),
                ],
            )
            for environment in ("development", "staging", "production")
        },
    ),
    DemoFlag(
        key="payments-kill-switch",
        name="Payments",
        description="Kill switch: turn off to stop taking payments (the shop stays browsable).",
        lifecycle=Flag.Lifecycle.OPERATIONAL,
        tags=["payments", "ops"],
        states={
            environment: DemoState(enabled=True, default_serve=variant("on"))
            for environment in ("development", "staging", "production")
        },
    ),
    DemoFlag(
        key="dark-mode",
        name="Dark mode",
        description="The dark theme in the mobile apps.",
        tags=["growth"],
        client_visible=True,
        states={
            "development": DemoState(enabled=True, default_serve=variant("on")),
            "production": DemoState(
                enabled=True,
                default_serve=variant("off"),
                rules=[
                    DemoRule(
                        variant("on"),
                        "Mobile apps",
                        conditions=[
                            {
                                "attribute": "platform",
                                "operator": "in",
                                "values": ["ios", "android"],
                            }
                        ],
                    )
                ],
            ),
        },
    ),
)


@dataclass
class Report:
    """What a seed run did, in lines for people; passwords are kept apart and shown once."""

    lines: list[str] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        """Record one line."""
        self.lines.append(line)


def seed_users(report: Report) -> dict[str, User]:
    """Create the demo's people that are missing; never touch an existing one's password."""
    people: dict[str, User] = {}
    shared = os.environ.get(SHARED_PASSWORD_VARIABLE, "")
    for person in USERS:
        existing = User.objects.filter(username=person.username).first()
        if existing is not None:
            report.add(f"User {person.username} already exists (password unchanged).")
            people[person.username] = existing
            continue
        password = os.environ.get(person.password_variable, "") or shared
        source = (
            person.password_variable
            if os.environ.get(person.password_variable)
            else SHARED_PASSWORD_VARIABLE
        )
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        email = f"{person.username}@flagship.example"
        if person.superuser:
            user = User.objects.create_superuser(person.username, email, password)
        else:
            user = User.objects.create_user(person.username, email, password, is_staff=True)
            if person.role is not None:
                user.groups.add(Group.objects.get(name=person.role))
        people[person.username] = user
        role = person.role or "superuser"
        if generated:
            report.add(f"Created user {person.username} ({role}).")
            report.passwords.append(f"  {person.username:<16} {password}")
        else:
            report.add(f"Created user {person.username} ({role}), password from {source}.")
    return people


def seed_project(report: Report, owner: User | None) -> Project:
    """Create the demo project, its tags, segments and flags, each only if missing."""
    project = Project.objects.filter(key=PROJECT_KEY).first()
    if project is None:
        project = services.project_create(
            key=PROJECT_KEY,
            name=PROJECT_NAME,
            description="An online shop trying out a new checkout, with its kill switches.",
        )
        report.add(f"Created project {PROJECT_KEY} ({PROJECT_NAME}) with its environments.")
    else:
        report.add(f"Project {PROJECT_KEY} already exists.")
    tags = _seed_tags()
    segments = _seed_segments(project)
    created = 0
    for demo in FLAGS:
        if Flag.objects.filter(project=project, key=demo.key).exists():
            continue
        _seed_flag(project, demo, tags=tags, segments=segments, owner=owner)
        created += 1
    existing = len(FLAGS) - created
    report.add(f"Demo flags: {created} created, {existing} already existed.")
    return project


def _seed_tags() -> dict[str, Tag]:
    tags = {}
    for name, color in TAGS:
        tag = Tag.objects.filter(name__iexact=name).first()
        tags[name] = tag or services.tag_create(name=name, color=color)
    return tags


def _seed_segments(project: Project) -> dict[str, Segment]:
    segments = {}
    for key, name, description, conditions in SEGMENTS:
        segment = Segment.objects.filter(project=project, key=key).first()
        segments[key] = segment or services.segment_create(
            project=project, key=key, name=name, description=description, conditions=conditions
        )
    return segments


def _seed_flag(
    project: Project,
    demo: DemoFlag,
    *,
    tags: dict[str, Tag],
    segments: dict[str, Segment],
    owner: User | None,
) -> None:
    flag = services.flag_create(
        project=project,
        key=demo.key,
        name=demo.name,
        description=demo.description,
        kind=demo.kind,
        variants=demo.variants,
        lifecycle=demo.lifecycle,
        tags=[tags[name] for name in demo.tags],
        client_visible=demo.client_visible,
        owner=owner,
    )
    for state in flag.states.select_related("environment"):
        wanted = demo.states.get(state.environment.key)
        if wanted is None:
            continue
        for parent_key, parent_variants in wanted.prerequisites:
            services.prerequisite_add(
                state=state,
                parent=Flag.objects.get(project=project, key=parent_key),
                variants=parent_variants,
                actor=None,
            )
        for rule in wanted.rules:
            services.rule_create(
                state=state,
                serve=rule.serve,
                description=rule.description,
                conditions=rule.conditions,
                segments=[segments[key] for key in rule.segments],
                rollout=None if rule.rollout_percent is None else rule.rollout_percent * 1000,
            )
        services.flag_state_update(
            state=state, actor=None, enabled=wanted.enabled, default_serve=wanted.default_serve
        )


def generated_specs(count: int, existing: set[str]) -> list[FlagSpec]:
    """Specs of ``generated-00001`` … up to ``count``, leaving out keys that already exist.

    A mix of kinds and lifecycles, a third of them on, so lists and rulesets look realistic.
    """
    lifecycles = list(Flag.Lifecycle)
    specs = []
    for number in range(1, count + 1):
        key = f"{GENERATED_PREFIX}{number:05d}"
        if key in existing:
            continue
        enabled = number % 3 == 0
        kind, variants, served = _generated_kind(number)
        specs.append(
            FlagSpec(
                key=key,
                name=f"Generated flag {number}",
                description="Generated by seed_demo --flags to try FlagShip at scale.",
                kind=kind,
                variants=variants,
                lifecycle=lifecycles[number % len(lifecycles)],
                enabled=enabled,
                default_variant=served if enabled else None,
            )
        )
    return specs


def _generated_kind(number: int) -> tuple[str, list[tuple[str, Any]] | None, str]:
    """Seven in ten booleans, then one string, one number and one JSON flag."""
    match number % 10:
        case 7:
            return (
                Flag.Kind.STRING,
                [("control", "Buy now"), ("treatment", "Add to basket")],
                "treatment",
            )
        case 8:
            return Flag.Kind.NUMBER, [("low", 10), ("high", 100)], "high"
        case 9:
            return Flag.Kind.JSON, [("v1", {"version": 1}), ("v2", {"version": 2})], "v2"
        case _:
            return Flag.Kind.BOOLEAN, None, "on"


def seed_generated(
    project: Project,
    count: int,
    report: Report,
    start_progress: Callable[[int], Callable[[int], None]] | None = None,
) -> int:
    """Create the generated flags that are missing, in bulk; return how many were created.

    ``start_progress`` is given the number of flags to create and returns the progress callback.
    """
    existing = set(
        Flag.objects.filter(project=project, key__startswith=GENERATED_PREFIX).values_list(
            "key", flat=True
        )
    )
    specs = generated_specs(count, existing)
    if specs:
        progress = start_progress(len(specs)) if start_progress is not None else None
        services.flags_bulk_create(project=project, specs=specs, actor=None, progress=progress)
    report.add(f"Generated flags: {len(specs)} created, {count - len(specs)} already existed.")
    return len(specs)
