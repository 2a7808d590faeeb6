"""Stored stale inputs (``flags.staleness``): the stored verdict is the live one, always.

Every test compares with :func:`flags.stale.stale_flags` (judged live from the history) at
several moments: the SQL filter on clean rows (:func:`stale_q`), :func:`stale_in` and
:func:`stale_verdicts` (clean rows read, dirty and missing ones judged live). The past is
written into history rows' dates (as in ``test_stale_flags``); those writes bypass the
services, so the worker's job (:func:`refresh`) computes the rows after them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts.models import User
from flags import services, worker
from flags.dashboard import stale_rows
from flags.models import Flag, FlagStaleness, FlagState, Prerequisite, Project, Rule
from flags.services.evaluations import record_counts
from flags.stale import NOT_EVALUATED, SINGLE_VARIANT, stale_flags
from flags.staleness import refresh, stale_in, stale_q, stale_verdicts

from .evaluation_data import serve, state

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def backdate(flag: Flag, when: datetime) -> None:
    """The flag, and every history row of its states, rules and prerequisites, made at ``when``."""
    Flag.objects.filter(pk=flag.pk).update(created_at=when)
    flag.refresh_from_db()
    state_ids = list(flag.states.values_list("pk", flat=True))
    history: Any = FlagState.history.model
    history.objects.filter(flag_id=flag.pk).update(history_date=when)
    FlagState.objects.filter(flag=flag).update(updated_at=when)
    for model in (Rule, Prerequisite):
        model_history: Any = model.history.model
        model_history.objects.filter(state_id__in=state_ids).update(history_date=when)


def agree(flags: Iterable[Flag], now: datetime) -> dict[int, tuple[str, datetime]]:
    """Assert that every reading of the stored inputs gives the live verdicts; return them."""
    listed = [Flag.objects.get(pk=flag.pk) for flag in flags]
    live = stale_flags(listed, now=now)
    assert stale_verdicts(listed, now=now) == live
    scope = Flag.objects.filter(pk__in=[flag.pk for flag in listed])
    assert set(scope.filter(stale_in(scope, now)).values_list("pk", flat=True)) == set(live)
    clean = scope.filter(staleness__dirty=False)
    assert set(clean.filter(stale_q(now)).values_list("pk", flat=True)) == {
        pk for pk in live if clean.filter(pk=pk).exists()
    }
    return {pk: (found.code, found.since) for pk, found in live.items()}


def row(flag: Flag) -> FlagStaleness:
    """The flag's stored row."""
    return FlagStaleness.objects.get(flag_id=flag.pk)


@pytest.fixture
def start() -> datetime:
    """A moment 100 days ago, on the hour: day 0."""
    return (timezone.now() - 100 * DAY).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def flags(project: Project, start: datetime) -> dict[str, Flag]:
    """Release ``off`` (off everywhere), release ``on`` (on everywhere, serving "on"), experiment
    ``ruled`` (on in staging with a rule, evaluated on day 10), operational ``ops``; all from
    day 0, and their rows computed."""
    made = {
        "off": services.flag_create(project=project, key="off", name="Off"),
        "on": services.flag_create(project=project, key="on", name="On"),
        "ruled": services.flag_create(
            project=project, key="ruled", name="Ruled", lifecycle="experiment"
        ),
        "ops": services.flag_create(
            project=project, key="ops", name="Ops", lifecycle="operational"
        ),
    }
    for environment in project.environments.all():
        serve(made["on"], environment, "on")
    staging = project.environments.get(key="staging")
    serve(made["ruled"], staging, "on")
    services.rule_create(
        state=state(made["ruled"], staging),
        serve={"variant": "off"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
    )
    for flag in made.values():
        backdate(flag, start)
    record_counts({(staging.pk, made["ruled"].pk, "on", start + 10 * DAY): 1})
    assert refresh() >= len(made)  # and FlagShip's own flags
    assert not FlagStaleness.objects.filter(dirty=True).exists()
    return made


# --- time passing, clean rows -----------------------------------------------------------------
BOUNDARIES = [
    7 * DAY - SECOND,
    7 * DAY,
    29 * DAY,
    30 * DAY - SECOND,
    30 * DAY,
    31 * DAY,
    40 * DAY + HOUR - SECOND,
    40 * DAY + HOUR,
    45 * DAY,
    50 * DAY + HOUR - SECOND,
    50 * DAY + HOUR,
    60 * DAY - SECOND,
    60 * DAY,
    99 * DAY,
]


@pytest.mark.parametrize("days", [None, {"release": 7, "experiment": 40, "operational": 60}])
@pytest.mark.parametrize("offset", BOUNDARIES)
def test_clean_rows__same_verdicts_as_live__at_every_boundary(
    flags: dict[str, Flag], start: datetime, offset: timedelta, days: dict[str, int] | None
) -> None:
    # Given clean rows for flags that turn stale on days 7, 30, 40 + 1 hour, 50 + 1 hour, 60
    settings = {} if days is None else {"FLAGSHIP_STALE_DAYS": days}
    with override_settings(**settings):
        # When they are judged at, just before and after each boundary
        verdicts = agree(flags.values(), start + offset)
    # Then the stored rows give the live verdicts (reason and since included), and they are
    # what the rules say
    expected: dict[int, tuple[str, datetime]] = {}
    release = 30 if days is None else days["release"]
    experiment = 30 if days is None else days["experiment"]
    for key in ("off", "on"):
        if offset >= release * DAY:
            expected[flags[key].pk] = (SINGLE_VARIANT, start + release * DAY)
    quiet = start + 10 * DAY + HOUR
    if offset >= quiet - start + experiment * DAY:
        expected[flags["ruled"].pk] = (NOT_EVALUATED, quiet + experiment * DAY)
    if days is not None and offset >= 60 * DAY:
        expected[flags["ops"].pk] = (SINGLE_VARIANT, start + 60 * DAY)
    assert verdicts == expected


# --- each kind of change ----------------------------------------------------------------------
def _toggle(flags: dict[str, Flag], project: Project) -> Flag:
    staging = project.environments.get(key="staging")
    services.flag_toggle(state=state(flags["off"], staging), enabled=True, actor=None)
    return flags["off"]


def _serve(flags: dict[str, Flag], project: Project) -> Flag:
    staging = project.environments.get(key="staging")
    services.flag_state_update(
        state=state(flags["on"], staging), actor=None, default_serve={"variant": "off"}
    )
    return flags["on"]


def _rule_add(flags: dict[str, Flag], project: Project) -> Flag:
    staging = project.environments.get(key="staging")
    services.rule_create(
        state=state(flags["on"], staging),
        serve={"variant": "off"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["FR"]}],
    )
    return flags["on"]


