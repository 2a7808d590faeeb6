"""The admin's query paths are served by indexes (PostgreSQL only: SQLite's planner says little).

A few thousand rows are written in bulk, the tables are ANALYZEd so that the planner works from
real statistics, and each query's plan (``EXPLAIN (FORMAT JSON)``) must reach the main table
through an index scan (plain, index-only or bitmap) on the index named, never a sequential scan.
The planner is not forced (``enable_seqscan`` stays on): the plan is the one production would get.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Model, QuerySet

from flags.models import Environment, Flag, FlagState, Project, Variant

HistoricalFlag: type[Model] = Flag.history.model
HistoricalFlagState: type[Model] = FlagState.history.model

pytestmark = [pytest.mark.requires_postgres, pytest.mark.django_db]

# One large project (the list pages that matter) among small ones: 2950 flags, 8850 states.
FLAGS_PER_PROJECT = (2000, *([50] * 19))
HISTORY_PER_FLAG = 3
INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """20 projects x 3 environments, 2950 flags (8850 states), 3 history rows per flag and state.

    Built once for the module inside a transaction that is rolled back at the end (each test
    runs in a savepoint within it). Yields what the queries look at: the large project, its
    staging environment, one flag and its staging state.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build()
        transaction.set_rollback(True)


def _build() -> dict[str, Any]:
    projects = Project.objects.bulk_create(
        Project(key=f"p{index:02}", name=f"Project {index:02}")
        for index in range(len(FLAGS_PER_PROJECT))
    )
    environments = Environment.objects.bulk_create(
        Environment(project=project, key=key, name=key, order=order, ruleset_version=1)
        for project in projects
        for order, key in enumerate(("development", "staging", "production"))
    )
    flags = Flag.objects.bulk_create(
        Flag(
            project=project, key=f"flag-{index:04}", name=f"Flag {index}", archived=index % 10 == 0
        )
        for project, count in zip(projects, FLAGS_PER_PROJECT, strict=True)
        for index in range(count)
    )
    variants = Variant.objects.bulk_create(
        Variant(flag=flag, key=key, value=value, order=order)
        for flag in flags
        for order, (key, value) in enumerate((("on", True), ("off", False)))
    )
    off = {variant.flag_id: variant for variant in variants if variant.key == "off"}
    by_project: dict[int, list[Environment]] = {}
    for environment in environments:
        by_project.setdefault(environment.project_id, []).append(environment)
    states = FlagState.objects.bulk_create(
        FlagState(
            flag=flag,
            environment=environment,
            enabled=(flag.pk + environment.pk) % 3 == 0,
            off_variant=off[flag.pk],
            default_serve={"variant": "off"},
        )
        for flag in flags
        for environment in by_project[flag.project_id]
    )
    _history(Flag, flags)
    _history(FlagState, states)
    with connection.cursor() as cursor:
        for model in (Flag, FlagState, HistoricalFlag, HistoricalFlagState):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    project = projects[0]
    staging = by_project[project.pk][1]
    flag = next(flag for flag in flags if flag.project_id == project.pk and flag.key == "flag-0042")
    state = next(s for s in states if s.flag_id == flag.pk and s.environment_id == staging.pk)
    return {"project": project, "environment": staging, "flag": flag, "state": state}


def _history(model: type[Model], objects: list[Any]) -> None:
    """Write HISTORY_PER_FLAG history rows per object, a day apart (as edits would)."""
    historical = model.history.model  # type: ignore[attr-defined]  # added by simple-history
    fields = [field.attname for field in model._meta.concrete_fields]
    historical.objects.bulk_create(
        historical(
            **{name: getattr(obj, name) for name in fields},
            history_date=START + timedelta(days=day, seconds=obj.pk),
            history_type="+" if day == 0 else "~",
        )
        for obj in objects
        for day in range(HISTORY_PER_FLAG)
    )


def _plan(queryset: QuerySet[Any]) -> dict[str, Any]:
    plan: Any = json.loads(queryset.explain(format="json"))
    root: dict[str, Any] = plan[0]["Plan"]
    return root


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _scans(queryset: QuerySet[Any]) -> tuple[set[str], list[str]]:
    """The indexes the plan scans (plain, index-only, bitmap) and the tables it reads whole."""
    indexes: set[str] = set()
    sequential: list[str] = []
    for node in _nodes(_plan(queryset)):
        if node["Node Type"] in INDEX_SCANS:
            indexes.add(node["Index Name"])
        elif node["Node Type"] == "Seq Scan":
            sequential.append(node["Relation Name"])
    return indexes, sequential


