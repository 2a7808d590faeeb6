"""A project at scale: 10 000 flags in 3 environments, and a million rows of their history.

The catalogue is made as ``bench.audit.seed`` makes it (people by role, a project through the
services with its three environments, segments, ``flags.services.flags_bulk_create`` for the flags,
their variants and states, with history), plus what the flag list filters on: tags on most flags,
lifecycles, and live rules (with a condition, some with a segment) on a fifth of the states. The
months of history are ``bench.audit.seed``'s people at work (toggles, rules, ramps, renames, ...),
generated and written one slice of time at a time so that a million rows need no more memory than
a slice. ``manage.py seed_scale`` runs :func:`seed_scale` with progress bars.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg import sql
from psycopg.types.json import Jsonb

from accounts import roles
from accounts.models import User
from bench.audit.seed import (
    ATTRIBUTES,
    PASSWORD,
    PEOPLE,
    _History,
    _Row,
    _specs,
    _states,
    _times,
    _Work,
)
from flags import services
from flags.history.feed import audit_rows
from flags.models import Condition, Environment, Flag, FlagState, Project, Rule, Tag

MANAGER = "bench-manager"  # the staff user the benchmark signs in as (a release manager)
TAGS = ("checkout", "search", "payments", "mobile", "web", "growth", "platform", "experiment")
LIFECYCLES = (
    (Flag.Lifecycle.RELEASE, 60),
    (Flag.Lifecycle.EXPERIMENT, 15),
    (Flag.Lifecycle.OPERATIONAL, 15),
    (Flag.Lifecycle.PERMANENT, 10),
)
SLICE = 50_000  # changes generated, then written, at a time
LIVE_RULES = 0.2  # share of the states with live rules


class ProjectExistsError(Exception):
    """The project to seed exists already (the seeding refuses rather than adding to it)."""


@dataclass
class ScaleCatalogue:
    """What was seeded, and what the benchmark looks at."""

    project_id: int
    project_key: str
    environment_id: int
    environment_key: str
    flags: int
    states: int
    live_rules: int
    tagged: int
    history_rows: int
    busiest_flag_id: int
    busiest_flag_key: str
    tag_name: str
    actor: str


Advance = Callable[[int], None]
# Starts a progress bar (its label and total) and returns what advances it; closed at the end.
ProgressFactory = Callable[[str, int], Advance]


def quiet(label: str, total: int) -> Advance:
    """No progress bar."""
    return lambda count: None


def team() -> list[User]:
    """``bench.audit.seed``'s six people and the benchmark's release manager, reused if present."""
    made = []
    for index, name in enumerate((*PEOPLE, MANAGER)):
        user, created = User.objects.get_or_create(username=name, defaults={"is_staff": True})
        if created:
            if name == MANAGER:  # the one who signs in (hashing a password costs a second)
                user.set_password(PASSWORD)
                user.save(update_fields=["password"])
            role = roles.RELEASE_MANAGER if index % 3 == 0 else roles.EDITOR
            user.groups.add(Group.objects.get(name=role))
        made.append(user)
    return made


@transaction.atomic
def seed_scale(
    *,
    project_key: str = "scale",
    flags: int = 10_000,
    history: int = 1_000_000,
    seed: int = 7,
    progress: ProgressFactory = quiet,
) -> ScaleCatalogue:
    """A project of ``flags`` flags and at least ``history`` history rows in its scope, all or none.

    Raises :class:`ProjectExistsError` if a project ``project_key`` exists.
    """
    if Project.objects.filter(key=project_key).exists():
        raise ProjectExistsError(f'Project "{project_key}" exists already: nothing was seeded.')
    random = Random(seed)
    people = team()
    administrator = people[0]
    project = services.project_create(
        key=project_key, name=project_key.title(), actor=administrator
    )
    segments = [
        services.segment_create(
            project=project,
            key=f"segment-{number}",
            name=f"Segment {number}",
            conditions=[{"attribute": "plan", "operator": "in", "values": ["pro"]}],
            actor=administrator,
        ).pk
        for number in range(10)
    ]
    made = services.flags_bulk_create(
        project=project,
        specs=_specs(random, flags, "flag"),
        actor=administrator,
        progress=progress("Flags", flags),
    )
    _tag(random, made)
    _lifecycles(random, made, people)
    states = _states(project)
    _live_rules(random, project, segments)
    log = (_CopiedHistory if connection.vendor == "postgresql" else _History)(
        random, people[: len(PEOPLE)], segments
    )
    work = _Work(log, states, made)
    already = audit_rows(project_id=project.pk).count()
    wanted = max(0, history - already)
    _work(work, log, wanted, timezone.now(), progress("History", wanted))
    return catalogue(project_key, history_rows=already + log.count)


def catalogue(project_key: str, *, history_rows: int | None = None) -> ScaleCatalogue:
    """What :func:`seed_scale` seeded as project ``project_key``, read back from the database.

    The busiest flag is the first one made (the history's changes fall on flags by rank).
    ``history_rows``: counted (the project's audit rows) unless given.
    """
    project = Project.objects.get(key=project_key)
    production = Environment.objects.get(project=project, key="production")
    flags = Flag.objects.filter(project=project)
    busiest = flags.order_by("pk").first()
    assert busiest is not None  # noqa: S101  # seed_scale makes at least one flag
    if history_rows is None:
        history_rows = audit_rows(project_id=project.pk).count()
    return ScaleCatalogue(
        project_id=project.pk,
        project_key=project.key,
        environment_id=production.pk,
        environment_key=production.key,
        flags=flags.count(),
        states=FlagState.objects.filter(flag__project=project).count(),
        live_rules=Rule.objects.filter(state__flag__project=project).count(),
        tagged=flags.filter(tags__isnull=False).distinct().count(),
        history_rows=history_rows,
        busiest_flag_id=busiest.pk,
        busiest_flag_key=busiest.key,
        tag_name=TAGS[0],
        actor=PEOPLE[2],
    )


def _work(
    work: _Work, log: _History, wanted: int, now: datetime, advance: Callable[[int], None]
) -> None:
    """About ``wanted`` rows of people's changes over the months, written a slice at a time."""
    written = 0
    # About 1.2 rows per change (bench.audit.seed); the last day tops the count up if short.
    moments = _times(log.random, int(wanted / 1.2), now)
    while log.count < wanted:
        for _ in range(SLICE):
            when = next(moments, None)
            if when is None:
                when = now - timedelta(seconds=log.random.randrange(86_400))
            work.event(when)
            if log.count >= wanted:
                break
        log.write()
        advance(log.count - written)
        written = log.count


class _CopiedHistory(_History):
    """``bench.audit.seed``'s history, written with PostgreSQL's COPY: five times faster.

    The same rows as ``bulk_history_create`` writes (every historical column, the rules' segments
    as simple-history's many-to-many history rows), without building a model instance per row.
    The history ids are taken from the tables' own sequences first, so that the rules' segment
    rows can name the rule rows they belong to.
    """

    def _write(
        self, model: type[models.Model], historical: Any, history_type: str, rows: list[_Row]
    ) -> None:
        fields = list(historical._meta.concrete_fields)
        table = historical._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'history_id')) "
                "FROM generate_series(1, %s)",
                [table, len(rows)],
            )
            ids = [history_id for (history_id,) in cursor.fetchall()]
            columns = sql.SQL(", ").join(sql.Identifier(field.column) for field in fields)
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), columns)
            with cursor.cursor.copy(statement) as copy:
                for history_id, row in zip(ids, rows, strict=True):
                    copy.write_row(
                        [_column(field, history_id, history_type, row) for field in fields]
                    )
            if model is Rule and history_type != "-":
                self._segments(cursor, historical, ids, rows)

    @staticmethod
    def _segments(cursor: Any, historical: Any, ids: list[int], rows: list[_Row]) -> None:
        """The rules' segments as simple-history records them (``id``: the link row's id)."""
        through = historical.segments.model._meta.db_table
        statement = sql.SQL("COPY {} (id, history_id, rule_id, segment_id) FROM STDIN").format(
            sql.Identifier(through)
        )
        with cursor.cursor.copy(statement) as copy:
            for history_id, row in zip(ids, rows, strict=True):
                for number, segment in enumerate(row.segments or ()):
                    rule_id = row.values["id"]
                    copy.write_row([rule_id * 100 + number, history_id, rule_id, segment])


