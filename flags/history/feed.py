"""Reading history (django-simple-history): per object, and the audit feed across models.

History rows of several models are merged with a SQL ``UNION`` of their common columns, so one
page costs one query for the rows, one for the people, and two per model on the page for the
changed fields — never one per row.

The feed is scoped (project, environment, flag) through the history tables themselves, never the
live ones: a rule deleted since, with the conditions its deletion cascaded to, still belongs to
its flag, because its history rows name the flag state they belonged to, whose history rows name
the flag. Each scope is a set of SQL subqueries, so a page is one statement and its count another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connection, connections
from django.db.models import CharField, Exists, Model, OuterRef, Q, QuerySet, Value

HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}
# Each audited model, by label, with the app it belongs to.
AUDITED: dict[str, str] = {
    "project": "flags",
    "environment": "flags",
    "flag": "flags",
    "variant": "flags",
    "flagstate": "flags",
    "rule": "flags",
    "condition": "flags",
    "prerequisite": "flags",
    "segment": "flags",
    "tag": "flags",
    "apikey": "accounts",
    "scheduledchange": "flags",
    "scheduledstep": "flags",
    "changerequest": "flags",
    "changerequestreview": "flags",
}
# Which models' rows a scope keeps, and the condition on each (a label absent: none of its rows).
Scope = dict[str, Q]
COLUMNS = ("history_id", "history_date", "history_type", "history_user_id", "id", "model")
BOOKKEEPING = frozenset(
    {"history_id", "history_date", "history_type", "history_user", "history_change_reason"}
)


def historical(label: str) -> type[Model]:
    """The historical model of an audited model label."""
    return apps.get_model(AUDITED[label], f"Historical{label}")


def part(label: str, condition: Q | None = None) -> QuerySet[Any]:
    """One model's history rows as the common columns (``condition`` filters them)."""
    label = label.split("/", maxsplit=1)[0]  # a part of a model's rows (_within)
    rows = historical(label)._default_manager.order_by()
    if condition is not None:
        rows = rows.filter(condition)
    labelled: QuerySet[Any] = rows.annotate(model=Value(label, output_field=CharField()))
    return labelled.values(*COLUMNS)


def merged(parts: Sequence[QuerySet[Any]]) -> QuerySet[Any]:
    """The union of several models' rows, newest first."""
    first, *others = parts
    rows = first.union(*others, all=True) if others else first
    return rows.order_by("-history_date", "-history_id")


def rule_segments_history() -> type[Model]:
    """The history of rules' segments: one row per segment of each historical rule row."""
    return apps.get_model("flags", "HistoricalRule_segments")


def _ids(label: str, condition: Q, column: str = "id") -> QuerySet[Any]:
    """A subquery: ``column`` of ``label``'s history rows matching ``condition``, each once.

    Each object has many history rows; without ``DISTINCT`` PostgreSQL's planner takes the
    subquery for a few rows per id and joins it by looking each id up in the history table's id
    index, reading every version of every object for each row (50 to 130 ms at 100 000 rows,
    against 2 ms for a hash of the distinct ids; bench/RESULTS.md).
    """
    rows = historical(label)._default_manager.order_by().filter(condition)
    return rows.values(column).distinct()


def _schedule_scope(states: QuerySet[Any]) -> Scope:
    """The scheduled changes of ``states`` (ids of flag states) and their steps."""
    return {
        "scheduledchange": Q(state_id__in=states),
        "scheduledstep": Q(change_id__in=_ids("scheduledchange", Q(state_id__in=states))),
    }


def _change_request_scope(environments: Q) -> Scope:
    """The change requests for the environments ``environments`` selects, and their reviews."""
    return {
        "changerequest": environments,
        "changerequestreview": Q(change_request_id__in=_ids("changerequest", environments)),
    }


