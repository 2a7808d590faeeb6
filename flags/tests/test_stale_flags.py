"""Stale flags (``flags.stale``): each rule with a controllable clock, and where they are shown.

The clock is ``stale_flags(now=...)``; the past is written into the history rows' dates (every
row of one transaction shares a moment, and a test is one transaction).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagEvaluationCount, FlagState, Project, Rule
from flags.stale import NOT_EVALUATED, SINGLE_VARIANT, single_variant, stale_flags

from .evaluation_data import serve, state

DAY = timedelta(days=1)


def state_history(flag: Flag) -> Any:
    """The history rows of the flag's states, oldest first."""
    model: Any = FlagState.history.model
    return model.objects.filter(flag_id=flag.pk).order_by("history_id")


def dated(rows: list[Any], when: datetime) -> None:
    """Move history rows to ``when``."""
    for row in rows:
        type(row).objects.filter(pk=row.pk).update(history_date=when)


def created(flag: Flag, when: datetime) -> None:
    """The flag, and every history row of its states, as if made at ``when``."""
    Flag.objects.filter(pk=flag.pk).update(created_at=when)
    flag.refresh_from_db()
    dated(list(state_history(flag)), when)


def evaluated(flag: Flag, environment: Environment, hour: datetime) -> None:
    """One evaluation counted at ``hour``."""
    FlagEvaluationCount.objects.create(
        flag=flag, environment=environment, variant="on", hour=hour, count=1
    )


@pytest.fixture
def start() -> datetime:
    """A moment 100 days ago, on the hour: the tests' day 0."""
    return (timezone.now() - 100 * DAY).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def release(project: Project, start: datetime) -> Flag:
    """A release flag (boolean), off everywhere since day 0."""
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    created(flag, start)
    return flag


# --- Rule (a): one variant to everyone -------------------------------------------------------
def test_off_everywhere__stale_after_30_days__serves_one_variant(
    release: Flag, start: datetime
) -> None:
    # Given a release flag off everywhere since day 0 (default: 30 days for release flags)
    # When it is judged on day 29, then on day 31
    before = stale_flags([release], now=start + 29 * DAY)
    after = stale_flags([release], now=start + 31 * DAY)
    # Then it is stale only from day 30, for serving one variant to everyone
    assert before == {}
    assert after[release.pk].code == SINGLE_VARIANT
    assert after[release.pk].since == start + 30 * DAY
    assert "one variant to everyone" in after[release.pk].reason


def test_off__default_serve_changed_while_off__still_off_since_day_0(
    release: Flag, staging: Environment, start: datetime
) -> None:
    # Given staging's default serve changed on day 20 while the flag stayed off
    serve(release, staging, "on", enabled=False)
    latest = state_history(release).filter(id=state(release, staging).pk).last()
    dated([latest], start + 20 * DAY)
    # When it is judged on day 31
    found = stale_flags([release], now=start + 31 * DAY)
    # Then it has served its off variant since day 0: stale since day 30
    assert found[release.pk].since == start + 30 * DAY