def _indexes_on(model: type[Model], columns: list[str]) -> set[str]:
    """Names of the indexes of ``model``'s table whose leading columns are ``columns``."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name
        for name, details in constraints.items()
        if (details["index"] or details["unique"]) and details["columns"][: len(columns)] == columns
    }


def _assert_reads_through(queryset: QuerySet[Any], suitable: set[str]) -> str:
    """The plan reads no table whole and scans one of the ``suitable`` indexes; return it."""
    indexes, sequential = _scans(queryset)
    assert sequential == [], f"sequential scans of {sequential}; indexes used: {sorted(indexes)}"
    used = sorted(indexes & suitable)
    assert used, f"none of {sorted(suitable)} used; the plan scans {sorted(indexes)}"
    return used[0]


def test_indexes__named_indexes__exist_on_their_columns(catalogue: dict[str, Any]) -> None:
    # Given the migrated schema
    # When the indexes of the tables the admin reads are listed by their leading columns
    # Then the named ones the plans below rely on are there, and each history table has an
    # index led by the object id (simple-history's default per-field index; flags and flag
    # states also have their versions index, id then date)
    assert "flag_project_archived_key" in _indexes_on(Flag, ["project_id", "archived", "key"])
    assert "flag_key_unique_per_project" in _indexes_on(Flag, ["project_id", "key"])
    assert "flag_state_env_enabled" in _indexes_on(FlagState, ["environment_id", "enabled"])
    assert "flag_state_unique_per_environment" in _indexes_on(
        FlagState, ["flag_id", "environment_id"]
    )
    assert _indexes_on(HistoricalFlag, ["id", "history_date", "history_id"]) == {
        "hist_flag_versions"
    }
    assert len(_indexes_on(HistoricalFlag, ["id"])) == 2
    assert "hist_flagstate_versions" in _indexes_on(
        HistoricalFlagState, ["id", "history_date", "history_id"]
    )


@pytest.mark.parametrize("offset", [0, 1000], ids=["first page", "page 21"])
def test_flag_list__live_flags_of_a_project_by_key__read_in_key_order_through_an_index(
    catalogue: dict[str, Any], offset: int
) -> None:
    # Given a project with 2000 flags among 20 projects
    # When a page of its live flags is planned, ordered as the admin orders them (key, then -pk)
    queryset = Flag.objects.filter(project=catalogue["project"], archived=False).order_by(
        "key", "-pk"
    )[offset : offset + 50]
    # Then an index led by the project serves it (the planner picks among the (project, key)
    # unique index, (project, archived, key) and the foreign key's): no table is read whole
    assert _assert_reads_through(queryset, _indexes_on(Flag, ["project_id"]))


def test_flag_list__filtered_on_in_one_environment__reads_states_through_an_index(
    catalogue: dict[str, Any],
) -> None:
    # Given a project with 2000 flags
    # When the list filtered "on in staging" is planned (the per-environment list filter)
    queryset = Flag.objects.filter(
        project=catalogue["project"],
        archived=False,
        states__environment_id=catalogue["environment"].pk,
        states__enabled=True,
    ).order_by("key", "-pk")[:50]
    # Then the flags and their states are both read through indexes
    indexes, sequential = _scans(queryset)
    assert sequential == [], sequential
    assert indexes & _indexes_on(Flag, ["project_id"]), indexes
    states = _indexes_on(FlagState, ["flag_id"]) | _indexes_on(FlagState, ["environment_id"])
    assert indexes & states, indexes


def test_flag_lookup__project_and_key__index_scan_on_unique_key(
    catalogue: dict[str, Any],
) -> None:
    # Given 2950 flags in 20 projects
    # When one flag is looked up by project and key (API and admin URLs use keys)
    queryset = Flag.objects.filter(project=catalogue["project"], key="flag-0042")
    # Then the unique constraint's index finds it
    assert _assert_reads_through(queryset, {"flag_key_unique_per_project"})


def test_flag_states__one_environment__read_through_an_environment_index(
    catalogue: dict[str, Any],
) -> None:
    # Given 8850 flag states in 60 environments
    # When one environment's states are planned
    queryset = FlagState.objects.filter(environment=catalogue["environment"])
    # Then an index led by the environment serves them (the composite, or the foreign key's)
    assert _assert_reads_through(queryset, _indexes_on(FlagState, ["environment_id"]))


def test_flag_states__enabled_in_one_environment__index_scan_on_env_enabled(
    catalogue: dict[str, Any],
) -> None:
    # Given 8850 flag states in 60 environments
    # When one environment's enabled states are planned
    queryset = FlagState.objects.filter(environment=catalogue["environment"], enabled=True)
    # Then flag_state_env_enabled serves both conditions
    assert _assert_reads_through(queryset, {"flag_state_env_enabled"})


def test_flag_states__prefetched_for_a_page_of_flags__read_through_a_flag_index(
    catalogue: dict[str, Any],
) -> None:
    # Given 8850 flag states
    flag_ids = list(
        Flag.objects.filter(project=catalogue["project"])
        .order_by("key")
        .values_list("pk", flat=True)[:50]
    )
    # When the states of a page of 50 flags are planned as the flag list prefetches them
    queryset = FlagState.objects.only("id", "flag_id", "environment_id", "enabled").filter(
        flag_id__in=flag_ids
    )
    # Then an index led by the flag serves them, and no table is read whole (FlagState's
    # default ordering joins nothing)
    assert _assert_reads_through(queryset, _indexes_on(FlagState, ["flag_id"]))


@pytest.mark.parametrize(
    ("model", "key"), [(HistoricalFlag, "flag"), (HistoricalFlagState, "state")]
)
def test_history_page__one_object_newest_first__index_scan_on_object_id(
    catalogue: dict[str, Any], model: type[Model], key: str
) -> None:
    # Given 3 history rows per flag and per state (8850 flags' and 26550 states' rows)
    indexes = _indexes_on(model, ["id"])
    # When one object's history page is planned (simple-history's order, 100 rows a page)
    queryset = model._default_manager.filter(id=catalogue[key].pk).order_by(
        "-history_date", "-history_id"
    )[:100]
    # Then its rows are found through an index led by the object id
    assert _assert_reads_through(queryset, indexes) in indexes