def project_scope(project_id: int, *, resolved: bool = False) -> Scope:
    """A project's rows: itself, its environments, flags and segments, and everything below them.

    Rows below a flag or an environment are found up the history tables one row at a time
    (:func:`_belongs`). ``resolved``: the ids of its flags, environments, states, rules and
    segments are read first (five queries) and written into the scope as lists instead, for a
    project known to be small (FlagShip's own, :func:`hidden_scope`), whose rows the feed leaves
    out: every row of the feed is checked against it, a lookup in a short list.
    """
    if not resolved:
        in_project = Q(project_id=project_id)
        of_flag = _belongs("flag", "flag_id", in_project)
        state_of_project = Q(
            Exists(
                historical("flagstate")
                ._default_manager.order_by()
                .filter(id=OuterRef("state_id"))
                .filter(_belongs("flag", "flag_id", in_project))
            )
        )
        rule_rows = historical("rule")._default_manager.order_by().filter(id=OuterRef("rule_id"))
        of_state = _belongs("flagstate", "state_id", _belongs("flag", "flag_id", in_project))
        of_environment = _belongs("environment", "environment_id", in_project)
        return {
            "project": Q(id=project_id),
            "environment": in_project,
            "flag": in_project,
            "variant": of_flag,
            "flagstate": of_flag,
            "rule": state_of_project,
            # Two parts, each an EXISTS the planner joins row by row (with OR between them,
            # it hashed every rule of the project first): a condition has a rule or a segment.
            "condition": Q(segment_id__isnull=True) & Q(Exists(rule_rows.filter(of_state))),
            "condition/segment": Q(rule_id__isnull=True)
            & _belongs("segment", "segment_id", in_project),
            "prerequisite": state_of_project,
            "segment": in_project,
            "apikey": of_environment,
            "scheduledchange": state_of_project,
            "scheduledstep": Q(
                Exists(
                    historical("scheduledchange")
                    ._default_manager.order_by()
                    .filter(id=OuterRef("change_id"))
                    .filter(of_state)
                )
            ),
            **_change_request_scope(of_environment),
        }
    flags = [row["id"] for row in _ids("flag", Q(project_id=project_id))]
    environments = [row["id"] for row in _ids("environment", Q(project_id=project_id))]
    segments = [row["id"] for row in _ids("segment", Q(project_id=project_id))]
    states = [row["id"] for row in _ids("flagstate", Q(flag_id__in=flags))]
    rules = [row["id"] for row in _ids("rule", Q(state_id__in=states))]
    return {
        "project": Q(id=project_id),
        "environment": Q(project_id=project_id),
        "flag": Q(project_id=project_id),
        "variant": Q(flag_id__in=flags),
        "flagstate": Q(flag_id__in=flags),
        "rule": Q(state_id__in=states),
        "condition": Q(rule_id__in=rules) | Q(segment_id__in=segments),
        "prerequisite": Q(state_id__in=states),
        "segment": Q(project_id=project_id),
        "apikey": Q(environment_id__in=environments),
        **_schedule_scope(states),  # type: ignore[arg-type]  # a list serves as well
        **_change_request_scope(Q(environment_id__in=environments)),
    }


def hidden_scope(project_id: int) -> Scope:
    """:func:`project_scope` (resolved: a small project), also through the live tables.

    FlagShip's own project was created by a migration, which writes no history: its flags,
    states and environment have history rows only once someone changed them, so the rows of
    those changes are found through the live rows too.
    """
    live = {
        name: apps.get_model("flags", name)._default_manager.order_by()
        for name in ("Flag", "Environment", "FlagState")
    }
    flags = list(live["Flag"].filter(project_id=project_id).values_list("pk", flat=True))
    environments = list(
        live["Environment"].filter(project_id=project_id).values_list("pk", flat=True)
    )
    states = list(
        live["FlagState"].filter(flag__project_id=project_id).values_list("pk", flat=True)
    )
    also: Scope = {
        "variant": Q(flag_id__in=flags),
        "flagstate": Q(flag_id__in=flags),
        "rule": Q(state_id__in=states),
        "prerequisite": Q(state_id__in=states),
        "apikey": Q(environment_id__in=environments),
        "scheduledchange": Q(state_id__in=states),
        "changerequest": Q(environment_id__in=environments),
    }
    scope = project_scope(project_id, resolved=True)
    return {label: q | also[label] if label in also else q for label, q in scope.items()}


