"""Reading history (django-simple-history): per object, and the audit feed across models.

History rows of several models are merged with a SQL ``UNION`` of their common columns, so one
page costs one query for the rows, one for the people, and two per model on the page for the
changed fields — never one per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import CharField, Model, Q, QuerySet, Value

HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}
# Each audited model, by label, with how its historical rows reach a project (None: global).
AUDITED: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "project": ("flags", ("id",)),
    "environment": ("flags", ("project_id",)),
    "flag": ("flags", ("project_id",)),
    "variant": ("flags", ("flag__project_id",)),
    "flagstate": ("flags", ("flag__project_id",)),
    "rule": ("flags", ("state__flag__project_id",)),
    "condition": ("flags", ("rule__state__flag__project_id", "segment__project_id")),
    "prerequisite": ("flags", ("state__flag__project_id",)),
    "segment": ("flags", ("project_id",)),
    "tag": ("flags", None),
    "apikey": ("accounts", ("environment__project_id",)),
}
COLUMNS = ("history_id", "history_date", "history_type", "history_user_id", "id", "model")
BOOKKEEPING = frozenset(
    {"history_id", "history_date", "history_type", "history_user", "history_change_reason"}
)


def historical(label: str) -> type[Model]:
    """The historical model of an audited model label."""
    app_label = AUDITED[label][0]
    return apps.get_model(app_label, f"Historical{label}")


def part(label: str, condition: Q | None = None) -> QuerySet[Any]:
    """One model's history rows as the common columns (``condition`` filters them)."""
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


def audit_rows(*, project_id: int | None = None, user_id: int | None = None) -> QuerySet[Any]:
    """Recent changes across every audited model, optionally of one project or one person."""
    parts = []
    for label, (_, paths) in AUDITED.items():
        condition = Q()
        if project_id is not None:
            if paths is None:
                continue
            for path in paths:
                condition |= Q(**{path: project_id})
        if user_id is not None:
            condition &= Q(history_user_id=user_id)
        parts.append(part(label, condition))
    return merged(parts)


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
