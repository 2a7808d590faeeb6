"""Half a year of a busy FlagShip's history, written in bulk, and Django's own log of the same size.

The catalogue is made by the services (projects, segments, API keys) and by
``flags.services.flags_bulk_create`` (flags, variants, states: engine-checked, with history).
Then months of people's work are written as history rows through simple-history's bulk helper
(``bulk_history_create``; deletions, which it cannot write, as historical rows directly, and rule
segments as simple-history's many-to-many history rows): toggles, default serves, rules created,
ramped, edited, reordered and deleted with their conditions, flags renamed and archived, variants
revalued, segments edited, prerequisites added and removed, by six people, some with a reason,
busy flags busier than others. What the audit page reads is only the history, so the live rows
of rules that the history creates are not written.

The baseline is ``django.contrib.admin.LogEntry`` with as many rows: the history the framework
itself keeps, shown by its own changelist.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from random import Random
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from accounts import roles
from accounts.models import User
from accounts.services import api_key_issue
from flags import services
from flags.history.feed import audit_rows
from flags.models import Condition, Environment, Flag, FlagState, Prerequisite, Project, Rule
from flags.services import FlagSpec

PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank")
PEOPLE_WEIGHTS = (30, 25, 15, 12, 10, 8)
VIEWER = "bench-viewer"
PASSWORD = "bench-password-not-secret"  # noqa: S105  # a throwaway database's user
DAYS = 182
BATCH = 5000
ATTRIBUTES = (
    ("country", "in", ["DE", "AT", "CH"]),
    ("email", "str_ends_with", ["@example.com"]),
    ("plan", "in", ["pro", "enterprise"]),
    ("appVersion", "semver_gte", ["2.4.0"]),
    ("age", "num_gte", [18]),
    ("beta", "in", [True]),
)
REASONS = (
    "Incident 4711: turning it off until the fix ships",
    "Ramp-up agreed in the release meeting",
    "Customer request (ticket 2291)",
    "Experiment finished",
)
RAMP = (1000, 5000, 10000, 25000, 50000, 100000)
ENVIRONMENT_WEIGHTS = (50, 30, 20)  # development, staging, production
MAX_RULES = 6


@dataclass
class Catalogue:
    """What the measurements look at."""

    project_id: int
    environment_id: int
    flag_key: str
    flag_id: int
    actor: str
    window: tuple[datetime, datetime]
    history_rows: int = 0
    log_rows: int = 0


@dataclass
class _RuleNow:
    id: int
    order: int
    description: str
    rollout: int | None
    serve: dict[str, Any]
    conditions: list[dict[str, Any]] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)


@dataclass
class _StateNow:
    id: int
    flag_id: int
    environment_id: int
    enabled: bool
    off_variant_id: int
    default_serve: dict[str, Any]
    variants: list[str]
    version: int = 1
    rules: list[_RuleNow] = field(default_factory=list)
    prerequisites: dict[int, int] = field(default_factory=dict)  # parent flag -> prerequisite id


@dataclass
class _Row:
    type: str
    values: dict[str, Any]
    date: datetime
    user: User
    reason: str
    segments: list[int] | None = None


class _History:
    """Months of changes, accumulated as rows per model, then written in bulk."""

    def __init__(self, random: Random, people: list[User], segments: list[int]) -> None:
        self.random = random
        self.people = people
        self.segments = segments
        self.rows: dict[type[models.Model], list[_Row]] = defaultdict(list)
        self.count = 0
        self.next_id = {Rule: 10_000_000, Condition: 10_000_000, Prerequisite: 10_000_000}

    def add(
        self,
        model: type[models.Model],
        history_type: str,
        values: dict[str, Any],
        when: datetime,
        **extra: Any,
    ) -> None:
        """One history row of ``model``."""
        who = self.random.choices(self.people, PEOPLE_WEIGHTS)[0]
        reason = self.random.choice(REASONS) if self.random.random() < 0.1 else ""
        self.rows[model].append(_Row(history_type, dict(values), when, who, reason, **extra))
        self.count += 1

    def new_id(self, model: type[models.Model]) -> int:
        """An id for an object only the history knows (a rule, condition or prerequisite)."""
        self.next_id[model] += 1
        return self.next_id[model]

    def write(self) -> None:
        """Every accumulated row: ``bulk_history_create`` for + and ~, historical rows for -.

        The rows written are forgotten (``count`` goes on): a long history can be written in
        slices of time, each once generated.
        """
        for model, rows in self.rows.items():
            historical = model.history.model  # type: ignore[attr-defined]  # simple-history's
            for history_type in ("+", "~", "-"):
                chosen = [row for row in rows if row.type == history_type]
                for start in range(0, len(chosen), BATCH):
                    self._write(model, historical, history_type, chosen[start : start + BATCH])
        self.rows.clear()

    def _write(
        self, model: type[models.Model], historical: Any, history_type: str, rows: list[_Row]
    ) -> None:
        if history_type == "-":
            historical.objects.bulk_create(
                historical(
                    history_type="-",
                    history_date=row.date,
                    history_user=row.user,
                    history_change_reason=row.reason or None,
                    **row.values,
                )
                for row in rows
            )
            return
        instances = []
        for row in rows:
            instance = model(**row.values)
            instance._history_date = row.date  # type: ignore[attr-defined]  # read by simple-history
            instance._history_user = row.user  # type: ignore[attr-defined]  # read by simple-history
            instance._change_reason = row.reason or None  # type: ignore[attr-defined]  # idem
            instances.append(instance)
        written = model.history.bulk_history_create(  # type: ignore[attr-defined]  # simple-history's
            instances, update=history_type == "~"
        )
        if model is Rule:
            # The rule's segments as simple-history records them (``id``: the link row's id).
            through = historical.segments.model
            through.objects.bulk_create(
                through(
                    history=record,
                    id=row.values["id"] * 100 + number,
                    rule_id=row.values["id"],
                    segment_id=segment,
                )
                for record, row in zip(written, rows, strict=True)
                for number, segment in enumerate(row.segments or ())
            )


def people() -> list[User]:
    """Six editors and release managers, an administrator, and the viewer who reads the pages."""
    made = []
    for index, name in enumerate(PEOPLE):
        user = User.objects.create_user(username=name, password=PASSWORD, is_staff=True)
        role = roles.RELEASE_MANAGER if index % 3 == 0 else roles.EDITOR
        user.groups.add(Group.objects.get(name=role))
        made.append(user)
    viewer = User.objects.create_user(username=VIEWER, password=PASSWORD, is_staff=True)
    viewer.groups.add(Group.objects.get(name=roles.VIEWER))
    # The baseline page (Django's own LogEntry changelist) needs the framework's permission.
    viewer.user_permissions.add(Permission.objects.get(codename="view_logentry"))
    return made


def _specs(random: Random, count: int, prefix: str) -> list[FlagSpec]:
    specs = []
    for number in range(count):
        key = f"{prefix}-{number:03}"
        if random.random() < 0.25:
            variants = [("control", "Control"), ("a", "Variant A"), ("b", "Variant B")]
            specs.append(FlagSpec(key=key, name=key.title(), kind="string", variants=variants))
        else:
            specs.append(FlagSpec(key=key, name=key.title(), enabled=random.random() < 0.4))
    return specs


def _states(project: Project) -> list[_StateNow]:
    states = FlagState.objects.filter(flag__project=project).order_by(
        "flag_id", "environment__order"
    )
    variants: dict[int, list[str]] = defaultdict(list)
    for flag_id, key in Flag.objects.filter(project=project).values_list("id", "variants__key"):
        variants[flag_id].append(key)
    return [
        _StateNow(
            id=state.pk,
            flag_id=state.flag_id,
            environment_id=state.environment_id,
            enabled=state.enabled,
            off_variant_id=state.off_variant_id,
            default_serve=state.default_serve,
            variants=variants[state.flag_id],
        )
        for state in states
    ]


def _times(random: Random, count: int, end: datetime) -> Iterator[datetime]:
    """``count`` moments over the last ``DAYS`` days, in order."""
    start = end - timedelta(days=DAYS)
    span = (end - start).total_seconds()
    moments = sorted(random.random() for _ in range(count))
    for moment in moments:
        yield start + timedelta(seconds=span * moment)


def _state_values(state: _StateNow, when: datetime) -> dict[str, Any]:
    return {
        "updated_at": when,
        "id": state.id,
        "flag_id": state.flag_id,
        "environment_id": state.environment_id,
        "enabled": state.enabled,
        "off_variant_id": state.off_variant_id,
        "default_serve": state.default_serve,
        "version": state.version,
    }


def _rule_values(state: _StateNow, rule: _RuleNow) -> dict[str, Any]:
    return {
        "id": rule.id,
        "state_id": state.id,
        "order": rule.order,
        "description": rule.description,
        "rollout": rule.rollout,
        "bucket_by": "targetingKey",
        "serve": rule.serve,
    }


def _condition_values(rule: _RuleNow, condition: dict[str, Any]) -> dict[str, Any]:
    return {**condition, "rule_id": rule.id, "segment_id": None}


class _Work:
    """What people do to flags, one event at a time, recorded in ``history``."""

    def __init__(self, history: _History, states: list[_StateNow], flags: list[Flag]) -> None:
        self.history = history
        self.random = history.random
        self.states = states
        self.flags = {flag.pk: flag for flag in flags}
        self.by_flag: dict[int, list[_StateNow]] = defaultdict(list)
        for state in states:
            self.by_flag[state.flag_id].append(state)
        self.order = list(self.by_flag)
        # Some flags are much busier than others (Zipf, s = 0.6: the busiest of 300 gets about
        # 4 % of the changes), and development changes more often than production.
        self.weights = [1 / (rank + 1) ** 0.6 for rank in range(len(self.order))]
        # What random.choices computes from the weights on every call: once, for 10 000 flags.
        self.cumulative = list(accumulate(self.weights))
        self.flag_ids = list(self.flags)

    def event(self, when: datetime) -> None:
        """One change by someone: mostly toggles, then rules, then everything else."""
        flag_id = self.random.choices(self.order, cum_weights=self.cumulative)[0]
        state = self.random.choices(self.by_flag[flag_id], ENVIRONMENT_WEIGHTS)[0]
        roll = self.random.random()
        if len(state.rules) >= MAX_RULES and 0.63 <= roll < 0.71:
            roll = 0.84  # a full state loses a rule rather than gaining one
        if roll < 0.55 or (roll < 0.85 and not state.rules and roll >= 0.71):
            self.toggle(state, when)
        elif roll < 0.63:
            self.default_serve(state, when)
        elif roll < 0.71:
            self.rule_create(state, when)
        elif roll < 0.80:
            self.rule_ramp(self.random.choice(state.rules), state, when)
        elif roll < 0.83:
            self.rule_conditions(self.random.choice(state.rules), state, when)
        elif roll < 0.85:
            self.rule_delete(self.random.choice(state.rules), state, when)
        elif roll < 0.88 and len(state.rules) > 1:
            self.rules_reorder(state, when)
        elif roll < 0.94:
            self.flag_edit(self.flags[state.flag_id], when)
        elif roll < 0.97:
            self.segment_edit(when)
        else:
            self.prerequisite(state, when)

    def _state_changed(self, state: _StateNow, when: datetime) -> None:
        state.version += 1
        self.history.add(FlagState, "~", _state_values(state, when), when)

    def toggle(self, state: _StateNow, when: datetime) -> None:
        """On or off."""
        state.enabled = not state.enabled
        self._state_changed(state, when)

    def default_serve(self, state: _StateNow, when: datetime) -> None:
        """Another variant, or a split, for everyone else."""
        if self.random.random() < 0.3 and len(state.variants) > 1:
            first, second = self.random.sample(state.variants, 2)
            state.default_serve = {
                "split": [{"variant": first, "weight": 50000}, {"variant": second, "weight": 50000}]
            }
        else:
            state.default_serve = {"variant": self.random.choice(state.variants)}
        self._state_changed(state, when)

    def rule_create(self, state: _StateNow, when: datetime) -> None:
        """A new rule, last, with a condition or two and sometimes a segment."""
        rule = _RuleNow(
            id=self.history.new_id(Rule),
            order=len(state.rules),
            description=self.random.choice(("Beta testers first", "EU only", "Staff", "")),
            rollout=self.random.choice((None, *RAMP[:3])),
            serve={"variant": self.random.choice(state.variants)},
        )
        state.rules.append(rule)
        self.history.add(Rule, "+", _rule_values(state, rule), when)
        self._conditions(rule, when)
        if self.random.random() < 0.3:
            rule.segments = [self.random.choice(self.history.segments)]
            self.history.add(Rule, "~", _rule_values(state, rule), when, segments=rule.segments)

    def _conditions(self, rule: _RuleNow, when: datetime) -> None:
        for order in range(self.random.choice((1, 1, 2))):
            attribute, operator, values = self.random.choice(ATTRIBUTES)
            condition = {
                "id": self.history.new_id(Condition),
                "order": order,
                "attribute": attribute,
                "operator": operator,
                "values": values,
                "negate": False,
                "case_insensitive": False,
            }
            rule.conditions.append(condition)
            self.history.add(Condition, "+", _condition_values(rule, condition), when)

    def rule_ramp(self, rule: _RuleNow, state: _StateNow, when: datetime) -> None:
        """The next step of a rollout."""
        later = [step for step in RAMP if rule.rollout is None or step > rule.rollout]
        rule.rollout = later[0] if later else None
        self.history.add(Rule, "~", _rule_values(state, rule), when, segments=rule.segments)

    def rule_conditions(self, rule: _RuleNow, state: _StateNow, when: datetime) -> None:
        """Conditions replaced: the old ones deleted, new ones created."""
        for condition in rule.conditions:
            self.history.add(Condition, "-", _condition_values(rule, condition), when)
        rule.conditions = []
        self._conditions(rule, when)

    def rule_delete(self, rule: _RuleNow, state: _StateNow, when: datetime) -> None:
        """A rule removed, its conditions with it."""
        state.rules.remove(rule)
        self.history.add(Rule, "-", _rule_values(state, rule), when)
        for condition in rule.conditions:
            self.history.add(Condition, "-", _condition_values(rule, condition), when)

    def rules_reorder(self, state: _StateNow, when: datetime) -> None:
        """The last rule moved to the top."""
        state.rules.insert(0, state.rules.pop())
        for order, rule in enumerate(state.rules):
            if rule.order != order:
                rule.order = order
                self.history.add(Rule, "~", _rule_values(state, rule), when, segments=rule.segments)

    def flag_edit(self, flag: Flag, when: datetime) -> None:
        """A new description, or archived and back."""
        if self.random.random() < 0.2:
            flag.archived = not flag.archived
        else:
            flag.description = f"{flag.name}: {self.random.choice(REASONS)}"
        values = {
            column.attname: getattr(flag, column.attname) for column in Flag._meta.concrete_fields
        }
        self.history.add(Flag, "~", values, when)

    def segment_edit(self, when: datetime) -> None:
        """A segment condition's values changed."""
        segment_id = self.random.choice(self.history.segments)
        attribute, operator, values = self.random.choice(ATTRIBUTES)
        condition = {
            "id": self.history.new_id(Condition),
            "order": 0,
            "attribute": attribute,
            "operator": operator,
            "values": values,
            "negate": False,
            "case_insensitive": False,
            "rule_id": None,
            "segment_id": segment_id,
        }
        self.history.add(Condition, "+", condition, when)

    def prerequisite(self, state: _StateNow, when: datetime) -> None:
        """Another flag required first, or no longer."""
        parent = self.random.choice(self.flag_ids)
        if parent == state.flag_id:
            return
        values = {"state_id": state.id, "flag_id": parent, "variants": [], "order": 0}
        if parent in state.prerequisites:
            values["id"] = state.prerequisites.pop(parent)
            self.history.add(Prerequisite, "-", values, when)
        else:
            values["id"] = state.prerequisites[parent] = self.history.new_id(Prerequisite)
            self.history.add(Prerequisite, "+", values, when)


