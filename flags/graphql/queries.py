"""Queries: the management reads (people and admin tokens) and ``evaluate`` (also environment keys).

Each read asks for the model permission its REST endpoint asks for, scopes to the projects the
caller may see (FlagShip's own project only for administrators) and hands strawberry-django a
queryset, which the optimizer completes with the joins and prefetches the selection needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
import strawberry_django
from django.db.models import Q, QuerySet
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry_django.optimizer import optimize
from strawberry_django.pagination import OffsetPaginated, OffsetPaginationInput

from .. import capabilities, selectors
from ..api.serializers.history import AuditFilterSerializer
from ..history import feed as history
from ..models import Flag, FlagState, Project, Segment
from .access import require
from .errors import failure
from .evaluation import EvaluationType, evaluate
from .types import FlagStateType, FlagType, ProjectType, SegmentType


def not_found(what: str) -> Exception:
    """The error for something the caller named that does not exist (or is hidden from them)."""
    return failure("not_found", f"There is no {what}.", status=404)


def project_named(info: Info[Any, Any], key: str) -> Project:
    """The project ``key`` the caller may see."""
    user = info.context.user
    found = capabilities.visible(Project.objects.filter(key=key), user, "").first()
    if found is None:
        raise not_found(f"project {key!r}")
    return found


@strawberry.type(name="FieldChange")
class FieldChangeType:
    """One changed field: its old value (null when created) and its new one."""

    field: str
    old: JSON | None
    new: JSON | None


@strawberry.type(name="Change")
class ChangeType:
    """Who changed what, when (a row of the audit feed)."""

    id: int
    date: datetime
    type: str = strawberry.field(description="created, changed or deleted")
    user: str | None
    model: str
    object_id: int
    changes: list[FieldChangeType]


@strawberry.type(name="ChangePage")
class ChangePage:
    """One page of the audit feed, newest first."""

    results: list[ChangeType]
    offset: int
    limit: int
    has_more: bool = strawberry.field(description="Whether older changes follow this page.")


def _window(pagination: OffsetPaginationInput | None) -> tuple[int, int]:
    offset = pagination.offset if pagination and pagination.offset else 0
    limit = pagination.limit if pagination and isinstance(pagination.limit, int) else 50
    if offset < 0 or limit < 0:
        raise failure("invalid", "offset and limit must not be negative.")
    return offset, min(limit, 100)


@strawberry.type
class Query:
    """FlagShip's reads."""

    @strawberry_django.offset_paginated(
        OffsetPaginated[ProjectType], description="Projects you may see, by name."
    )
    def projects(self, info: Info[Any, Any]) -> QuerySet[Project]:
        """Projects (``view_project``), FlagShip's own last and for administrators only."""
        user = require(info, Project)
        return capabilities.visible(Project.objects.order_by("system", "name", "key"), user, "")

    @strawberry_django.field(description="A project by key (null when there is none).")
    def project(self, info: Info[Any, Any], key: str) -> ProjectType | None:
        """One project (``view_project``)."""
        user = require(info, Project)
        projects = capabilities.visible(Project.objects.filter(key=key), user, "")
        return optimize(projects, info).first()  # type: ignore[return-value]  # a Project

    @strawberry_django.offset_paginated(
        OffsetPaginated[FlagType], description="A project's flags, by key."
    )
    def flags(
        self,
        info: Info[Any, Any],
        project: str,
        archived: bool | None = None,
        tag: str | None = None,
        search: str | None = None,
    ) -> QuerySet[Flag]:
        """Flags (``view_flag``), filtered as REST's flag list filters them."""
        require(info, Flag)
        flags = Flag.objects.filter(project=project_named(info, project)).order_by("key")
        if archived is not None:
            flags = flags.filter(archived=archived)
        if tag:
            flags = flags.filter(tags__name__iexact=tag)
        if search:
            flags = flags.filter(
                Q(key__icontains=search)
                | Q(name__icontains=search)
                | Q(description__icontains=search)
            )
        return flags

    @strawberry_django.field(description="A flag by project and key (null when there is none).")
    def flag(self, info: Info[Any, Any], project: str, key: str) -> FlagType | None:
        """One flag (``view_flag``)."""
        require(info, Flag)
        flags = Flag.objects.filter(project=project_named(info, project), key=key)
        return optimize(flags, info).first()  # type: ignore[return-value]  # a Flag

    @strawberry_django.field(description="A flag in one environment (null when there is none).")
    def flag_state(
        self, info: Info[Any, Any], project: str, flag: str, environment: str
    ) -> FlagStateType | None:
        """One flag state (``view_flagstate``)."""
        require(info, FlagState)
        states = FlagState.objects.filter(
            flag__project=project_named(info, project),
            flag__key=flag,
            environment__key=environment,
        )
        return optimize(states, info).first()  # type: ignore[return-value]  # a FlagState

    @strawberry_django.offset_paginated(
        OffsetPaginated[SegmentType], description="A project's segments, by key."
    )
    def segments(self, info: Info[Any, Any], project: str) -> QuerySet[Segment]:
        """Segments (``view_segment``)."""
        require(info, Segment)
        return Segment.objects.filter(project=project_named(info, project)).order_by("key")

    @strawberry.field(description="Recent changes across every model, newest first.")
    def audit(
        self,
        info: Info[Any, Any],
        *,
        project: str | None = None,
        environment: str | None = None,
        flag: str | None = None,
        user: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        pagination: OffsetPaginationInput | None = None,
    ) -> ChangePage:
        """The audit feed (``view_flagstate``), with REST's filters."""
        caller = require(info, FlagState)
        offset, limit = _window(pagination)
        given = {
            "project": project,
            "environment": environment,
            "flag": flag,
            "user": user,
            "since": since,
            "until": until,
        }
        filters = AuditFilterSerializer(
            data={name: value for name, value in given.items() if value is not None}
        )
        filters.is_valid(raise_exception=True)  # REST's checks, and its field errors
        rows = selectors.audit_feed(caller, filters.validated_data)
        window = history.window(rows, offset, offset + limit + 1)
        changes = history.render(window[:limit])
        return ChangePage(
            results=[
                ChangeType(
                    id=change.id,
                    date=change.date,
                    type=change.type,
                    user=change.user,
                    model=change.model,
                    object_id=change.object_id,
                    changes=[FieldChangeType(**item) for item in change.changes],
                )
                for change in changes
            ],
            offset=offset,
            limit=limit,
            has_more=len(window) > limit,
        )

    evaluate: EvaluationType = strawberry.field(
        resolver=evaluate,
        description="Evaluate flags for a context: every flag, or those named in `flags`.",
    )