def _belongs(label: str, column: str, condition: Q) -> Q:
    """Rows whose ``column`` names an object of ``label`` with a history row matching ``condition``.

    A correlated ``EXISTS``, one step down the history table's id index per row: the feed reads
    each model's rows newest first and stops at a page's worth (:func:`window`), so a few rows
    are checked, where an ``IN`` over the ids of every matching object (an environment's 10 000
    states, their rules) had them all read and hashed first (a second at a million rows).
    """
    rows = historical(label)._default_manager.order_by()
    return Q(Exists(rows.filter(condition, id=OuterRef(column))))


def environment_scope(environment_id: int) -> Scope:
    """An environment's rows: itself, its flag states and what hangs from them, its API keys.

    What hangs from a state: its rules, their conditions, its prerequisites. Flag-wide rows
    (a flag's, its variants') belong to no environment.
    """
    in_environment = Q(environment_id=environment_id)
    of_state = _belongs("flagstate", "state_id", in_environment)
    rule_of_state = Exists(
        historical("rule")
        ._default_manager.order_by()
        .filter(id=OuterRef("rule_id"))
        .filter(_belongs("flagstate", "state_id", in_environment))
    )
    return {
        "environment": Q(id=environment_id),
        "flagstate": in_environment,
        "rule": of_state,
        "condition": Q(rule_of_state),
        "prerequisite": of_state,
        "apikey": in_environment,
        "scheduledchange": of_state,
        "scheduledstep": Q(
            Exists(
                historical("scheduledchange")
                ._default_manager.order_by()
                .filter(id=OuterRef("change_id"))
                .filter(_belongs("flagstate", "state_id", in_environment))
            )
        ),
        **_change_request_scope(in_environment),
    }


def flag_scope(flag_id: int, environment_id: int | None = None) -> Scope:
    """A flag's rows: itself, its variants, its states and what hangs from them, its segments.

    What hangs from a state: its rules, their conditions, its prerequisites. Its segments: every
    segment one of its rules ever used (from the rules' history), with their conditions.

    With ``environment_id``: only that environment's state and what hangs from it, and the
    segments its rules use; the flag's and its variants' rows (in every environment) are left out.

    The ids of its states, rules and segments are read first (three queries, each down an index:
    a flag has a few states, a few hundred rules in its history at most) and written into the
    scope as lists: as subqueries, the planner cannot know how few they are, and at a million
    history rows it hashed the whole rules' and conditions' history instead of looking the few
    up (a second per page; bench/RESULTS.md).
    """
    state = Q(flag_id=flag_id)
    if environment_id is not None:
        state &= Q(environment_id=environment_id)
    states = list(_ids("flagstate", state))
    state_ids = [row["id"] for row in states]
    rule_history = historical("rule")._default_manager.order_by()
    rule_ids = list(
        rule_history.filter(state_id__in=state_ids).values_list("id", flat=True).distinct()
    )
    segment_ids = list(
        rule_segments_history()
        ._default_manager.order_by()
        .filter(history_id__in=rule_history.filter(state_id__in=state_ids).values("history_id"))
        .values_list("segment_id", flat=True)
        .distinct()
    )
    scope: Scope = {
        "flagstate": state,
        "rule": Q(state_id__in=state_ids),
        "condition": Q(rule_id__in=rule_ids) | Q(segment_id__in=segment_ids),
        "prerequisite": Q(state_id__in=state_ids),
        "segment": Q(id__in=segment_ids),
        "scheduledchange": Q(state_id__in=state_ids),
        "scheduledstep": Q(change_id__in=_ids("scheduledchange", Q(state_id__in=state_ids))),
    }
    if environment_id is None:
        scope |= {"flag": Q(id=flag_id), "variant": Q(flag_id=flag_id)}
    return scope