def _rule_remove(flags: dict[str, Flag], project: Project) -> Flag:
    services.rule_delete(rule=Rule.objects.get(state__flag=flags["ruled"]), actor=None)
    return flags["ruled"]


def _prerequisite_add(flags: dict[str, Flag], project: Project) -> Flag:
    staging = project.environments.get(key="staging")
    services.prerequisite_add(state=state(flags["on"], staging), parent=flags["ops"], actor=None)
    return flags["on"]


def _prerequisite_remove(flags: dict[str, Flag], project: Project) -> Flag:
    staging = project.environments.get(key="staging")
    prerequisite = services.prerequisite_add(
        state=state(flags["on"], staging), parent=flags["ops"], actor=None
    )
    backdate(flags["on"], timezone.now() - 100 * DAY)
    refresh()
    services.prerequisite_remove(prerequisite=prerequisite, actor=None)
    return flags["on"]


def _archive(flags: dict[str, Flag], project: Project) -> Flag:
    services.flag_archive(flag=flags["off"], actor=None)
    return flags["off"]


def _unarchive(flags: dict[str, Flag], project: Project) -> Flag:
    services.flag_archive(flag=flags["off"], actor=None)
    refresh()
    services.flag_unarchive(flag=Flag.objects.get(pk=flags["off"].pk), actor=None)
    return flags["off"]


def _environment(flags: dict[str, Flag], project: Project) -> Flag:
    services.environment_create(project=project, key="qa", name="QA")
    return flags["on"]


def _created(flags: dict[str, Flag], project: Project) -> Flag:
    return services.flag_create(project=project, key="fresh", name="Fresh")


CHANGES: dict[str, Callable[[dict[str, Flag], Project], Flag]] = {
    "toggle": _toggle,
    "serve": _serve,
    "rule-add": _rule_add,
    "rule-remove": _rule_remove,
    "prerequisite-add": _prerequisite_add,
    "prerequisite-remove": _prerequisite_remove,
    "archive": _archive,
    "unarchive": _unarchive,
    "environment": _environment,
    "flag-create": _created,
}


def moments(start: datetime) -> list[datetime]:
    """Before and after the change's 30 days, and before it."""
    now = timezone.now()
    return [start + 31 * DAY, start + 95 * DAY, now + 29 * DAY, now + 31 * DAY, now + 80 * DAY]


@pytest.mark.parametrize("change", CHANGES)
def test_each_change__marks_the_row_dirty__verdicts_stay_the_live_ones(
    flags: dict[str, Flag], project: Project, start: datetime, change: str
) -> None:
    # Given clean rows, and live verdicts that the change alters
    everyone = [*flags.values()]
    whens = moments(start)
    before = {when: agree(everyone, when) for when in whens}
    # When the flag changes through a service
    changed = CHANGES[change](flags, project)
    # Then its row is dirty in the same transaction, and every reading gives the live verdicts
    assert row(changed).dirty
    after = {when: agree([*everyone, changed], when) for when in whens}
    # And once the worker's job ran, the clean rows give them too
    assert refresh() >= 1
    assert not row(changed).dirty
    assert {when: agree([*everyone, changed], when) for when in whens} == after
    if change not in ("archive", "unarchive", "flag-create"):  # those change no verdict
        assert before != after