def test_on_with_a_rule__not_one_variant__until_the_rule_is_removed(
    release: Flag, staging: Environment, start: datetime
) -> None:
    # Given staging on, serving "on" by default, with a rule, switched on day 5
    serve(release, staging, "on")
    staging_state = state(release, staging)
    rule = services.rule_create(
        state=staging_state,
        serve={"variant": "off"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
    )
    dated([state_history(release).filter(id=staging_state.pk).last()], start + 5 * DAY)
    rule_history: Any = Rule.history.model
    dated(list(rule_history.objects.filter(state_id=staging_state.pk)), start + 5 * DAY)
    evaluated(release, staging, start + 60 * DAY)  # evaluated lately: rule (b) does not hold
    # When it is judged on day 60
    # Then it is not stale: the rule serves some people another variant
    assert stale_flags([release], now=start + 60 * DAY) == {}
    # When the rule is removed on day 40
    services.rule_delete(rule=Rule.objects.get(pk=rule.pk), actor=None)
    removal = rule_history.objects.filter(state_id=staging_state.pk, history_type="-")
    dated(list(removal), start + 40 * DAY)
    # Then it serves "on" to everyone in staging (and off elsewhere) since day 40
    assert stale_flags([release], now=start + 69 * DAY) == {}
    found = stale_flags([release], now=start + 71 * DAY)
    assert (found[release.pk].code, found[release.pk].since) == (SINGLE_VARIANT, start + 70 * DAY)


def test_single_variant__of_serve_documents() -> None:
    # Given serve documents: one variant, a split, a split giving every share to one variant
    # When each is read / Then only the first and the last serve one variant
    assert single_variant({"variant": "on"}) == "on"
    assert single_variant({"split": [{"variant": "on", "weight": 50_000}] * 2}) == "on"
    split = {"split": [{"variant": "on", "weight": 60_000}, {"variant": "off", "weight": 40_000}]}
    assert single_variant(split) is None
    assert single_variant({"split": [{"variant": "on", "weight": 100_000}, {"variant": "off"}]})


# --- Rule (b): nobody evaluated it -----------------------------------------------------------
def test_not_evaluated__30_days_after_the_last_count__or_after_creation(
    release: Flag, staging: Environment, start: datetime
) -> None:
    # Given a split in staging (so rule (a) does not hold), never evaluated
    services.flag_state_update(
        state=state(release, staging),
        actor=None,
        enabled=True,
        default_serve={
            "split": [{"variant": "on", "weight": 50_000}, {"variant": "off", "weight": 50_000}]
        },
    )
    # When judged on day 31 / Then stale since day 30: never evaluated
    never = stale_flags([release], now=start + 31 * DAY)[release.pk]
    assert (never.code, never.since) == (NOT_EVALUATED, start + 30 * DAY)
    assert "never evaluated" in never.reason
    # Given an evaluation counted during the hour starting on day 10
    evaluated(release, staging, start + 10 * DAY)
    # When judged on day 39 / Then not stale; on day 41, stale since the hour's end + 30 days
    assert stale_flags([release], now=start + 39 * DAY) == {}
    late = stale_flags([release], now=start + 41 * DAY)[release.pk]
    assert (late.code, late.since) == (NOT_EVALUATED, start + 40 * DAY + timedelta(hours=1))
    assert "never" not in late.reason


# --- Lifecycles ------------------------------------------------------------------------------
def test_operational_and_permanent__never_stale__unless_configured(
    project: Project, start: datetime
) -> None:
    # Given an operational and a permanent flag, off everywhere since day 0, and an archived one
    flags = [
        services.flag_create(project=project, key=key, name=key, lifecycle=lifecycle)
        for key, lifecycle in (("kill", "operational"), ("plan", "permanent"))
    ]
    archived = services.flag_create(project=project, key="old", name="Old")
    for flag in [*flags, archived]:
        created(flag, start)
    Flag.objects.filter(pk=archived.pk).update(archived=True)
    archived.refresh_from_db()
    # When judged on day 99 / Then none is stale
    assert stale_flags([*flags, archived], now=start + 99 * DAY) == {}
    # When operational flags are stale after 7 days (FLAGSHIP_STALE_DAYS)
    with override_settings(FLAGSHIP_STALE_DAYS={"operational": 7}):
        found = stale_flags([*flags, archived], now=start + 8 * DAY)
    # Then the operational one is; release flags keep their default
    assert list(found) == [flags[0].pk]


# --- Where they are shown --------------------------------------------------------------------
@pytest.fixture
def two_flags(project: Project) -> tuple[Flag, Flag]:
    """A stale release flag (release flags stale after 0 days) and a live operational one."""
    stale = services.flag_create(project=project, key="new-checkout", name="New checkout")
    live = services.flag_create(project=project, key="kill", name="Kill", lifecycle="operational")
    return stale, live


@override_settings(FLAGSHIP_STALE_DAYS={"release": 0})
def test_api__stale_field__for_a_viewer(
    client: Client, viewer: User, two_flags: tuple[Flag, Flag]
) -> None:
    # Given a stale flag and one that is not
    client.force_login(viewer)
    # When a Viewer lists the flags, and reads one
    listed = {f["key"]: f for f in client.get("/api/v1/projects/demo/flags/").json()["results"]}
    one = client.get("/api/v1/projects/demo/flags/new-checkout/").json()
    # Then the stale one says why and since when; the other is null
    assert listed["new-checkout"]["stale"]["code"] == SINGLE_VARIANT
    assert listed["new-checkout"]["stale"]["since"].endswith("Z")
    assert listed["new-checkout"]["stale"]["reason"]
    assert listed["kill"]["stale"] is None
    assert one["stale"] == listed["new-checkout"]["stale"]
    assert one["last_evaluated"] is None


@override_settings(FLAGSHIP_STALE_DAYS={"release": 0})
def test_admin_list__stale_badge_and_filter__for_a_viewer(
    client: Client, viewer: User, two_flags: tuple[Flag, Flag]
) -> None:
    # Given a stale flag and one that is not
    client.force_login(viewer)
    # When a Viewer opens the flag list, then filters it on stale flags
    everything = client.get("/admin/flags/flag/?project=demo").content.decode()
    stale_only = client.get("/admin/flags/flag/?project=demo&stale=yes").content.decode()
    # Then the stale flag has a badge, and the filter lists it alone
    assert 'data-testid="stale-new-checkout"' in everything
    assert 'data-testid="stale-kill"' not in everything
    assert "Stale" in everything
    assert "new-checkout" in stale_only
    assert '<a href="/admin/flags/flag/' + str(two_flags[1].pk) not in stale_only


@override_settings(FLAGSHIP_STALE_DAYS={"release": 0})
def test_report_stale_flags__text_and_json(two_flags: tuple[Flag, Flag]) -> None:
    # Given a stale flag and one that is not
    # When the report is written as text, then as JSON
    text, document = StringIO(), StringIO()
    call_command("report_stale_flags", stdout=text)
    call_command("report_stale_flags", "--json", "--project", "demo", stdout=document)
    # Then the table lists the stale flag with its reason
    lines = text.getvalue().splitlines()
    assert lines[0].split() == ["PROJECT", "FLAG", "LIFECYCLE", "STALE", "SINCE", "REASON"]
    assert lines[1].split()[:3] == ["demo", "new-checkout", "release"]
    assert "one variant to everyone" in lines[1]
    assert lines[-1] == "1 stale flag(s)."
    # And the JSON too
    report = json.loads(document.getvalue())
    assert [(f["project"], f["flag"], f["code"]) for f in report["flags"]] == [
        ("demo", "new-checkout", SINGLE_VARIANT)
    ]
    assert report["flags"][0]["last_evaluated"] is None


def test_report_stale_flags__none__and_unknown_project(project: Project) -> None:
    # Given no stale flag
    out = StringIO()
    # When the report runs / Then it says so
    call_command("report_stale_flags", stdout=out)
    assert out.getvalue().strip() == "No stale flags."
    # When it is asked for a project that does not exist / Then it fails with the reason
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("report_stale_flags", "--project", "nope")