def _within(scopes: Sequence[Scope]) -> Scope:
    """The rows every scope keeps (no scope: every row of every model).

    A scope may split a model's rows into parts (``"condition/segment"``: more of the
    conditions' rows); two scopes together keep the parts both name.
    """
    if not scopes:
        return {label: Q() for label in AUDITED}
    first, *others = scopes
    kept: Scope = dict(first)
    for scope in others:
        kept = {label: kept[label] & scope[label] for label in kept if label in scope}
    return kept


def audit_rows(
    *,
    project_id: int | None = None,
    environment_id: int | None = None,
    flag_id: int | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    hidden_project_id: int | None = None,
) -> QuerySet[Any]:
    """Changes across every audited model, newest first, optionally narrowed.

    ``project_id``, ``environment_id`` and ``flag_id`` keep what belongs to them (see the
    ``*_scope`` functions; together, what belongs to all of them, a flag in one environment
    being that flag's state there); ``user_id`` keeps one person's changes; ``since``
    (inclusive) and ``until`` (exclusive) bound ``history_date``. ``hidden_project_id`` leaves
    out what belongs to that project (FlagShip's own, for whoever may not see it).
    """
    scopes: list[Scope] = []
    common = Q()
    if flag_id is not None:
        scopes.append(flag_scope(flag_id, environment_id))
    elif environment_id is not None:
        scopes.append(environment_scope(environment_id))
    if project_id is not None and not scopes:
        scopes.append(project_scope(project_id))
    elif project_id is not None:
        # A flag or an environment is in one project: rather than intersecting with the whole
        # project's scope, check once (an uncorrelated subquery) that it is this project's.
        for label, object_id in (("flag", flag_id), ("environment", environment_id)):
            if object_id is not None:
                rows = historical(label)._default_manager.order_by()
                common &= Q(Exists(rows.filter(id=object_id, project_id=project_id)))
    if user_id is not None:
        common &= Q(history_user_id=user_id)
    if since is not None:
        common &= Q(history_date__gte=since)
    if until is not None:
        common &= Q(history_date__lt=until)
    # Every combination of scopes keeps some model (a flag's states at least), so never no part.
    kept = _within(scopes)
    if hidden_project_id is not None:
        hidden = hidden_scope(hidden_project_id)
        kept = {
            label: q & ~hidden[model] if (model := label.split("/", maxsplit=1)[0]) in hidden else q
            for label, q in kept.items()
        }
    return merged([part(label, condition & common) for label, condition in kept.items()])


def audit_people(rows: QuerySet[Any]) -> set[int]:
    """The ids of the people with rows among ``rows`` (:func:`audit_rows`), counted in SQL.

    ``SELECT DISTINCT`` over the union: the database reads the rows, Python gets a few ids
    (a busy flag has tens of thousands of rows). A ``values_list()`` of a ``UNION`` would pick
    columns by position, not by name, hence the SQL around the union's own.
    """
    union, params = rows.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT history_user_id FROM ({union}) AS feed "  # noqa: S608  # Django's SQL
            "WHERE history_user_id IS NOT NULL",
            params,
        )
        return {user_id for (user_id,) in cursor.fetchall()}


def flag_id_for_key(project_id: int, key: str) -> int | None:
    """The id of a project's flag with this key, deleted ones included (their history remains).

    The live flag if there is one, else the one deleted last, else ``None``.
    """
    live = apps.get_model("flags", "Flag")._default_manager.filter(project_id=project_id, key=key)
    found: int | None = live.values_list("pk", flat=True).first()
    if found is None:
        rows = historical("flag")._default_manager.filter(project_id=project_id, key=key)
        found = rows.order_by("-history_date", "-history_id").values_list("id", flat=True).first()
    return found


NEWEST = ("-history_date", "-history_id")
OLDEST = ("history_date", "history_id")