def test_counts_stored__move_clean_rows_forward(
    flags: dict[str, Flag], project: Project, start: datetime
) -> None:
    # Given the ruled flag, last evaluated on day 10: stale from day 40 + 1 hour
    staging = project.environments.get(key="staging")
    ruled = flags["ruled"]
    assert agree([ruled], start + 45 * DAY)
    # When evaluations of day 44 are stored (as the worker stores them)
    record_counts({(staging.pk, ruled.pk, "on", start + 44 * DAY): 3})
    # Then its row stays clean, moved on in the same transaction, and agrees with live
    assert not row(ruled).dirty
    assert row(ruled).last_evaluated == start + 44 * DAY
    assert agree([ruled], start + 45 * DAY) == {}
    assert agree([ruled], start + 74 * DAY + HOUR) == {
        ruled.pk: (NOT_EVALUATED, start + 74 * DAY + HOUR)
    }
    # And an older hour stored later moves nothing back
    record_counts({(staging.pk, ruled.pk, "on", start + 20 * DAY): 1})
    assert row(ruled).last_evaluated == start + 44 * DAY
    assert agree([ruled], start + 74 * DAY + HOUR)


# --- dirty and missing rows, the worker -------------------------------------------------------
def test_dirty_and_missing_rows__judged_live__until_the_worker_computes_them(
    flags: dict[str, Flag], project: Project, start: datetime
) -> None:
    # Given one flag whose row is missing and one whose row is dirty (and wrong)
    FlagStaleness.objects.filter(flag=flags["off"]).delete()
    FlagStaleness.objects.filter(flag=flags["on"]).update(
        dirty=True, single_since=None, quiet_since=timezone.now()
    )
    # When they are judged / Then they are judged live
    for when in moments(start):
        agree(flags.values(), when)
    assert agree(flags.values(), start + 31 * DAY)[flags["off"].pk][0] == SINGLE_VARIANT
    # When the worker's job runs
    assert refresh() == 2
    # Then both rows are computed, clean, and give the same verdicts
    assert row(flags["off"]).single_since == start
    assert row(flags["on"]).single_since == start
    assert not FlagStaleness.objects.filter(dirty=True).exists()
    for when in moments(start):
        agree(flags.values(), when)
    assert refresh() == 0


def test_worker__runs_the_refresh_job() -> None:
    # Given the worker's periodic jobs / Then the stale inputs' refresh is one
    jobs = {job.name: job for job in worker.PERIODIC}
    assert jobs["staleness.refresh"].run is refresh


def test_deleted_flag__its_row_goes(flags: dict[str, Flag]) -> None:
    # Given a flag with a row / When it is deleted / Then its row goes too
    services.flag_archive(flag=flags["ops"], actor=None)
    services.flag_delete(flag=Flag.objects.get(pk=flags["ops"].pk), actor=None)
    assert not FlagStaleness.objects.filter(flag_id=flags["ops"].pk).exists()


# --- query counts -----------------------------------------------------------------------------
def _many(project: Project, start: datetime, numbers: range) -> list[Flag]:
    made = [
        services.flag_create(project=project, key=f"many-{n}", name=f"Many {n}") for n in numbers
    ]
    for flag in made:
        backdate(flag, start)
    refresh()
    return made


def _queries(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def test_query_counts__the_same_for_few_and_many_flags(project: Project, start: datetime) -> None:
    # Given 3 stale flags, then 12, with clean rows, and one flag changed since (dirty)
    few = _many(project, start, range(3))
    now = timezone.now()
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    url = "/admin/flags/flag/?project=demo&stale=yes"
    counts_few = (
        _queries(lambda: stale_verdicts(few, now=now)),
        _queries(stale_rows),
        _queries(lambda: client.get(url)),
    )
    many = few + _many(project, start, range(3, 12))
    services.flag_toggle(
        state=many[0].states.first(),  # type: ignore[arg-type]
        enabled=True,
        actor=None,
    )
    # When their verdicts, the dashboard's stale flags and the filtered list are read
    counts_many = (
        _queries(lambda: stale_verdicts(many, now=now)),
        _queries(stale_rows),
        _queries(lambda: client.get(url)),
    )
    # Then as many queries are made, plus the live judgement of the dirty flag (the list: for
    # the filter and for the page's badges)
    live = _queries(lambda: stale_flags([many[0]], now=now))
    assert counts_few[0] == 1
    assert counts_many[0] == 1 + live
    assert counts_many[1] == counts_few[1] + live
    assert counts_many[2] == counts_few[2] + 2 * live
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    for flag in many:
        assert f'data-testid="stale-{flag.key}"' in body
