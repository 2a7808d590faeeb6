"""POST /api/v1/sdk/evaluations: SDKs report evaluation counts, added per flag, variant and hour."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import ApiKey, User
from accounts.services import api_key_issue, api_key_revoke
from flags import services
from flags.evaluation import counts as counts_view
from flags.models import Environment, Flag, FlagEvaluationCount, Project
from flags.services import evaluations

from .evaluation_data import issue, issue_admin

URL = "/api/v1/sdk/evaluations"


_started: list[datetime] = []


@pytest.fixture(autouse=True)
def _one_hour_per_test() -> Iterator[None]:
    """Pin "this hour" to the test's start, so a test running across an hour's end agrees.

    The body built at 21:59:59 and the assertion made at 22:00:00 name the same hour.
    """
    _started.append(timezone.now())
    yield
    _started.pop()


def this_hour(offset: int = 0) -> datetime:
    """The start of the UTC hour the test started in, ``offset`` hours later."""
    now = (_started[-1] if _started else timezone.now()).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=offset)


def iso(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(flag: str = "new-checkout", variant: str | None = "on", **changes: Any) -> dict[str, Any]:
    return {"flag": flag, "variant": variant, "hour": iso(this_hour()), "count": 5, **changes}


def post(client: Client, secret: str | None, body: Any, **headers: str) -> Any:
    if secret is not None:
        headers["X-API-Key"] = secret
    return client.post(URL, body, content_type="application/json", headers=headers)


def stored() -> dict[tuple[str, str, str, datetime], int]:
    """Every stored count by (environment key, flag key, variant, hour)."""
    return {
        (row.environment.key, row.flag.key, row.variant, row.hour): row.count
        for row in FlagEvaluationCount.objects.select_related("environment", "flag")
    }


@pytest.fixture
def server_key(staging: Environment) -> str:
    return issue(staging, ApiKey.Kind.SERVER)


@pytest.fixture
def client_key(staging: Environment) -> str:
    return issue(staging, ApiKey.Kind.CLIENT)


@pytest.fixture
def visible_flag(project: Project) -> Flag:
    """A client-visible boolean flag ``dark-mode``."""
    return services.flag_create(
        project=project, key="dark-mode", name="Dark mode", client_visible=True
    )


# --- Who may report -------------------------------------------------------------------------
def test_server_key__reports__is_202_and_counts_stored(
    client: Client, server_key: str, boolean_flag: Flag, string_flag: Flag
) -> None:
    """Given a server key, when it reports two counts, then 202 and both are stored."""
    body = {
        "sdk": "flagship-python/1.0.0",
        "counts": [entry(count=42), entry("banner-text", "sale", count=7)],
    }

    response = post(client, server_key, body)

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 2, "ignored": 0}
    hour = this_hour()
    assert stored() == {
        ("staging", "new-checkout", "on", hour): 42,
        ("staging", "banner-text", "sale", hour): 7,
    }


def test_client_key__visible_flag_stored__hidden_flag_ignored(
    client: Client, client_key: str, boolean_flag: Flag, visible_flag: Flag
) -> None:
    """Given a client key, when it reports a hidden and a visible flag, only the visible counts."""
    body = {"counts": [entry("new-checkout"), entry("dark-mode", "off", count=3)]}

    response = post(client, client_key, body)

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "ignored": 1}
    assert stored() == {("staging", "dark-mode", "off", this_hour()): 3}


@pytest.mark.parametrize(
    "case",
    [
        ("anonymous", 401, "not_authenticated"),
        ("admin_token", 403, "environment_key_required"),
        ("jwt", 403, "environment_key_required"),
        ("revoked_key", 401, "revoked_api_key"),
    ],
    ids=lambda case: case[0],
)
def test_non_environment_callers__are_refused__nothing_stored(
    client: Client,
    administrator: User,
    staging: Environment,
    boolean_flag: Flag,
    case: tuple[str, int, str],
) -> None:
    """Given a caller that is not a live environment key, when it reports, then refused."""
    caller, status, code = case
    headers: dict[str, str] = {}
    secret: str | None = None
    if caller == "admin_token":
        secret = issue_admin(administrator)
    elif caller == "jwt":
        headers["Authorization"] = f"Bearer {AccessToken.for_user(administrator)}"
    elif caller == "revoked_key":
        key, secret = api_key_issue(kind=ApiKey.Kind.SERVER, name="old", environment=staging)
        api_key_revoke(key=key)

    response = post(client, secret, {"counts": [entry()]}, **headers)

    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert not FlagEvaluationCount.objects.exists()


# --- Adding up ------------------------------------------------------------------------------
def test_reports__add_up__same_key_in_one_request_and_across_requests(
    client: Client, server_key: str, boolean_flag: Flag
) -> None:
    """Given counts for one key twice in a request, and again later, then all are added."""
    first = post(client, server_key, {"counts": [entry(count=2), entry(count=3)]})
    second = post(client, server_key, {"counts": [entry(count=10)]})

    assert first.json() == {"accepted": 2, "ignored": 0}
    assert second.json() == {"accepted": 1, "ignored": 0}
    assert stored() == {("staging", "new-checkout", "on", this_hour()): 15}
    assert FlagEvaluationCount.objects.count() == 1


def test_null_or_absent_variant__stored_as_no_variant__apart_from_variants(
    client: Client, server_key: str, boolean_flag: Flag
) -> None:
    """Given counts without a variant (null or left out), then they share the empty variant."""
    absent = {key: value for key, value in entry(count=4).items() if key != "variant"}
    body = {"counts": [entry(variant=None, count=1), absent, entry(count=2)]}

    response = post(client, server_key, body)

    assert response.json() == {"accepted": 3, "ignored": 0}
    assert stored() == {
        ("staging", "new-checkout", "", this_hour()): 5,
        ("staging", "new-checkout", "on", this_hour()): 2,
    }


def test_hours_and_environments__are_counted_apart(
    client: Client, server_key: str, production: Environment, boolean_flag: Flag
) -> None:
    """Given reports for two hours and from two environments' keys, then four counts."""
    production_key = issue(production, ApiKey.Kind.SERVER)
    earlier = iso(this_hour(-3))
    body = {"counts": [entry(count=1), entry(hour=earlier, count=2)]}

    post(client, server_key, body)
    post(client, production_key, body)

    assert stored() == {
        ("staging", "new-checkout", "on", this_hour()): 1,
        ("staging", "new-checkout", "on", this_hour(-3)): 2,
        ("production", "new-checkout", "on", this_hour()): 1,
        ("production", "new-checkout", "on", this_hour(-3)): 2,
    }


