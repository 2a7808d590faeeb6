"""Reads used by the admin: each returns what a page needs in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, QuerySet

from . import capabilities
from .errors import NotFoundError
from .history import feed as history
from .models import (
    Condition,
    Environment,
    Flag,
    FlagState,
    Prerequisite,
    Project,
    Rule,
    Segment,
    Tag,
    Variant,
)
from .words import StateSummary, state_summary


def project_list() -> QuerySet[Project]:
    """Every project, by name; FlagShip's own project last (never the default one)."""
    return Project.objects.order_by("system", "name", "key")


def project_get(key: str | None, among: QuerySet[Project] | None = None) -> Project | None:
    """The project with ``key``, else the first project by name (None when there is none).

    ``among`` narrows the choice (the projects a person may see); every project by default.
    """
    projects = project_list() if among is None else among
    if key:
        chosen = projects.filter(key=key).first()
        if chosen is not None:
            return chosen
    return projects.first()


def environment_list(project: Project | None = None) -> list[Environment]:
    """A project's environments in column order (every environment when no project is given)."""
    environments = Environment.objects.select_related("project").order_by(
        "project__name", "order", "key"
    )
    if project is not None:
        environments = environments.filter(project=project)
    return list(environments)


def environment_default() -> Environment | None:
    """The first environment of the first product by name (the "Evaluate as" default).

    FlagShip's own project is not offered there (``flags.admin.forms.actions``).
    """
    environments = Environment.objects.filter(project__system=False).select_related("project")
    return environments.order_by("project__name", "order", "key").first()


def flag_list(*, project: Project | None = None) -> QuerySet[Flag]:
    """Flags with their states, each state's rules in outline, dependents and tags prefetched.

    The flag list renders one column per environment from these prefetched rows (what each state
    serves, and which live flags require it there), so it costs the same number of queries for
    5 flags as for 500. They are plain lists (``to_attr``; read them with :func:`listed_states`,
    :func:`listed_rules`, :func:`listed_dependents` and :func:`listed_tags`): a prefetch into
    the related managers builds a queryset per flag and relation (four a flag, one a state), in
    a reference cycle with its instance that only a full garbage collection frees.
    """
    rules = (
        Rule.objects.annotate(
            condition_count=Count("conditions", distinct=True),
            segment_count=Count("segments", distinct=True),
        )
        .only("id", "state_id", "order", "rollout", "serve")
        .order_by("order", "id")
    )
    flags = Flag.objects.select_related("project").prefetch_related(
        Prefetch(
            "states",
            queryset=FlagState.objects.select_related("off_variant")
            .only("id", "flag_id", "environment_id", "enabled", "default_serve", "off_variant__key")
            .prefetch_related(Prefetch("rules", queryset=rules, to_attr=LISTED_RULES)),
            to_attr=LISTED_STATES,
        ),
        Prefetch(
            "dependents",
            queryset=Prerequisite.objects.filter(state__flag__archived=False)
            .select_related("state__flag")
            .only("id", "flag_id", "state__environment_id", "state__flag__key")
            .order_by("state__flag__key"),
            to_attr=LISTED_DEPENDENTS,
        ),
        Prefetch("tags", to_attr=LISTED_TAGS),
    )
    if project is not None:
        flags = flags.filter(project=project)
    return flags


LISTED_STATES, LISTED_RULES = "listed_states", "listed_rules"
LISTED_DEPENDENTS, LISTED_TAGS = "listed_dependents", "listed_tags"


def listed_states(flag: Flag) -> list[FlagState]:
    """The states :func:`flag_list` fetched with ``flag``."""
    states: list[FlagState] = vars(flag)[LISTED_STATES]
    return states


def listed_rules(state: FlagState) -> list[Rule]:
    """The rules in outline :func:`flag_list` fetched with ``state``."""
    rules: list[Rule] = vars(state)[LISTED_RULES]
    return rules


def listed_dependents(flag: Flag) -> list[Prerequisite]:
    """The prerequisites of live flags on ``flag`` :func:`flag_list` fetched with it."""
    dependents: list[Prerequisite] = vars(flag)[LISTED_DEPENDENTS]
    return dependents


def listed_tags(flag: Flag) -> list[Tag]:
    """The tags :func:`flag_list` fetched with ``flag``."""
    tags: list[Tag] = vars(flag)[LISTED_TAGS]
    return tags


def dependents_in(flag_id: int, environment_id: int) -> list[str]:
    """Keys of the live flags that require ``flag_id`` in one environment (their prerequisite)."""
    return list(
        Prerequisite.objects.filter(
            flag_id=flag_id, state__environment_id=environment_id, state__flag__archived=False
        )
        .order_by("state__flag__key")
        .values_list("state__flag__key", flat=True)
    )