@transaction.atomic
def seed(*, rows: int, flags: int = 300, seed: int = 7) -> Catalogue:
    """About ``rows`` history rows (and as many admin log entries) in the current database."""
    random = Random(seed)
    team = people()
    administrator = team[0]
    shop = services.project_create(key="shop", name="Shop", actor=administrator)
    small = [
        services.project_create(key=key, name=key.title(), actor=administrator)
        for key in ("blog", "tools")
    ]
    segments = [
        services.segment_create(
            project=shop,
            key=f"segment-{number}",
            name=f"Segment {number}",
            conditions=[{"attribute": "plan", "operator": "in", "values": ["pro"]}],
            actor=administrator,
        ).pk
        for number in range(10)
    ]
    made = services.flags_bulk_create(
        project=shop, specs=_specs(random, flags, "flag"), actor=administrator
    )
    for project in small:
        services.flags_bulk_create(
            project=project, specs=_specs(random, 20, project.key), actor=administrator
        )
    for environment in Environment.objects.filter(project=shop):
        for kind in ("server", "client"):
            api_key_issue(
                kind=kind,
                name=f"{kind}-{environment.key}",
                environment=environment,
                actor=administrator,
            )
    states = _states(shop)
    history = _History(random, team, segments)
    work = _Work(history, states, made)
    already = audit_rows().count()
    now = timezone.now()
    # About 1.2 rows per change: plan that many changes over the months, then top the count up
    # with the last day's changes if the draw fell short.
    for when in _times(random, max(0, int((rows - already) / 1.2)), now):
        work.event(when)
        if history.count + already >= rows:
            break
    while history.count + already < rows:
        work.event(now - timedelta(seconds=random.randrange(86_400)))
    history.write()
    busiest = work.by_flag[work.order[0]][0]
    production = Environment.objects.get(project=shop, key="production")
    week = now - timedelta(days=90)
    log_rows = log_entries(random, rows, team, now)
    return Catalogue(
        project_id=shop.pk,
        environment_id=production.pk,
        flag_key=work.flags[busiest.flag_id].key,
        flag_id=busiest.flag_id,
        actor=PEOPLE[2],
        window=(week, week + timedelta(days=7)),
        history_rows=already + history.count,
        log_rows=log_rows,
    )


def log_entries(random: Random, rows: int, team: list[User], now: datetime) -> int:
    """``rows`` admin log entries over the same months (what Django's admin writes itself)."""
    types = list(ContentType.objects.get_for_models(Flag, FlagState, Rule, Condition).values())
    actions = (ADDITION, CHANGE, CHANGE, CHANGE, DELETION)
    entries = [
        LogEntry(
            action_time=when,
            user=random.choices(team, PEOPLE_WEIGHTS)[0],
            content_type=random.choice(types),
            object_id=str(random.randrange(1, 1000)),
            object_repr=f"flag-{random.randrange(300):03} in Production",
            action_flag=random.choice(actions),
            change_message=json.dumps([{"changed": {"fields": ["Enabled"]}}]),
        )
        for when in _times(random, rows, now)
    ]
    LogEntry.objects.bulk_create(entries, batch_size=BATCH)
    return len(entries)
