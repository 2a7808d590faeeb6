"""The admin index's dashboard (``flags.dashboard``, ``flags.charts``) and the flag page's chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts import roles
from accounts.models import User
from accounts.tests.factories import make_user
from flags import services
from flags.charts import bar_chart, daily_evaluations
from flags.dashboard import dashboard
from flags.models import Environment, Flag, FlagState, Project
from flags.services.evaluations import record_counts

DAY = timedelta(days=1)


def _toggle(flag: Flag, environment: Environment, actor: User | None) -> None:
    state = FlagState.objects.get(flag=flag, environment=environment)
    services.flag_toggle(state=state, enabled=True, actor=actor)


def _bars(html: str, testid: str) -> dict[str, str]:
    """Day → the ``<title>`` of its bar, in the SVG chart with ``data-testid=testid``."""
    found = re.search(rf'<svg class="fs-chart" data-testid="{testid}".*?</svg>', html, re.S)
    assert found is not None
    return dict(
        re.findall(r'<rect [^>]*data-day="([0-9-]+)"[^>]*><title>([^<]*)</title>', found.group())
    )


def _noon(days_ago: int) -> datetime:
    """The start of the UTC hour at noon ``days_ago`` days ago."""
    day = timezone.now().astimezone(UTC).date() - days_ago * DAY
    return datetime.combine(day, time(12), tzinfo=UTC)


def test_index__viewer__flags_by_state_match_the_database(
    client: Client, viewer: User, editor: User, project: Project, staging: Environment
) -> None:
    # Given three live flags (one on in staging) and an archived one
    flags = [services.flag_create(project=project, key=f"f{n}", name=f"F{n}") for n in range(3)]
    _toggle(flags[0], staging, editor)
    archived = services.flag_create(project=project, key="old", name="Old")
    services.flag_archive(flag=archived, actor=None)
    client.force_login(viewer)

    # When a Viewer opens the admin's index
    response = client.get("/admin/")

    # Then the numbers are the database's, per environment
    html = response.content.decode()
    assert response.status_code == 200
    for environment in project.environments.all():
        live = FlagState.objects.filter(environment=environment, flag__archived=False)
        on = live.filter(enabled=True).count()
        off = live.filter(enabled=False).count()
        assert f'data-testid="on-demo-{environment.key}">{on}<' in html
        assert f'data-testid="off-demo-{environment.key}">{off}<' in html
    assert 'data-testid="on-demo-staging">1<' in html
    assert 'data-testid="live-demo">3<' in html
    assert 'data-testid="archived-demo">1<' in html


def test_index__viewer__recent_changes_show_a_change(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given the editor turned new-checkout on in staging
    _toggle(boolean_flag, staging, editor)
    client.force_login(viewer)

    # When a Viewer opens the index
    html = client.get("/admin/").content.decode()

    # Then the change is listed, with a link to the audit log
    assert "new-checkout in Staging" in html
    assert 'data-testid="all-changes-link"' in html


@override_settings(FLAGSHIP_STALE_DAYS={"release": 0})
def test_index__viewer__a_stale_flag_with_its_reason_and_the_filtered_list(
    client: Client, viewer: User, project: Project
) -> None:
    # Given a stale release flag (stale after 0 days) and an operational one that is not
    services.flag_create(project=project, key="new-checkout", name="New checkout")
    services.flag_create(project=project, key="kill", name="Kill", lifecycle="operational")
    client.force_login(viewer)

    # When a Viewer opens the index
    html = client.get("/admin/").content.decode()

    # Then the stale flag is listed with why, with a link to the list filtered on stale flags
    assert 'data-testid="stale-flag-new-checkout"' in html
    assert "Serves one variant to everyone" in html
    assert 'data-testid="stale-flag-kill"' not in html
    assert 'href="/admin/flags/flag/?project=demo&amp;stale=yes"' in html


def test_index__viewer__chart_has_a_bar_per_day_with_its_count(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment, production: Environment
) -> None:
    # Given evaluations counted today (two environments) and three days ago, and 20 days ago
    record_counts(
        {
            (staging.pk, boolean_flag.pk, "on", _noon(0)): 5,
            (production.pk, boolean_flag.pk, "off", _noon(0)): 2,
            (staging.pk, boolean_flag.pk, "on", _noon(3)): 1,
            (staging.pk, boolean_flag.pk, "on", _noon(20)): 100,
        }
    )
    client.force_login(viewer)

    # When a Viewer opens the index
    html = client.get("/admin/").content.decode()

    # Then the chart has 14 bars, one per day, each titled with its day's total
    bars = _bars(html, "evaluations-chart")
    today = timezone.now().astimezone(UTC).date()
    assert len(bars) == 14
    assert bars[today.isoformat()] == f"{today}: 7 evaluations"
    assert bars[(today - 3 * DAY).isoformat()] == f"{today - 3 * DAY}: 1 evaluation"
    assert bars[(today - DAY).isoformat()] == f"{today - DAY}: 0 evaluations"
    assert (today - 20 * DAY).isoformat() not in bars
    assert "<script" not in html.split('data-testid="evaluations-chart"')[1].split("</svg>")[0]


def test_flag_page__chart_of_its_own_evaluations(
    client: Client, viewer: User, boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given evaluations of both flags today
    record_counts(
        {
            (staging.pk, boolean_flag.pk, "on", _noon(0)): 4,
            (staging.pk, string_flag.pk, "sale", _noon(0)): 9,
        }
    )
    client.force_login(viewer)

    # When a Viewer opens new-checkout's page
    html = client.get(f"/admin/flags/flag/{boolean_flag.pk}/change/").content.decode()

    # Then its chart counts its own evaluations only
    today = timezone.now().astimezone(UTC).date()
    bars = _bars(html, "flag-evaluations-chart")
    assert len(bars) == 14
    assert bars[today.isoformat()] == f"{today}: 4 evaluations"


def test_chart__labels_are_escaped() -> None:
    # Given a label with markup / When drawn / Then it is escaped
    svg = bar_chart([(timezone.now().date(), 1)], label="<b>&", testid='x"y')
    assert "<b>" not in svg
    assert "&lt;b&gt;&amp;" in svg
    assert 'data-testid="x&quot;y"' in svg


def test_index__no_role__no_flag_data(client: Client, boolean_flag: Flag) -> None:
    # Given a staff user in no role
    client.force_login(make_user(username="nobody"))

    # When they open the index
    response = client.get("/admin/")

    # Then no part of the dashboard is shown
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["dashboard"] == {}
    for part in ("flags-by-state", "stale-flags", "evaluations-chart"):
        assert f'data-testid="{part}"' not in html


@pytest.mark.parametrize("role", roles.ROLES)
def test_index__each_role__sees_the_dashboard(client: Client, role: str, project: Project) -> None:
    # Given a person in the role / When they open the index
    client.force_login(make_user(role=role))
    html = client.get("/admin/").content.decode()
    # Then every part is shown
    for part in ("flags-by-state", "stale-flags", "evaluations-chart"):
        assert f'data-testid="{part}"' in html


def _more_flags(project: Project, staging: Environment, keys: range) -> None:
    """Flags ``flag-<n>`` in ``project``, each evaluated yesterday in staging."""
    flags = [services.flag_create(project=project, key=f"flag-{n}", name=f"Flag {n}") for n in keys]
    record_counts({(staging.pk, flag.pk, "on", _noon(1)): 1 for flag in flags})


def _dashboard_queries(user: User) -> tuple[int, dict[str, Any]]:
    """The queries :func:`flags.dashboard.dashboard` makes for ``user``, and what it gives."""
    request = RequestFactory().get("/admin/")
    request.user = user
    with CaptureQueriesContext(connection) as queries:
        parts = dashboard(request)
    return len(queries), parts


@override_settings(FLAGSHIP_STALE_DAYS={"release": 0})
def test_index__queries_do_not_grow_with_flags_or_projects(
    client: Client,
    viewer: User,
    project: Project,
    staging: Environment,
    django_assert_max_num_queries: Any,
) -> None:
    # Given 3 stale flags with evaluations in one project
    _more_flags(project, staging, range(3))
    client.force_login(viewer)
    # When the dashboard is made for a Viewer
    viewer = User.objects.get(pk=viewer.pk)  # permissions not cached
    few, small = _dashboard_queries(viewer)
    # Given 30 such flags, and two more projects
    _more_flags(project, staging, range(3, 30))
    for key in ("shop", "blog"):
        services.project_create(key=key, name=key.title())
    # When it is made again, and the Viewer opens the index
    viewer = User.objects.get(pk=viewer.pk)
    many, large = _dashboard_queries(viewer)
    # (29: the recent changes leave FlagShip's own project out by the ids of its flags,
    # environments, states...: flags.history.feed.hidden_scope, a fixed number of queries; the
    # stale flags: those without a computed row (all of them here, no worker ran) and the stale
    # ones per project, flags.staleness)
    with django_assert_max_num_queries(29):
        assert client.get("/admin/").status_code == 200
    # Then it cost as many queries, and shows the first ten of the 30 stale flags
    assert many == few
    assert (len(small["stale_flags"]), small["stale_total"]) == (3, 3)
    assert (len(large["stale_flags"]), large["stale_total"]) == (10, 30)
    assert len(large["flags_by_state"]) == 3


def test_daily_evaluations__fourteen_days_oldest_first(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given one evaluation counted 13 days ago / When summed / Then it is the first day's
    record_counts({(staging.pk, boolean_flag.pk, "on", _noon(13)): 1})
    series = daily_evaluations()
    assert len(series) == 14
    assert series[0][1] == 1
    assert sum(count for _, count in series) == 1