def flag_dependents(flag: Flag) -> dict[str, list[str]]:
    """The live flags that have ``flag`` as a prerequisite, each with the environments where."""
    dependents: dict[str, list[str]] = {}
    rows = (
        Prerequisite.objects.filter(flag=flag, state__flag__archived=False)
        .order_by("state__flag__key", "state__environment__order")
        .values_list("state__flag__key", "state__environment__name")
    )
    for key, environment in rows:
        dependents.setdefault(key, []).append(environment)
    return dependents


def rule_outline(rule: Rule) -> dict[str, Any]:
    """A rule in the ruleset format's shape, for ``flags.words`` (its conditions prefetched)."""
    return {
        "conditions": [condition.as_document() for condition in rule.conditions.all()],
        "segments": [segment.key for segment in rule.segments.all()],
        "rollout": rule.rollout,
        "serve": rule.serve,
    }


def flag_state_summaries(flag: Flag) -> list[tuple[FlagState, StateSummary]]:
    """A flag's states in environment order, each with what it serves in words."""
    states = (
        FlagState.objects.filter(flag=flag)
        .select_related("environment", "off_variant")
        .prefetch_related(
            Prefetch(
                "rules",
                queryset=Rule.objects.order_by("order", "id").prefetch_related(
                    "conditions", "segments"
                ),
            )
        )
        .order_by("environment__order", "environment__key")
    )
    return [
        (
            state,
            state_summary(
                enabled=state.enabled,
                off_variant=state.off_variant.key,
                rules=[rule_outline(rule) for rule in state.rules.all()],
                default_serve=state.default_serve,
            ),
        )
        for state in states
    ]


def flag_variants(flag: Flag) -> list[Variant]:
    """A flag's variants in their stored order."""
    return list(Variant.objects.filter(flag=flag).order_by("order", "id"))


def state_rules(state: FlagState) -> QuerySet[Rule]:
    """A state's rules in evaluation order, with conditions and segments prefetched."""
    return (
        Rule.objects.filter(state=state)
        .order_by("order", "id")
        .prefetch_related(
            Prefetch("conditions", queryset=Condition.objects.order_by("order", "id")),
            Prefetch("segments", queryset=Segment.objects.order_by("key")),
        )
    )


def prerequisite_candidates(state: FlagState) -> list[Flag]:
    """Flags that may be prerequisites of a state: live flags of the same project but itself."""
    return list(
        Flag.objects.filter(project_id=state.flag.project_id, archived=False)
        .exclude(pk=state.flag_id)
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("order", "id")))
        .order_by("key")
    )


def segment_choices(project_id: int) -> QuerySet[Segment]:
    """Segments a rule of a project may use."""
    return Segment.objects.filter(project_id=project_id).order_by("name", "key")


def segment_usage(segment: Segment) -> list[Rule]:
    """Rules that use a segment, with their flag and environment."""
    return list(
        Rule.objects.filter(segments=segment)
        .select_related("state__flag", "state__environment")
        .order_by("state__flag__key", "state__environment__order", "order")
    )


def rule_labels(environment: Environment) -> dict[str, Rule]:
    """An environment's rules by their ruleset id (``str(pk)``), to name matched rules."""
    rules = Rule.objects.filter(state__environment=environment).select_related("state__flag")
    return {str(rule.pk): rule for rule in rules}


def audit_feed(viewer: Any, filters: Mapping[str, Any]) -> QuerySet[Any]:
    """The audit feed's rows, newest first, for filters as ``AuditFilterSerializer`` validates them.

    ``project``, ``environment`` and ``flag`` are keys (a deleted flag's key still finds its
    history), ``user`` a username, ``since`` and ``until`` times. What ``viewer`` may not see
    (FlagShip's own project) is left out. A filter naming nothing raises ``NotFoundError``.
    """
    project_id = environment_id = flag_id = user_id = None
    if "project" in filters:
        projects = capabilities.visible(Project.objects.filter(key=filters["project"]), viewer, "")
        project = projects.first()
        if project is None:
            raise NotFoundError(f"No project {filters['project']}.")
        project_id = project.pk
        if "environment" in filters:
            environment = project.environments.filter(key=filters["environment"]).first()
            if environment is None:
                raise NotFoundError(
                    f"No environment {filters['environment']} in project {filters['project']}."
                )
            environment_id = environment.pk
        if "flag" in filters:
            flag_id = history.flag_id_for_key(project.pk, filters["flag"])
            if flag_id is None:
                raise NotFoundError(f"No flag {filters['flag']} in project {filters['project']}.")
    if "user" in filters:
        person = get_user_model()._default_manager.filter(username=filters["user"]).first()
        if person is None:
            raise NotFoundError(f"No user {filters['user']}.")
        user_id = person.pk
    return history.audit_rows(
        project_id=project_id,
        environment_id=environment_id,
        flag_id=flag_id,
        user_id=user_id,
        since=filters.get("since"),
        until=filters.get("until"),
        hidden_project_id=capabilities.hidden_project_id(viewer),
    )