def test_counts__are_added_by_the_database__upsert_adds_not_overwrites(
    staging: Environment, boolean_flag: Flag
) -> None:
    """Given a stored count, when the service records more for its key, then the sum is stored."""
    key = (staging.pk, boolean_flag.pk, "on", this_hour())

    evaluations.record_counts({key: 7})
    evaluations.record_counts({key: 5, (staging.pk, boolean_flag.pk, "off", this_hour()): 1})

    assert FlagEvaluationCount.objects.get(variant="on").count == 12
    assert FlagEvaluationCount.objects.get(variant="off").count == 1


def test_counts_past_32_bits__are_stored(
    client: Client, server_key: str, boolean_flag: Flag
) -> None:
    """Given counts whose sum exceeds 2**31, then the column holds it (64-bit)."""
    for _ in range(3):
        post(client, server_key, {"counts": [entry(count=1_000_000_000)]})

    assert stored()[("staging", "new-checkout", "on", this_hour())] == 3_000_000_000


# --- Ignored entries ------------------------------------------------------------------------
def test_entries_not_kept__are_ignored_and_counted__the_rest_stored(
    client: Client,
    server_key: str,
    project: Project,
    boolean_flag: Flag,
    string_flag: Flag,
) -> None:
    """Given unknown, archived, foreign or out-of-range entries, then each is ignored."""
    other = services.project_create(key="other", name="Other")
    services.flag_create(project=other, key="elsewhere", name="Elsewhere")
    Flag.objects.filter(pk=string_flag.pk).update(archived=True)
    now = timezone.now()
    body = {
        "counts": [
            entry(count=1),  # kept
            entry("no-such-flag"),
            entry("elsewhere"),  # another project's flag
            entry("banner-text", "sale"),  # archived
            entry(variant="maybe"),  # not a variant of the flag
            entry(hour=iso(this_hour(-24 * 7 - 1))),  # older than 7 days
            entry(hour=iso(this_hour(2))),  # more than an hour ahead
            entry(hour=iso(this_hour(-24 * 7 + 1)), count=2),  # 6 days 23 hours ago: kept
        ]
    }

    with mock.patch("flags.evaluation.counts.timezone.now", return_value=now):
        response = post(client, server_key, body)

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 2, "ignored": 6}
    assert stored() == {
        ("staging", "new-checkout", "on", this_hour()): 1,
        ("staging", "new-checkout", "on", this_hour(-24 * 7 + 1)): 2,
    }


