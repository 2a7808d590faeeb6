"""The GraphQL object types: projects, environments, flags with their states, segments.

Each is a strawberry-django type over its model, so the optimizer turns a selection into one
query per level (``select_related`` / ``prefetch_related`` / ``only``), never one per row. Fields
are those of the REST API's output serializers, in GraphQL's camelCase; related objects named by
key in REST (a prerequisite's flag, a rule's segments, a state's off variant) are keys here too.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from strawberry.scalars import JSON

from ..models import (
    Condition,
    Environment,
    Flag,
    FlagState,
    Prerequisite,
    Project,
    Rule,
    Segment,
    Variant,
)
from .access import Requires


@strawberry_django.type(Environment, name="Environment")
class EnvironmentType:
    """An environment of a project (development, staging, production, ...)."""

    key: str
    name: str
    color: str
    order: int
    protected: bool
    required_approvals: int
    ruleset_version: int = strawberry_django.field(
        description="Bumped by every change that affects evaluation here."
    )
    project: ProjectType = strawberry_django.field(description="The project it belongs to.")


@strawberry_django.type(Project, name="Project")
class ProjectType:
    """A project: flags, segments and environments."""

    key: str
    name: str
    description: str
    reason_required: bool
    created_at: datetime
    updated_at: datetime

    environments: list[EnvironmentType] = strawberry_django.field(
        description="The project's environments, in column order (view_environment).",
        extensions=[Requires(Environment)],
    )


@strawberry_django.type(Condition, name="Condition")
class ConditionType:
    """One condition: ``attribute operator values``, maybe negated or case-insensitive."""

    attribute: str
    operator: str
    values: JSON
    negate: bool
    case_insensitive: bool


@strawberry_django.type(Rule, name="Rule")
class RuleType:
    """A targeting rule: its conditions and segments must all match; then it serves."""

    id: strawberry.ID
    description: str
    conditions: list[ConditionType]
    rollout: int | None = strawberry_django.field(
        description="Participation in thousandths of a percent (100000 = 100 %), or null."
    )
    bucket_by: str
    serve: JSON = strawberry_django.field(description="One variant, or a weighted split.")

    @strawberry_django.field(prefetch_related=["segments"])
    def segments(self) -> list[str]:
        """Keys of the segments a subject must be in."""
        return [segment.key for segment in self.segments.all()]


@strawberry_django.type(Prerequisite, name="Prerequisite")
class PrerequisiteType:
    """Another flag that must serve one of ``variants`` (or, with none, anything but off)."""

    variants: JSON

    @strawberry_django.field(select_related=["flag"], only=["flag__key"])
    def flag(self) -> str:
        """The parent flag's key."""
        return str(self.flag.key)


@strawberry_django.type(Variant, name="Variant")
class VariantType:
    """A value a flag can serve."""

    key: str
    name: str
    value: JSON
    order: int


@strawberry_django.type(FlagState, name="FlagState")
class FlagStateType:
    """A flag in one environment: its switch, rules, prerequisites and default serve."""

    enabled: bool
    default_serve: JSON
    version: int = strawberry_django.field(description="The state's version (If-Match in REST).")
    updated_at: datetime
    environment: EnvironmentType
    rules: list[RuleType]
    prerequisites: list[PrerequisiteType]

    @strawberry_django.field(select_related=["off_variant"], only=["off_variant__key"])
    def off_variant(self) -> str:
        """The variant served while the flag is off (or its prerequisites fail)."""
        return str(self.off_variant.key)

    @strawberry_django.field(select_related=["flag"], only=["flag__key"])
    def flag(self) -> str:
        """The flag's key."""
        return str(self.flag.key)


@strawberry_django.type(Flag, name="Flag")
class FlagType:
    """A feature flag of a project, with its variants and its state in every environment."""

    key: str
    name: str
    description: str
    kind: str
    lifecycle: str
    client_visible: bool
    archived: bool
    created_at: datetime
    updated_at: datetime
    project: ProjectType = strawberry_django.field(description="The project it belongs to.")
    variants: list[VariantType]

    @strawberry_django.field(prefetch_related=["tags"])
    def tags(self) -> list[str]:
        """The flag's tags, by name."""
        return sorted(tag.name for tag in self.tags.all())

    @strawberry_django.field(select_related=["owner"], only=["owner__username"])
    def owner(self) -> str | None:
        """The owner's username, if the flag has one."""
        owner = self.owner
        return None if owner is None else str(owner.username)

    states: list[FlagStateType] = strawberry_django.field(
        description="The flag's state in each environment (view_flagstate).",
        extensions=[Requires(FlagState)],
    )


@strawberry_django.type(Segment, name="Segment")
class SegmentType:
    """A reusable set of conditions rules can name."""

    key: str
    name: str
    description: str
    conditions: list[ConditionType]
    created_at: datetime
    updated_at: datetime
