"""Changes for people: audit-feed rows as entries in the words the admin forms use.

::

    from flags.history import entries, feed

    for entry in entries.entries(feed.audit_rows(flag_id=flag.pk)[:50]):
        entry.subject  # "Rule “Beta testers first” in Production · new-checkout"
        entry.changes  # [FieldChange(label="Rollout", old="10 %", new="30 %"), ...]

``entries(rows)`` takes rows as ``feed.audit_rows``, ``feed.merged`` and ``feed.part`` give them
(mappings with ``history_id``, ``history_date``, ``history_type``, ``history_user_id``, ``id`` and
``model``), of any audited models in any order, and returns one ``Entry`` per row in that order:

- ``date``, ``kind`` (``created``, ``changed``, ``deleted``), ``user_id`` and ``username`` (``None``
  for the system or a person deleted since), ``reason`` (``None`` when none was given);
- ``subject``: what changed, in words ("new-checkout in Production", "Variant sale of banner-text",
  "Condition of rule “EU” in Staging · new-checkout", "Segment Beta testers", "Environment
  Production (Demo shop)", "API key checkout-service in Production (Demo shop)");
- ``flag_id``/``flag_key`` and ``environment_id``/``environment_name`` when the change belongs to
  a flag or an environment (a rule and its conditions belong to both);
- ``changes``: ``FieldChange(label, old, new)``, labelled as the forms label the fields ("Default
  serve", "Rollout", "Off variant", "Enabled") with values in ``flags.words``' words ("30 %",
  "everyone", "on"/"off", operators as the forms name them), related objects by name, and "—" for
  an empty value. A created row lists what it was created with, a deleted one what it had.
  Bookkeeping (version, order, timestamps, secrets) is left out, except that a rule's order
  reads as its 1-based "Position".

Objects are named from the history tables, so what has been deleted since is still named (its
newest recorded name). A page costs a constant number of queries, whatever its length: one per
model on the page (each row with its previous version), one per many-to-many field, one per kind
of object named, and one for the people.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import pairwise
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.text import capfirst

from ..formats import format_percentage, format_variant_value, same_json
from ..words import OPERATOR_LABELS, rollout_in_words, serve_in_words, value_in_words
from .feed import AUDITED, HISTORY_TYPES, historical

__all__ = ["EMPTY", "Entry", "FieldChange", "entries"]

EMPTY = "—"
# Fields that services keep up to date rather than people, and secrets: never in the changes.
# A rule's order is the exception, shown as its position.
BOOKKEEPING = frozenset({"id", "version", "order", "updated_at", "ruleset_version"})
# The parent an entry's subject names is not repeated among its changes.
PARENTS: dict[str, frozenset[str]] = {
    "environment": frozenset({"project"}),
    "flag": frozenset({"project"}),
    "variant": frozenset({"flag"}),
    "flagstate": frozenset({"flag", "environment"}),
    "rule": frozenset({"state"}),
    "condition": frozenset({"rule", "segment"}),
    "prerequisite": frozenset({"state"}),
    "segment": frozenset({"project"}),
    "apikey": frozenset({"environment", "created_by"}),
    "scheduledchange": frozenset({"state"}),
    "scheduledstep": frozenset({"change"}),
    "changerequest": frozenset({"environment"}),
    "changerequestreview": frozenset({"change_request"}),
}
# Many-to-many fields with history: model -> (field, history table model, column, named model).
MANY: dict[str, tuple[str, str, str, str]] = {
    "rule": ("segments", "HistoricalRule_segments", "segment_id", "segment"),
    "flag": ("tags", "HistoricalFlag_tags", "tag_id", "tag"),
}
# What is looked up about objects that rows name, in an order where each kind's references to
# other kinds are known before those kinds are looked up (a condition's rule names its state,
# which names its flag and environment, whose project is named last).
NAMED: dict[str, tuple[str, ...]] = {
    "changerequest": ("title", "environment_id"),
    "scheduledchange": ("state_id",),
    "rule": ("description", "state_id"),
    "flagstate": ("flag_id", "environment_id"),
    "flag": ("key", "project_id", "kind"),
    "environment": ("name", "project_id"),
    "project": ("name",),
    "segment": ("name",),
    "variant": ("key",),
    "tag": ("name",),
}
REFERS = {
    "state_id": "flagstate",
    "flag_id": "flag",
    "environment_id": "environment",
    "project_id": "project",
}
NAME_FIELD = {"flag": "key", "variant": "key", "user": "username"}  # otherwise "name"


@dataclass(frozen=True)
class FieldChange:
    """One field of a change, in words: its label, and its value before and after ("—": none)."""

    label: str
    old: str
    new: str


@dataclass(frozen=True)
class Entry:
    """One history row for people: who changed what, when, why, and from what to what."""

    history_id: int
    model: str
    object_id: int
    date: datetime
    kind: str
    user_id: int | None
    username: str | None
    reason: str | None
    subject: str
    flag_id: int | None
    flag_key: str | None
    environment_id: int | None
    environment_name: str | None
    changes: list[FieldChange]


def entries(rows: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """One entry per feed row, in order, named and described in words (constant queries)."""
    page = list(rows)
    if not page:
        return []
    records, previous = _records(page)
    many = _many(records)
    names = _Names.load(records, many)
    return [_entry(row, records, previous, many, names) for row in page]


# --- Loading -------------------------------------------------------------------------------------

Key = tuple[str, int]  # (model label, history id)


def _records(
    page: list[Mapping[str, Any]],
) -> tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]]:
    """Every row of the page in full, and the version of its object just before it.

    One query per model: the page's rows, and for each the newest older row of the same object
    (a correlated subquery, served by the index on the object id).
    """
    records: dict[Key, dict[str, Any]] = {}
    by_label: dict[str, list[int]] = defaultdict(list)
    for row in page:
        by_label[row["model"]].append(row["history_id"])
    for label, history_ids in by_label.items():
        rows = historical(label)._default_manager.order_by()
        older = (
            rows.filter(id=OuterRef("id"))
            .filter(
                Q(history_date__lt=OuterRef("history_date"))
                | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
            )
            .order_by("-history_date", "-history_id")
            .values("history_id")[:1]
        )
        before = rows.filter(history_id__in=history_ids).annotate(before=Subquery(older))
        # One statement: the page's ids and their previous ones (an OR of the two would make
        # PostgreSQL scan the whole table instead of looking both up in the primary key).
        wanted = rows.filter(history_id__in=history_ids).values("history_id")
        found = rows.filter(history_id__in=wanted.union(before.values("before")))
        for record in found.values():
            records[(label, record["history_id"])] = record
    previous: dict[Key, dict[str, Any]] = {}
    versions: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for (label, _), record in records.items():
        versions[(label, record["id"])].append(record)
    for (label, _), found_versions in versions.items():
        found_versions.sort(key=lambda record: (record["history_date"], record["history_id"]))
        for earlier, later in pairwise(found_versions):
            previous[(label, later["history_id"])] = earlier
    return records, previous


def _many(records: Mapping[Key, Mapping[str, Any]]) -> dict[Key, frozenset[int]]:
    """The related ids (a rule's segments, a flag's tags) of each loaded rule and flag row."""
    many: dict[Key, frozenset[int]] = {}
    for label, (_, table, column, _) in MANY.items():
        history_ids = [history_id for (of, history_id) in records if of == label]
        if not history_ids:
            continue
        related: dict[int, set[int]] = {history_id: set() for history_id in history_ids}
        rows = apps.get_model("flags", table)._default_manager.filter(history_id__in=history_ids)
        for history_id, related_id in rows.values_list("history_id", column):
            related[history_id].add(related_id)
        many |= {(label, history_id): frozenset(ids) for history_id, ids in related.items()}
    return many


def _newest(label: str, ids: set[Any], fields: tuple[str, ...]) -> dict[int, dict[str, Any]]:
    """What the newest history row of each object says (deleted objects included), by id."""
    ids = {value for value in ids if value is not None}
    if not ids:
        return {}
    rows = historical(label)._default_manager.order_by()
    newest = rows.filter(id__in=ids).values("id").annotate(last=Max("history_id")).values("last")
    return {row["id"]: row for row in rows.filter(history_id__in=newest).values("id", *fields)}


class _Names:
    """What the rows of a page refer to, looked up once for the whole page."""

    def __init__(self) -> None:
        self.known: dict[str, dict[int, dict[str, Any]]] = {}

    @classmethod
    def load(
        cls, records: Mapping[Key, Mapping[str, Any]], many: Mapping[Key, frozenset[int]]
    ) -> _Names:
        """Look up every object the rows (and the objects they name) refer to."""
        wanted: dict[str, set[Any]] = defaultdict(set)
        for (label, _), record in records.items():
            wanted["user"].add(record["history_user_id"])
            for field in _model(label)._meta.concrete_fields:
                if field.is_relation and field.related_model is not None:
                    wanted[_label_of(field)].add(record[field.attname])
        for (label, _), related in many.items():
            wanted[MANY[label][3]] |= related
        names = cls()
        for label, fields in NAMED.items():
            names.known[label] = _newest(label, wanted[label], fields)
            for found in names.known[label].values():
                for column in fields:
                    if column in REFERS:
                        wanted[REFERS[column]].add(found[column])
        ids = {value for value in wanted["user"] if value is not None}
        users = get_user_model()._default_manager.filter(pk__in=ids) if ids else None
        names.known["user"] = (
            {pk: {"username": username} for pk, username in users.values_list("pk", "username")}
            if users is not None
            else {}
        )
        return names

    def get(self, label: str, object_id: Any, field: str) -> Any:
        """One looked-up field of an object (``None`` when it is unknown)."""
        return self.known.get(label, {}).get(object_id, {}).get(field)

    def name(self, label: str, object_id: Any) -> str | None:
        """How people call an object: a key (flags, variants), a username, or a name."""
        found = self.get(label, object_id, NAME_FIELD.get(label, "name"))
        return None if found is None else str(found)


# --- Describing ----------------------------------------------------------------------------------


@cache
def _model(label: str) -> type[models.Model]:
    return apps.get_model(AUDITED[label], label)


def _label_of(field: Any) -> str:
    """The model label a foreign key refers to ("user" for people)."""
    return str(field.related_model._meta.model_name)


@cache
def _diffed(label: str) -> tuple[models.Field[Any, Any], ...]:
    """The fields of a model whose changes people read (a rule's order among them)."""
    parents = PARENTS.get(label, frozenset())
    return tuple(
        field
        for field in _model(label)._meta.concrete_fields
        if (field.editable and field.name not in BOOKKEEPING and field.name not in parents)
        or (label == "rule" and field.name == "order")
    )


def _entry(
    row: Mapping[str, Any],
    records: Mapping[Key, Mapping[str, Any]],
    previous: Mapping[Key, Mapping[str, Any]],
    many: Mapping[Key, frozenset[int]],
    names: _Names,
) -> Entry:
    label, history_id = row["model"], row["history_id"]
    record = records.get((label, history_id), row)
    before = previous.get((label, history_id))
    flag_id, environment_id = _where(label, record, names)
    flag_key = record.get("key") if label == "flag" else names.name("flag", flag_id)
    environment = (
        record.get("name") if label == "environment" else names.name("environment", environment_id)
    )
    user_id = row["history_user_id"]
    reason = (record.get("history_change_reason") or "").strip()
    return Entry(
        history_id=history_id,
        model=label,
        object_id=row["id"],
        date=row["history_date"],
        kind=HISTORY_TYPES.get(row["history_type"], row["history_type"]),
        user_id=user_id,
        username=names.name("user", user_id),
        reason=reason or None,
        subject=_subject(label, record, names, flag_key, environment),
        flag_id=flag_id,
        flag_key=flag_key,
        environment_id=environment_id,
        environment_name=environment,
        changes=_changes(label, row["history_type"], record, before, many, names),
    )


def _where(label: str, record: Mapping[str, Any], names: _Names) -> tuple[Any, Any]:
    """The flag and the environment a row belongs to, if any."""
    state_id = record.get("state_id")
    if label == "condition":
        state_id = names.get("rule", record.get("rule_id"), "state_id")
    if label == "scheduledstep":
        state_id = names.get("scheduledchange", record.get("change_id"), "state_id")
    if label in ("rule", "condition", "prerequisite", "scheduledchange", "scheduledstep"):
        return names.get("flagstate", state_id, "flag_id"), names.get(
            "flagstate", state_id, "environment_id"
        )
    if label == "flag":
        return record["id"], None
    if label in ("variant", "flagstate"):
        return record.get("flag_id"), record.get("environment_id")
    if label == "environment":
        return None, record["id"]
    if label in ("apikey", "changerequest"):
        return None, record.get("environment_id")
    if label == "changerequestreview":
        return None, names.get("changerequest", record.get("change_request_id"), "environment_id")
    return None, None


def _subject(
    label: str,
    record: Mapping[str, Any],
    names: _Names,
    flag: str | None,
    environment: str | None,
) -> str:
    """What a row changed, in words."""
    flag = flag or f"flag #{record.get('flag_id') or '?'}"
    where = f"{environment or 'an unknown environment'} · {flag}"
    if label == "project":
        return f"Project {record['name']}"
    if label == "environment":
        project = _or_unknown(names.name("project", record["project_id"]))
        return f"Environment {record['name']} ({project})"
    if label == "flag":
        return f"Flag {record['key']}"
    if label == "variant":
        return f"Variant {record['key']} of {flag}"
    if label == "flagstate":
        return f"{flag} in {environment or 'an unknown environment'}"
    if label == "rule":
        return f"{_rule(record.get('description'))} in {where}"
    if label == "condition" and record.get("rule_id") is not None:
        description = names.get("rule", record["rule_id"], "description")
        rule = f"rule “{description}”" if description else "an untitled rule"
        return f"Condition of {rule} in {where}"
    if label == "condition":
        return f"Condition of segment {_or_unknown(names.name('segment', record['segment_id']))}"
    if label == "prerequisite":
        return f"Prerequisite of {flag} in {environment or 'an unknown environment'}"
    if label == "segment":
        return f"Segment {record['name']}"
    if label == "tag":
        return f"Tag {record['name']}"
    if label == "apikey":
        return _api_key(record, names, environment)
    if label == "scheduledchange":
        return f"Scheduled change #{record['id']} in {where}"
    if label == "scheduledstep":
        return f"Step {record['order']} of scheduled change #{record['change_id']} in {where}"
    if label == "changerequest":
        return f"Change request #{record['id']} “{record['title']}” in {_or_unknown(environment)}"
    if label == "changerequestreview":
        number = record["change_request_id"]
        title = names.get("changerequest", number, "title")
        return f"Review of change request #{number} “{_or_unknown(title)}”"
    return f"{label} #{record['id']}"


def _rule(description: str | None) -> str:
    return f"Rule “{description}”" if description else "Untitled rule"


def _or_unknown(name: str | None) -> str:
    return name if name is not None else "(unknown)"


def _api_key(record: Mapping[str, Any], names: _Names, environment: str | None) -> str:
    if record.get("environment_id") is None:
        owner = _or_unknown(names.name("user", record.get("user_id")))
        return f"Admin token {record['name']} of {owner}"
    project = names.name(
        "project", names.get("environment", record["environment_id"], "project_id")
    )
    return f"API key {record['name']} in {environment} ({_or_unknown(project)})"


def _changes(  # noqa: PLR0917  # a row, its previous version, and what they name
    label: str,
    history_type: str,
    record: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    many: Mapping[Key, frozenset[int]],
    names: _Names,
) -> list[FieldChange]:
    """The fields a row changed (created: what it was created with; deleted: what it had)."""
    kind = names.get("flag", record.get("flag_id"), "kind") if label == "variant" else None
    changes = []
    for field in _diffed(label):
        old = None if before is None else before.get(field.attname)
        new = record.get(field.attname)
        words = _worder(label, field, names, kind)
        change = _change(history_type, before, field, old, new, words)
        if change is not None:
            changes.append(change)
    if label in MANY:
        name, _, _, named = MANY[label]
        many_field = _model(label)._meta.get_field(name)
        old_ids = many.get((label, before["history_id"])) if before is not None else None
        new_ids = many.get((label, record["history_id"]), frozenset())

        def joined(ids: Any) -> str:
            listed = sorted(_or_unknown(names.name(named, related)) for related in ids or ())
            return ", ".join(listed) or EMPTY

        change = _change(history_type, before, many_field, old_ids, new_ids, joined)
        if change is not None:
            changes.append(change)
    return changes


def _worder(
    label: str, field: models.Field[Any, Any], names: _Names, kind: str | None
) -> Callable[[Any], str]:
    """``_words`` for one field."""
    return lambda value: _words(label, field, value, names, kind)


def _change(  # noqa: PLR0917  # one field's two versions and how to say them
    history_type: str,
    before: Mapping[str, Any] | None,
    field: Any,
    old: Any,
    new: Any,
    words: Callable[[Any], str],
) -> FieldChange | None:
    """One field's change in words, or ``None`` when there is nothing to say."""
    label = "Position" if field.name == "order" else capfirst(str(field.verbose_name))
    if history_type in {"-", "+"} or before is None:
        # What it had, or was created with: the values said, not the empty ones or options off.
        shown = words(new)
        unset = isinstance(field, models.BooleanField) and not new and field.name != "enabled"
        if shown == EMPTY or unset:
            return None
        return (
            FieldChange(label, shown, EMPTY)
            if history_type == "-"
            else FieldChange(label, EMPTY, shown)
        )
    if _same(field, old, new):
        return None
    return FieldChange(label, words(old), words(new))


def _same(field: Any, old: Any, new: Any) -> bool:
    if isinstance(field, models.JSONField):
        return same_json(old, new)
    return bool(old == new)


def _words(
    label: str, field: models.Field[Any, Any], value: Any, names: _Names, kind: str | None
) -> str:
    """A stored value as the admin's forms show it."""
    name = field.name
    if name in ("serve", "default_serve"):
        return serve_in_words(value)
    if name == "rollout":
        return rollout_in_words(value)
    if value is None:
        return EMPTY
    if label == "scheduledstep" and name == "percentage":
        return f"{format_percentage(int(value))} %"
    if label == "rule" and name == "order":
        return str(int(value) + 1)
    if name == "enabled":
        return "on" if value else "off"
    if name == "operator":
        return OPERATOR_LABELS.get(str(value), str(value))
    if name in ("values", "variants") and isinstance(value, list):
        return ", ".join(value_in_words(item) for item in value) or EMPTY
    if label == "variant" and name == "value":
        shown = format_variant_value(kind, value) if kind else json.dumps(value, ensure_ascii=False)
        return shown or EMPTY
    if field.is_relation and field.related_model is not None:
        return _or_unknown(names.name(_label_of(field), value))
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value) or EMPTY