def window(rows: QuerySet[Any], bottom: int, top: int, *, oldest_first: bool = False) -> list[Any]:
    """``rows[bottom:top]`` of :func:`audit_rows`, each model's part cut to its first ``top``.

    Ordered and cut as a whole, the union is read whole and sorted (PostgreSQL 15 merges the
    parts' history date indexes only when no filter is on them: 0.8 s at a million rows). Each
    part ordered and cut to ``top`` rows first walks its history date index from the newest (or
    oldest) row and stops at ``top``; the union of those is sorted. The same rows, in the same
    order: rows ``bottom`` to ``top`` of the whole are among the first ``top`` of their parts.
    """
    ordering = OLDEST if oldest_first else NEWEST
    if not rows.query.combinator or not (
        connections[rows.db].features.supports_slicing_ordering_in_compound
    ):  # SQLite takes no LIMIT in a union's parts: its union is ordered and cut as a whole
        return list(rows.order_by(*ordering)[bottom:top])
    cut = rows.order_by(*ordering)
    parts = []
    for part in rows.query.combined_queries:
        query = part.clone()
        query.clear_ordering(force=True)
        query.add_ordering(*ordering)
        query.set_limits(high=top)
        parts.append(query)
    cut.query.combined_queries = tuple(parts)
    return list(cut[bottom:top])


COUNTED_AT_MOST = 10_000  # rows a feed's pages count; past it: "more than 10,000 changes"


