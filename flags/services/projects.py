"""Writes to projects, environments and tags."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .. import documents
from ..delivery.changes import Kind, fields
from ..models import Environment, Flag, FlagState, Project, Tag
from .common import announce, delete, differs_from_stored, save

PROJECT_FIELDS = ("key", "name", "description", "reason_required")
ENVIRONMENT_FIELDS = (
    "key",
    "name",
    "color",
    "order",
    "protected",
    "required_approvals",
    "allow_self_approval",
)
TAG_FIELDS = ("name", "color")

DEFAULT_ENVIRONMENTS: tuple[tuple[str, str, bool, str], ...] = (
    ("development", "Development", False, "#22c55e"),
    ("staging", "Staging", False, "#f59e0b"),
    ("production", "Production", True, "#ef4444"),
)


@transaction.atomic
def project_create(
    *,
    key: str,
    name: str,
    description: str = "",
    reason_required: bool = False,
    actor: Any | None = None,
    environments: tuple[tuple[str, str, bool, str], ...] = DEFAULT_ENVIRONMENTS,
) -> Project:
    """Create a project with its environments (development, staging, protected production)."""
    project = Project(key=key, name=name, description=description, reason_required=reason_required)
    save(project, actor)
    announce(
        Kind.PROJECT_CREATED,
        actor=actor,
        project_id=project.pk,
        after=fields(project, PROJECT_FIELDS),
    )
    for order, (env_key, env_name, protected, color) in enumerate(environments):
        environment_create(
            project=project,
            key=env_key,
            name=env_name,
            protected=protected,
            color=color,
            order=order,
            actor=actor,
        )
    return project


@transaction.atomic
def project_update(
    *,
    project: Project,
    actor: Any | None,
    name: str | None = None,
    description: str | None = None,
    reason_required: bool | None = None,
) -> Project:
    """Rename or describe a project, or require reasons in its protected environments."""
    before = fields(Project.objects.get(pk=project.pk), PROJECT_FIELDS)
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    if reason_required is not None:
        project.reason_required = reason_required
    if save(project, actor):
        announce(
            Kind.PROJECT_UPDATED,
            actor=actor,
            project_id=project.pk,
            before=before,
            after=fields(project, PROJECT_FIELDS),
        )
    return project


@transaction.atomic
def environment_create(
    *,
    project: Project,
    key: str,
    name: str,
    protected: bool = False,
    color: str = "#6b7280",
    order: int | None = None,
    required_approvals: int = 0,
    allow_self_approval: bool = False,
    actor: Any | None = None,
) -> Environment:
    """Add an environment; every flag of the project gets a state there, switched off.

    ``required_approvals`` above 0 (a protected environment only) makes its changes change
    requests from the start.
    """
    if order is None:
        last = project.environments.order_by("-order").values_list("order", flat=True).first()
        order = 0 if last is None else last + 1
    environment = Environment(
        project=project,
        key=key,
        name=name,
        protected=protected,
        color=color,
        order=order,
        required_approvals=required_approvals,
        allow_self_approval=allow_self_approval,
    )
    save(environment, actor)
    for flag in Flag.objects.filter(project=project).prefetch_related("variants"):
        state = initial_state(flag, environment)
        save(state, actor, validate=False)
    announce(
        Kind.ENVIRONMENT_CREATED,
        actor=actor,
        project_id=project.pk,
        rulesets=[environment.pk],
        after=fields(environment, ENVIRONMENT_FIELDS),
    )
    return environment


def initial_state(flag: Flag, environment: Environment) -> FlagState:
    """A new, switched-off state: it serves the off variant (or the first variant) to everyone."""
    variants = list(flag.variants.all())
    off = next((variant for variant in variants if variant.key == "off"), variants[0])
    return FlagState(
        flag=flag,
        environment=environment,
        enabled=False,
        off_variant=off,
        default_serve=documents.variant_serve(off.key),
    )


@transaction.atomic
def environment_update(
    *,
    environment: Environment,
    actor: Any | None,
    name: str | None = None,
    color: str | None = None,
    order: int | None = None,
    protected: bool | None = None,
    required_approvals: int | None = None,
    allow_self_approval: bool | None = None,
) -> Environment:
    """Change an environment's presentation, protection or approvals (its key never changes).

    The row is re-read under a lock and saved without ``ruleset_version``, so a version bump
    committed meanwhile is never written back to an older number.
    """
    locked = Environment.objects.select_for_update().get(pk=environment.pk)
    before = fields(locked, ENVIRONMENT_FIELDS)
    changed = []
    for field, value in (
        ("name", name),
        ("color", color),
        ("order", order),
        ("protected", protected),
        ("required_approvals", required_approvals),
        ("allow_self_approval", allow_self_approval),
    ):
        if value is not None:
            setattr(locked, field, value)
            changed.append(field)
    locked.full_clean()
    if not differs_from_stored(locked):
        return locked
    if actor is not None and getattr(actor, "is_authenticated", False):
        locked._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
    locked.save(update_fields=changed or None)
    announce(
        Kind.ENVIRONMENT_UPDATED,
        actor=actor,
        project_id=locked.project_id,
        environments=[locked.pk],
        before=before,
        after=fields(locked, ENVIRONMENT_FIELDS),
    )
    return locked


@transaction.atomic
def tag_create(*, name: str, color: str = "#64748b", actor: Any | None = None) -> Tag:
    """Create a tag."""
    tag = Tag(name=name, color=color)
    save(tag, actor)
    announce(Kind.TAG_CHANGED, actor=actor, project_id=None, after=fields(tag, TAG_FIELDS))
    return tag


@transaction.atomic
def tag_update(
    *, tag: Tag, actor: Any | None, name: str | None = None, color: str | None = None
) -> Tag:
    """Rename or recolour a tag. Tags are not in rulesets: no version moves."""
    before = fields(Tag.objects.get(pk=tag.pk), TAG_FIELDS)
    if name is not None:
        tag.name = name
    if color is not None:
        tag.color = color
    if save(tag, actor):
        announce(
            Kind.TAG_CHANGED,
            actor=actor,
            project_id=None,
            before=before,
            after=fields(tag, TAG_FIELDS),
        )
    return tag


@transaction.atomic
def tag_delete(*, tag: Tag, actor: Any | None) -> None:
    """Delete a tag (flags carrying it lose it). Tags are not in rulesets: no version moves."""
    before = fields(tag, TAG_FIELDS)
    delete(tag, actor)
    announce(Kind.TAG_CHANGED, actor=actor, project_id=None, before=before)