def test_window_edges__one_hour_ahead_kept__seven_days_ago_kept(
    client: Client, server_key: str, boolean_flag: Flag
) -> None:
    """Given "now" exactly on an hour, then next hour and the hour 7 days ago are both kept."""
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    hours = [now + timedelta(hours=1), now - timedelta(days=7)]
    late = now + timedelta(hours=1, seconds=1)

    with mock.patch("flags.evaluation.counts.timezone.now", return_value=now):
        kept = post(client, server_key, {"counts": [entry(hour=iso(hour)) for hour in hours]})
    with mock.patch("flags.evaluation.counts.timezone.now", return_value=late):
        dropped = post(client, server_key, {"counts": [entry(hour=iso(hours[1]))]})

    assert kept.json() == {"accepted": 2, "ignored": 0}
    assert dropped.json() == {"accepted": 0, "ignored": 1}


def test_empty_report__is_202_with_nothing(client: Client, server_key: str) -> None:
    response = post(client, server_key, {"counts": []})

    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "ignored": 0}


# --- Refused requests: 400 and nothing written -----------------------------------------------
def second(**changes: Any) -> dict[str, Any]:
    """A report whose first entry is fine and whose second has ``changes``."""
    return {"counts": [entry(), entry(**changes)]}


HOUR, COUNT = "counts[1].hour", "counts[1].count"
INVALID = [
    pytest.param({}, "counts", "required", id="no-counts"),
    pytest.param({"counts": {"flag": "x"}}, "counts", "not_a_list", id="counts-object"),
    pytest.param({"counts": [entry(), "x"]}, "counts[1]", "invalid", id="entry-not-object"),
    pytest.param({"counts": [entry(), {"count": 1}]}, "counts[1].flag", "required", id="no-flag"),
    pytest.param(second(flag=""), "counts[1].flag", "blank", id="blank-flag"),
    pytest.param(second(variant=""), "counts[1].variant", "blank", id="blank-variant"),
    pytest.param(second(hour="yesterday"), HOUR, "invalid", id="hour-garbage"),
    pytest.param(second(hour=12), HOUR, "invalid", id="hour-number"),
    pytest.param(second(hour="2026-11-26T12:00:00"), HOUR, "timezone_required", id="naive"),
    pytest.param(second(hour="2026-11-26T12:30:00Z"), HOUR, "hour_not_aligned", id="half-past"),
    pytest.param(second(hour="2026-11-26T12:00:00.5Z"), HOUR, "hour_not_aligned", id="fraction"),
    pytest.param(second(hour="2026-11-26T12:00+05:30"), HOUR, "hour_not_aligned", id="offset"),
    pytest.param(second(count=0), COUNT, "min_value", id="count-zero"),
    pytest.param(second(count=-1), COUNT, "min_value", id="count-negative"),
    pytest.param(second(count=1_000_000_001), COUNT, "max_value", id="count-too-big"),
    pytest.param(second(count="5"), COUNT, "invalid", id="count-string"),
    pytest.param(second(count=True), COUNT, "invalid", id="count-bool"),
    pytest.param(second(count=1.5), COUNT, "invalid", id="count-float"),
    pytest.param(second(count=None), COUNT, "null", id="count-null"),
    pytest.param({"sdk": "x" * 101, "counts": [entry()]}, "sdk", "max_length", id="sdk-too-long"),
    pytest.param([entry()], None, "invalid", id="body-a-list"),
]


@pytest.mark.parametrize(("body", "field", "code"), INVALID)
def test_invalid_report__is_400_naming_field_and_code__nothing_stored(
    client: Client, server_key: str, boolean_flag: Flag, body: Any, field: str | None, code: str
) -> None:
    """Given a report with one bad part (after a good entry), then 400 and nothing is stored."""
    response = post(client, server_key, body)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid"
    assert {"field": field, "code": code} in [
        {"field": error["field"], "code": error["code"]} for error in problem["errors"]
    ]
    assert not FlagEvaluationCount.objects.exists()


def test_malformed_json__is_400_malformed_json(client: Client, server_key: str) -> None:
    response = post(client, server_key, '{"counts": [')

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_more_than_1000_entries__is_400_too_many_counts__nothing_stored(
    client: Client, server_key: str, boolean_flag: Flag
) -> None:
    """Given 1001 entries, then 400 too_many_counts; 1000 are fine."""
    too_many = post(client, server_key, {"counts": [entry(count=1)] * 1001})
    enough = post(client, server_key, {"counts": [entry(count=1)] * 1000})

    assert too_many.status_code == 400
    assert too_many["Content-Type"] == "application/problem+json"
    assert too_many.json()["code"] == "too_many_counts"
    assert enough.status_code == 202
    assert enough.json() == {"accepted": 1000, "ignored": 0}
    assert stored() == {("staging", "new-checkout", "on", this_hour()): 1000}