class FeedPaginator(Paginator[dict[str, Any]]):
    """Pages of feed rows that count no more than :data:`COUNTED_AT_MOST` rows.

    Counting a million rows of history (a ``COUNT(*)`` over the union of every model's history)
    took seconds; counting up to ``COUNTED_AT_MOST + 1`` of them (``LIMIT`` in the counting
    subquery) stops as soon as there are more. With more rows than that, :attr:`more` is true,
    :attr:`count` is ``COUNTED_AT_MOST``, the page numbers go one past the counted rows, and
    every page past them is served too (each with a link to the next while it is full).

    When every row was counted, a page past the middle is read newest-last from the end (the
    same query, ordered the other way, with the smaller offset), then put back in order: the
    database walks the history dates' indexes from whichever end is nearer instead of sorting
    every row to skip most of them.
    """

    @cached_property
    def counted(self) -> int:
        """The rows, counted up to one more than :data:`COUNTED_AT_MOST`.

        ``SELECT 1`` over the union, not its columns: each model's rows are then counted from
        the index that finds them (index-only scans) without reading a row (the busiest flag's
        timeline at a million rows: 3 ms, not 6 to 9). Django's ``count()`` of the cut union
        selects every column of every part.
        """
        rows = self.object_list
        if not isinstance(rows, QuerySet):
            return len(rows)
        union, params = rows.order_by().query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM ({union}) AS feed LIMIT %s) AS cut",  # noqa: S608  # Django's SQL
                (*params, COUNTED_AT_MOST + 1),
            )
            (count,) = cursor.fetchone() or (0,)
        return int(count)

    @property
    def more(self) -> bool:
        """Whether there are more rows than were counted."""
        return self.counted > COUNTED_AT_MOST

    @cached_property
    def count(self) -> int:
        """The rows counted: all of them, or :data:`COUNTED_AT_MOST` when there are more."""
        return min(self.counted, COUNTED_AT_MOST)

    @cached_property
    def num_pages(self) -> int:
        """The pages of the counted rows, and one more for the rest when there are more."""
        pages = super().num_pages
        return pages + 1 if self.more else pages

    def validate_number(self, number: Any) -> int:
        """Any page number from 1 when there are more rows than counted; else Django's check."""
        if not self.more:
            return super().validate_number(number)
        try:
            value = int(number)
        except (TypeError, ValueError) as error:
            raise PageNotAnInteger("That page number is not an integer") from error
        if value < 1:
            raise EmptyPage("That page number is less than 1")
        return value

    def get_page(self, number: Any) -> Page[dict[str, Any]]:
        """Django's: the first page for a number that is none, the last numbered page past all."""
        try:
            return super().get_page(number)
        except EmptyPage:  # past every row, when they were not all counted
            return self.page(self.num_pages)

    def page(self, number: int | str) -> Page[dict[str, Any]]:
        """The rows of one page, newest first."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        rows = self.object_list
        if self.more:
            found = window(rows, bottom, top) if isinstance(rows, QuerySet) else rows[bottom:top]
            if not found and number > 1:
                raise EmptyPage("That page contains no results")
            return FeedPage(found, number, self)
        if top + self.orphans >= self.count:
            top = self.count
        if not isinstance(rows, QuerySet):
            return FeedPage(rows[bottom:top], number, self)
        if bottom > self.count // 2:
            from_end = window(rows, self.count - top, self.count - bottom, oldest_first=True)
            return FeedPage(from_end[::-1], number, self)
        return FeedPage(window(rows, bottom, top), number, self)


class FeedPage(Page[dict[str, Any]]):
    """A page of feed rows; past the counted rows, it has a next page while it is full."""

    paginator: FeedPaginator

    def has_next(self) -> bool:
        """A next page: within the counted pages, or past them while this one is full."""
        if self.paginator.more and self.number >= self.paginator.num_pages - 1:
            return len(self.object_list) == self.paginator.per_page
        return super().has_next()

    def count_text(self) -> str:
        """The count in words: 1 change, 12,345 changes, or more than 10,000 changes."""
        count = self.paginator.count
        if self.paginator.more:
            return f"more than {count:,} changes"
        return f"{count:,} change{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Change:
    """One history row, rendered: who changed what, when, from what to what."""

    id: int
    date: datetime
    type: str
    user: str | None
    model: str
    object_id: int
    changes: list[dict[str, Any]]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _tracked(model: type[Model]) -> list[str]:
    return [
        field.attname
        for field in model._meta.concrete_fields
        if field.name not in BOOKKEEPING and field.attname not in BOOKKEEPING
    ]


def _diffs(label: str, rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Changed fields of some rows of one model, keyed by history id (two queries)."""
    model = historical(label)
    fields = _tracked(model)
    ids = {row["id"] for row in rows}
    latest = max(row["history_date"] for row in rows)
    records = list(
        model._default_manager.filter(id__in=ids, history_date__lte=latest)
        .order_by("id", "history_date", "history_id")
        .values("history_id", *fields)
    )
    previous: dict[int, dict[str, Any] | None] = {}
    last_of_object: dict[Any, dict[str, Any]] = {}
    for record in records:
        previous[record["history_id"]] = last_of_object.get(record["id"])
        last_of_object[record["id"]] = record
    by_id = {record["history_id"]: record for record in records}
    diffs: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        new = by_id.get(row["history_id"], {})
        old = previous.get(row["history_id"])
        changes = []
        if row["history_type"] != "-":
            for field in fields:
                before = None if old is None else old.get(field)
                after = new.get(field)
                if old is None or before != after:
                    changes.append({"field": field, "old": _plain(before), "new": _plain(after)})
        diffs[row["history_id"]] = changes
    return diffs


def render(rows: Iterable[dict[str, Any]]) -> list[Change]:
    """Render a page of merged rows with people's names and changed fields."""
    page = list(rows)
    user_ids = {row["history_user_id"] for row in page if row["history_user_id"] is not None}
    names = dict(
        get_user_model()._default_manager.filter(pk__in=user_ids).values_list("pk", "username")
    )
    diffs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for label in {row["model"] for row in page}:
        of_model = [row for row in page if row["model"] == label]
        for history_id, changes in _diffs(label, of_model).items():
            diffs[(label, history_id)] = changes
    return [
        Change(
            id=row["history_id"],
            date=row["history_date"],
            type=HISTORY_TYPES.get(row["history_type"], row["history_type"]),
            user=names.get(row["history_user_id"]),
            model=row["model"],
            object_id=row["id"],
            changes=diffs.get((row["model"], row["history_id"]), []),
        )
        for row in page
    ]