def _column(field: models.Field[Any, Any], history_id: int, history_type: str, row: _Row) -> Any:
    """One column of a history row, as COPY takes it."""
    match field.attname:
        case "history_id":
            return history_id
        case "history_date":
            return row.date
        case "history_type":
            return history_type
        case "history_user_id":
            return row.user.pk
        case "history_change_reason":
            return row.reason or None
    value = row.values[field.attname] if field.attname in row.values else field.get_default()
    if isinstance(field, models.JSONField):
        return Jsonb(value)
    return value


def _tag(random: Random, flags: list[Flag]) -> int:
    """One or two tags on three flags in four (the first tag on about a fifth of them)."""
    tags = [Tag.objects.get_or_create(name=name)[0] for name in TAGS]
    through = Flag.tags.through
    links: list[Any] = []
    for flag in flags:
        if random.random() < 0.75:
            chosen = random.sample(tags, random.choice((1, 1, 2)))
            links.extend(through(flag_id=flag.pk, tag_id=tag.pk) for tag in chosen)
    through.objects.bulk_create(links, batch_size=5000)
    return len({link.flag_id for link in links})


def _lifecycles(random: Random, flags: list[Flag], people: list[User]) -> None:
    """Lifecycles in realistic shares, and an owner for most flags."""
    kinds = [kind for kind, _ in LIFECYCLES]
    weights = [weight for _, weight in LIFECYCLES]
    for flag in flags:
        flag.lifecycle = random.choices(kinds, weights)[0]
        flag.owner = random.choice(people) if random.random() < 0.8 else None
    Flag.objects.bulk_update(flags, ["lifecycle", "owner"], batch_size=5000)


def _live_rules(random: Random, project: Project, segments: list[int]) -> int:
    """One or two live rules, each with a condition, on a fifth of the project's states."""
    states = list(
        FlagState.objects.filter(flag__project=project).select_related("off_variant").order_by("pk")
    )
    rules: list[Rule] = []
    for state in states:
        if random.random() < LIVE_RULES:
            rules.extend(
                Rule(
                    state=state,
                    order=order,
                    description="Beta testers first",
                    rollout=random.choice((None, 5000, 25000)),
                    bucket_by="targetingKey",
                    serve={"variant": state.off_variant.key},
                )
                for order in range(random.choice((1, 1, 2)))
            )
    Rule.objects.bulk_create(rules, batch_size=5000)
    conditions = []
    links = []
    for rule in rules:
        attribute, operator, values = random.choice(ATTRIBUTES)
        conditions.append(
            Condition(rule=rule, order=0, attribute=attribute, operator=operator, values=values)
        )
        if random.random() < 0.3:
            links.append(Rule.segments.through(rule_id=rule.pk, segment_id=random.choice(segments)))
    Condition.objects.bulk_create(conditions, batch_size=5000)
    Rule.segments.through.objects.bulk_create(links, batch_size=5000)
    return len(rules)
