"""Reads used by the admin: each returns what a page needs in a fixed number of queries."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from .models import Condition, Environment, Flag, FlagState, Project, Rule, Segment, Variant


def project_list() -> QuerySet[Project]:
    """Every project, by name."""
    return Project.objects.order_by("name", "key")


def project_get(key: str | None) -> Project | None:
    """The project with ``key``, else the first project by name (None when there is none)."""
    projects = project_list()
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
    """The first environment of the first project by name (the "Evaluate as" default)."""
    environments = Environment.objects.select_related("project")
    return environments.order_by("project__name", "order", "key").first()


def flag_list(*, project: Project | None = None) -> QuerySet[Flag]:
    """Flags with their states (and each state's environment) and tags prefetched.

    The flag list renders one column per environment from these prefetched states, so it costs
    the same number of queries for 5 flags as for 500.
    """
    flags = Flag.objects.select_related("project").prefetch_related(
        Prefetch(
            "states",
            queryset=FlagState.objects.only("id", "flag_id", "environment_id", "enabled"),
        ),
        "tags",
    )
    if project is not None:
        flags = flags.filter(project=project)
    return flags


def flag_states(flag: Flag) -> list[FlagState]:
    """A flag's states in environment order, each with its number of rules and its variants."""
    return list(
        FlagState.objects.filter(flag=flag)
        .select_related("environment", "off_variant")
        .annotate(rule_count=Count("rules"))
        .order_by("environment__order", "environment__key")
    )


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
