"""The admin at scale (issue 16): its queries reach big tables through indexes, in constant number.

A project is seeded with ``bench.admin.seed`` (the benchmark's own seeding, small: 200 flags and
4 000 history rows) once for the module, and ANALYZEd. Each page is rendered while its queries
are captured; the queries that need an index are found among them by what they read, and
EXPLAINed as the page issued them, with ``enable_seqscan`` off: a sequential scan of the table
then means that no index can serve the query (at 1 000 000 rows, bench.admin.run, it would read
the whole table). Query counts are compared at two page sizes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.models import User
from bench.admin.seed import MANAGER, ScaleCatalogue, catalogue, seed_scale
from flags.history.feed import audit_rows

pytestmark = pytest.mark.django_db

FLAGS = "/admin/flags/flag/"
INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})
HISTORY_ID = "flags_historicalflag_id_"  # simple-history's index of the flag id (a hash follows)


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[ScaleCatalogue]:
    """200 flags in 3 environments and 4 000 history rows, rolled back after the module."""
    with django_db_blocker.unblock(), transaction.atomic():
        seed_scale(flags=200, history=4000)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        yield catalogue("scale")
        transaction.set_rollback(True)


@pytest.fixture
def client(seeded: ScaleCatalogue) -> Client:
    """Signed in as the seeded staff release manager."""
    signed_in = Client()
    signed_in.force_login(User.objects.get(username=MANAGER))
    return signed_in


def _queries(client: Client, url: str) -> list[str]:
    """The SQL of every query the page issued (after a warm-up request)."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def _the_query(queries: list[str], *marks: str) -> str:
    """The one query that contains every mark."""
    found = [sql for sql in queries if all(mark in sql for mark in marks)]
    assert len(found) == 1, f"{len(found)} queries with {marks}"
    return found[0]


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _plan(sql: str) -> tuple[set[str], set[str]]:
    """The indexes the plan scans, and the tables it reads whole (``enable_seqscan`` off)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        (document,) = cursor.fetchone() or (None,)
    plan: Any = json.loads(document) if isinstance(document, str) else document
    indexes: set[str] = set()
    sequential: set[str] = set()
    for node in _nodes(plan[0]["Plan"]):
        if node["Node Type"] in INDEX_SCANS:
            indexes.add(node["Index Name"])
        elif node["Node Type"] == "Seq Scan":
            sequential.add(node["Relation Name"])
    return indexes, sequential


@pytest.mark.requires_postgres
def test_flag_list__stale_badges__latest_state_rows_down_the_versions_index(
    client: Client, seeded: ScaleCatalogue
) -> None:
    # Given the flag list of a seeded project
    queries = _queries(client, f"{FLAGS}?project={seeded.project_key}")

    # When the query reading the states' recent history (flags.stale) is explained
    indexes, sequential = _plan(_the_query(queries, "CROSS JOIN LATERAL"))

    # Then each state's latest rows are read down hist_flagstate_versions, no table whole
    assert "hist_flagstate_versions" in indexes, indexes
    assert "flags_historicalflagstate" not in sequential


@pytest.mark.requires_postgres
def test_flag_list__stale_badges__last_rule_and_prerequisite_change_down_their_indexes(
    client: Client, seeded: ScaleCatalogue
) -> None:
    # Given the flag list of a seeded project
    queries = _queries(client, f"{FLAGS}?project={seeded.project_key}")

    # When the query reading the states with their targeting's last change is explained
    sql = _the_query(queries, '"flags_historicalrule"', '"flags_historicalprerequisite"', "LIMIT 1")
    indexes, sequential = _plan(sql)

    # Then both last changes are one step down the (state, history_date) indexes of flags 0014
    assert {"hist_rule_state_date", "hist_prereq_state_date"} <= indexes, indexes
    assert not sequential & {"flags_historicalrule", "flags_historicalprerequisite"}


@pytest.mark.requires_postgres
@pytest.mark.parametrize(
    "query", ["q=flag-01", "in_production=on", "lifecycle__exact=experiment"], ids=str
)
def test_flag_list__search_and_filters__flags_read_through_a_project_index(
    client: Client, seeded: ScaleCatalogue, query: str
) -> None:
    # Given the flag list searched or filtered
    queries = _queries(client, f"{FLAGS}?project={seeded.project_key}&{query}")

    # When the page's query of the flags is explained
    page = _the_query(queries, 'SELECT "flags_flag"."id"', 'ORDER BY "flags_flag"."key"')
    indexes, sequential = _plan(page)

    # Then the flags are found through an index of theirs (the project's, the lifecycle's, or
    # the states' for on/off; a search then filters the project's: its icontains can use no
    # b-tree index, and a project's flags are a bounded few thousand)
    assert "flags_flag" not in sequential, (indexes, sequential)
    assert [name for name in indexes if name.startswith(("flag_", "flags_flag_"))], indexes


@pytest.mark.requires_postgres
@pytest.mark.parametrize("page", ["timeline", "audit"])
def test_flag_history__timeline_and_audit_by_flag__states_and_flag_rows_through_indexes(
    client: Client, seeded: ScaleCatalogue, page: str
) -> None:
    # Given the busiest flag's timeline, or the audit log filtered by it
    url = f"{FLAGS}{seeded.busiest_flag_id}/history/"
    if page == "audit":
        url = f"/admin/audit/?project={seeded.project_id}&flag={seeded.busiest_flag_key}"
    queries = _queries(client, url)

    # When the page's query of history rows (the union, newest first) is explained
    rows = _the_query(queries, "UNION ALL", "ORDER BY", "LIMIT", "'flagstate'")
    indexes, sequential = _plan(rows)

    # Then its states' rows (most of a flag's history) are read newest first down the (flag,
    # history_date) index of flags 0016, where the history date's index had every other flag's
    # rows read and dropped (3 ms at a million rows); the flag's own rows through an index led
    # by its id (at a million rows, flags 0016's hist_flag_versions); no table whole
    assert not sequential & {"flags_historicalflagstate", "flags_historicalflag"}, sequential
    assert "hist_flagstate_flag_date" in indexes, indexes
    assert [name for name in indexes if name.startswith(("hist_flag_versions", HISTORY_ID))], (
        indexes
    )


def _counts(client: Client, url: str, size: int) -> int:
    with (
        override_settings(FLAGSHIP={"ADMIN_FLAGS_PER_PAGE": size}),
        mock.patch("flags.admin.timeline.PER_PAGE", size),
        mock.patch("flagship.admin_site.PER_PAGE", size),
    ):
        return len(_queries(client, url))


@pytest.mark.parametrize("filters", ["", "&in_production=on", "&q=flag-1", "&stale=yes"])
def test_flag_list__25_or_100_flags_a_page__same_number_of_queries(
    client: Client, seeded: ScaleCatalogue, filters: str
) -> None:
    # Given the flag list of the seeded project, plain, filtered or searched
    url = f"{FLAGS}?project={seeded.project_key}{filters}"

    # When it is rendered with 25 and with 100 flags a page / Then it costs as many queries
    assert _counts(client, url, 25) == _counts(client, url, 100)


def _models(rows: Any, size: int) -> int:
    return len({row["model"] for row in rows[:size]})


@pytest.mark.parametrize("page", ["timeline", "audit", "audit by flag"])
def test_history_pages__25_or_100_rows_a_page__queries_grow_only_with_the_models_shown(
    client: Client, seeded: ScaleCatalogue, page: str
) -> None:
    # Given a page of history: its rows' changes are read per model on the page (flags.history)
    url, rows = {
        "timeline": (
            f"{FLAGS}{seeded.busiest_flag_id}/history/",
            audit_rows(flag_id=seeded.busiest_flag_id),
        ),
        "audit": ("/admin/audit/", audit_rows()),
        "audit by flag": (
            f"/admin/audit/?project={seeded.project_id}&flag={seeded.busiest_flag_key}",
            audit_rows(project_id=seeded.project_id, flag_id=seeded.busiest_flag_id),
        ),
    }[page]

    # When it is rendered with 25 and with 100 rows a page
    small, large = _counts(client, url, 25), _counts(client, url, 100)

    # Then the larger page costs no query per row: at most the diff query of each kind of
    # object (flag, state, rule...) that only the larger page shows
    assert 0 <= large - small <= _models(rows, 100) - _models(rows, 25)


def _explained(sql: str) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every node of the plan with its parent (``enable_seqscan`` off, as :func:`_plan`)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        (document,) = cursor.fetchone() or (None,)
    plan: Any = json.loads(document) if isinstance(document, str) else document
    found: list[tuple[dict[str, Any], dict[str, Any] | None]] = []

    def walk(node: dict[str, Any], parent: dict[str, Any] | None) -> None:
        found.append((node, parent))
        for child in node.get("Plans", []):
            walk(child, node)

    walk(plan[0]["Plan"], None)
    return found


AUDIT_PAGES = {
    "audit": "/admin/audit/",
    "audit by project": "/admin/audit/?project={project}",
    "audit by environment": "/admin/audit/?environment={environment}",
}


@pytest.mark.requires_postgres
@pytest.mark.parametrize("page", AUDIT_PAGES)
def test_audit_pages__each_models_newest_rows_down_its_history_date_index_then_cut(
    client: Client, seeded: ScaleCatalogue, page: str
) -> None:
    # Given the audit log, whole or filtered by project or environment
    url = AUDIT_PAGES[page].format(project=seeded.project_id, environment=seeded.environment_id)
    queries = _queries(client, url)

    # When the page's query of history rows is explained
    nodes = _explained(_the_query(queries, "UNION ALL", "ORDER BY", "LIMIT", "'flagstate'"))

    # Then the states' and the rules' rows (most of the history) are each read newest first
    # down their history_date index, under a LIMIT of their own (flags.history.feed.window):
    # a page's worth of each, never every row sorted
    for table in ("flags_historicalflagstate", "flags_historicalrule"):
        scans = [
            (node, parent)
            for node, parent in nodes
            if node.get("Relation Name") == table and node.get("Alias") == table
        ]
        assert scans, table
        for node, parent in scans:
            assert node["Node Type"] in INDEX_SCANS, (table, node["Node Type"])
            assert "history_date" in node["Index Name"], (table, node["Index Name"])
            assert node.get("Scan Direction") == "Backward", node
            assert parent is not None, node
            assert parent["Node Type"] in {"Limit", "Incremental Sort", "Nested Loop"}, parent
    assert sum(node["Node Type"] == "Limit" for node, _ in nodes) > 2


@pytest.mark.requires_postgres
@pytest.mark.parametrize("page", ["timeline", "audit by flag"])
def test_flag_history__conditions_of_its_rules_and_segments_through_their_indexes(
    client: Client, seeded: ScaleCatalogue, page: str
) -> None:
    # Given the busiest flag's timeline, or the audit log filtered by it
    url = f"{FLAGS}{seeded.busiest_flag_id}/history/"
    if page == "audit by flag":
        url = f"/admin/audit/?project={seeded.project_id}&flag={seeded.busiest_flag_key}"
    queries = _queries(client, url)

    # When the page's count, which finds every row of the flag, is explained
    count = _the_query(queries, "SELECT COUNT(*)", "UNION ALL")
    indexes, sequential = _plan(count)

    # Then the conditions of the flag's rules (their ids read first, as a list) are found
    # through the rule_id index, and the count stops at 10 001 rows (the page's own query
    # needs only each model's newest rows, which the planner may take walking the history
    # date's index back instead, as it does at a million rows for the busiest flag)
    assert "flags_historicalcondition_rule_id_72e9d86a" in indexes, indexes
    assert "flags_historicalcondition" not in sequential
    assert "LIMIT 10001" in count


@pytest.mark.requires_postgres
def test_timeline__count__states_rows_counted_from_an_index_alone(
    client: Client, seeded: ScaleCatalogue
) -> None:
    # Given the busiest flag's timeline
    queries = _queries(client, f"{FLAGS}{seeded.busiest_flag_id}/history/")

    # When the query counting its rows (up to 10 001) is explained with index scans only (a
    # small table would be read whole or through a bitmap otherwise)
    count = _the_query(queries, "SELECT COUNT(*)", "UNION ALL", "'flagstate'")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {count}")
        (document,) = cursor.fetchone() or (None,)
    plan: Any = json.loads(document) if isinstance(document, str) else document
    scans = {
        node["Relation Name"]: node["Node Type"]
        for node in _nodes(plan[0]["Plan"])
        if node["Node Type"] in INDEX_SCANS
    }

    # Then the states' rows, most of a flag's history, are counted from an index alone: the
    # count needs no column of theirs (flags.history.feed.FeedPaginator.counted), where one
    # selecting the union's columns must read every row
    assert scans["flags_historicalflagstate"] == "Index Only Scan", scans