def test_database_failure_mid_report__nothing_half_written(
    client: Client, server_key: str, boolean_flag: Flag, string_flag: Flag
) -> None:
    """Given a report written in two statements, when the second fails, then neither stays."""
    real_sql = evaluations._upsert_sql
    calls: list[int] = []

    def failing_second(rows: int) -> str:
        calls.append(rows)
        if len(calls) > 1:
            raise RuntimeError("the second statement fails")
        return real_sql(rows)

    body = {"counts": [entry(count=1), entry("banner-text", "sale", count=2)]}
    with (
        mock.patch.object(evaluations, "_batch_size", return_value=1),
        mock.patch.object(evaluations, "_upsert_sql", side_effect=failing_second),
    ):
        response = post(client, server_key, body)

    assert calls == [1, 1]
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert not FlagEvaluationCount.objects.exists()


def test_large_report__split_in_batches__all_stored(
    client: Client, server_key: str, project: Project, staging: Environment
) -> None:
    """Given more rows than one statement takes, then every row is stored (one transaction)."""
    flag = services.flag_create(
        project=project,
        key="many",
        name="Many",
        kind=Flag.Kind.STRING,
        variants=[(f"v{index}", str(index)) for index in range(30)],
    )
    body = {"counts": [entry("many", f"v{index}", count=index + 1) for index in range(30)]}

    with mock.patch.object(evaluations, "_batch_size", return_value=7):
        response = post(client, server_key, body)

    assert response.json() == {"accepted": 30, "ignored": 0}
    rows = FlagEvaluationCount.objects.filter(flag=flag, environment=staging)
    assert sorted(rows.values_list("count", flat=True)) == list(range(1, 31))


@override_settings(FLAGSHIP_EVALUATION_RATE="2/h")
def test_rate_limited_with_evaluation__429_with_retry_after(
    client: Client, server_key: str, boolean_flag: Flag
) -> None:
    """Given a rate of 2 per hour, when a key evaluates once and reports twice, then 429."""
    evaluated = client.post(
        "/api/v1/evaluate", {}, content_type="application/json", headers={"X-API-Key": server_key}
    )
    reported = post(client, server_key, {"counts": [entry()]})
    limited = post(client, server_key, {"counts": [entry()]})

    assert (evaluated.status_code, reported.status_code) == (200, 202)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert limited["Retry-After"].isdigit()
    assert stored() == {("staging", "new-checkout", "on", this_hour()): 5}


def test_limits__match_the_documented_contract() -> None:
    assert counts_view.MAX_COUNTS == 1000
    assert counts_view.MAX_COUNT == 1_000_000_000
    assert timedelta(days=7) == counts_view.MAX_AGE
    assert timedelta(hours=1) == counts_view.MAX_AHEAD


# --- Concurrency (PostgreSQL: real parallel transactions) -------------------------------------
THREADS = 8
REPORTS_PER_THREAD = 5


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reports__of_the_same_keys__add_up_exactly(
    staging: Environment, boolean_flag: Flag, string_flag: Flag
) -> None:
    """Given 8 threads reporting the same keys 5 times at once, then no increment is lost."""
    secret = issue(staging, ApiKey.Kind.SERVER)
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []
    errors: list[BaseException] = []
    # Overlapping keys in opposite orders: rows are written in key order, so no deadlock.
    forward = [entry(count=1), entry("banner-text", "sale", count=2), entry(variant=None, count=3)]

    def report(index: int) -> None:
        try:
            client = Client()
            body = {"counts": forward if index % 2 else list(reversed(forward))}
            barrier.wait(timeout=10)
            statuses.extend(
                post(client, secret, body).status_code for _ in range(REPORTS_PER_THREAD)
            )
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=report, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert statuses == [202] * THREADS * REPORTS_PER_THREAD
    reports = THREADS * REPORTS_PER_THREAD
    assert stored() == {
        ("staging", "new-checkout", "on", this_hour()): reports * 1,
        ("staging", "banner-text", "sale", this_hour()): reports * 2,
        ("staging", "new-checkout", "", this_hour()): reports * 3,
    }


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_inserts__of_a_new_key__never_conflict(
    staging: Environment, boolean_flag: Flag
) -> None:
    """Given threads inserting a key none has stored yet, then one row holding every count."""
    key = (staging.pk, boolean_flag.pk, "off", this_hour(-1))
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def record() -> None:
        try:
            barrier.wait(timeout=10)
            evaluations.record_counts({key: 1})
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert list(FlagEvaluationCount.objects.values_list("variant", "count")) == [("off", THREADS)]
