"""Stale flags: temporary flags that have done their job, by lifecycle.

``FLAGSHIP_STALE_DAYS`` gives N per lifecycle (``None``: a flag of that lifecycle is never stale;
by default release and experiment flags after 30 days, operational and permanent ones never). A
live (not archived) flag is stale when either rule holds, the first one checked first:

- :data:`SINGLE_VARIANT` ("serves one variant to everyone"): in *every* environment it has served
  one variant to everyone for N days: switched off (everyone gets the off variant), or on with
  no rules, no prerequisites and a default serve of one variant (a split giving every share to
  one variant counts as one). *Since when* is read from the history: the oldest of the state's
  latest run of history rows that serve the same way, and for a state that is on, no later than
  the last change of its rules or prerequisites (removing the last rule is such a change).
- :data:`NOT_EVALUATED` ("nobody evaluated it"): no evaluation counted (server-side or reported
  by an SDK) in any environment for N days, and the flag was created more than N days ago.

:func:`stale_flags` answers for any number of flags in a fixed number of queries (three; four
when a state has served one way for more than its latest ``RECENT_ROWS`` history rows),
so the admin list, the API list and the report cost the same for 5 flags as for 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, Max, OuterRef, Subquery
from django.utils import timezone

from flags import conf
from flags.models import Flag, FlagEvaluationCount, FlagState, Prerequisite, Rule

SINGLE_VARIANT = "single_variant"
NOT_EVALUATED = "not_evaluated"
HOUR = timedelta(hours=1)
# History rows of each state read at first (PostgreSQL): a run of one way of serving is rarely
# longer, and a state's whole history (thousands of toggles for a busy flag) is never needed.
RECENT_ROWS = 20
RECENT_SQL = (
    "SELECT h.id, h.history_date, h.enabled, h.off_variant_id, h.default_serve "
    "FROM unnest(%s::bigint[]) AS s(id) CROSS JOIN LATERAL ("
    "SELECT * FROM {table} WHERE id = s.id "
    "ORDER BY history_date DESC, history_id DESC LIMIT %s) AS h "
    "ORDER BY h.id, h.history_date DESC, h.history_id DESC"
)


@dataclass(frozen=True, slots=True)
class Stale:
    """Why a flag is stale (``code`` and ``reason``, in words) and since when it qualifies."""

    code: str
    reason: str
    since: datetime

    def document(self) -> dict[str, Any]:
        """``{"code": ..., "reason": ..., "since": ...}`` for the API and the report."""
        return {"code": self.code, "reason": self.reason, "since": self.since}


def single_variant(serve: Any) -> str | None:
    """The one variant a serve document gives everyone, else ``None``."""
    if not isinstance(serve, Mapping):
        return None
    if "variant" in serve:
        return str(serve["variant"])
    shares = {
        str(entry.get("variant"))
        for entry in serve.get("split", [])
        if isinstance(entry, Mapping) and int(entry.get("weight", 0)) > 0
    }
    return shares.pop() if len(shares) == 1 else None


def _serving(enabled: bool, off_variant_id: int | None, default_serve: Any) -> tuple[Any, ...]:
    """What a state row serves when it has no targeting: compared between history rows."""
    if not enabled:
        return ("off", off_variant_id)
    return ("on", single_variant(default_serve))


def _since_single(
    state: Mapping[str, Any],
    history: Iterable[Mapping[str, Any]],
    targeting_changed: datetime | None,
) -> datetime | None:
    """Since when ``state`` serves one variant to everyone; ``None`` when it does not."""
    now_serving = _serving(state["enabled"], state["off_variant_id"], state["default_serve"])
    if now_serving[0] == "on" and (state["targeted"] or now_serving[1] is None):
        return None
    since: datetime | None = None
    for row in history:  # newest first
        if _serving(row["enabled"], row["off_variant_id"], row["default_serve"]) != now_serving:
            break
        since = row["history_date"]
    if since is None:
        since = state["updated_at"]
    if now_serving[0] == "on" and targeting_changed is not None:
        since = max(since, targeting_changed)
    return since


def _days(flag: Flag, configured: Mapping[str, int | None]) -> int | None:
    return configured.get(str(flag.lifecycle))


def _latest(history: Any) -> Subquery:
    """The date of a state's latest history row of ``history`` (rules' or prerequisites')."""
    rows = history.objects.filter(state_id=OuterRef("pk")).order_by("-history_date")
    return Subquery(rows.values("history_date")[:1])


def _state_rows(flag_ids: list[int]) -> list[dict[str, Any]]:
    """The flags' states, with whether they have rules or prerequisites, and when those changed.

    One query; the last change of a state's rules and of its prerequisites is each one step down
    an index (``hist_rule_state_date``, ``hist_prereq_state_date``) per state.
    """
    rule_history: Any = Rule.history.model
    prerequisite_history: Any = Prerequisite.history.model
    return [
        dict(row)
        for row in FlagState.objects.filter(flag_id__in=flag_ids)
        .order_by()
        .annotate(
            has_rules=Exists(Rule.objects.filter(state_id=OuterRef("pk"))),
            has_prerequisites=Exists(Prerequisite.objects.filter(state_id=OuterRef("pk"))),
            rules_changed=_latest(rule_history),
            prerequisites_changed=_latest(prerequisite_history),
        )
        .values(
            "id",
            "flag_id",
            "enabled",
            "off_variant_id",
            "default_serve",
            "updated_at",
            "has_rules",
            "has_prerequisites",
            "rules_changed",
            "prerequisites_changed",
        )
    ]


def _serves_alike(state: Mapping[str, Any], rows: list[dict[str, Any]]) -> bool:
    """Whether every one of ``rows`` serves as ``state`` does (its run may go on further back)."""
    now_serving = _serving(state["enabled"], state["off_variant_id"], state["default_serve"])
    return all(
        _serving(row["enabled"], row["off_variant_id"], row["default_serve"]) == now_serving
        for row in rows
    )


def _state_history(states: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each state's history rows, newest first, as far back as :func:`_since_single` reads.

    On PostgreSQL, the latest ``RECENT_ROWS`` rows of each state (one ``LATERAL`` step down the
    versions index per state, however long its history), then, only for the states whose rows all
    serve as the state does now, the rest; elsewhere, every row of every state.
    """
    state_history: Any = FlagState.history.model
    columns = ("id", "history_date", "enabled", "off_variant_id", "default_serve")
    ids = [state["id"] for state in states]
    history: dict[int, list[dict[str, Any]]] = {}
    if connection.vendor == "postgresql" and ids:
        table = connection.ops.quote_name(state_history._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(RECENT_SQL.format(table=table), [ids, RECENT_ROWS])
            for values in cursor.fetchall():
                row = dict(zip(columns, values, strict=True))
                if isinstance(row["default_serve"], str):  # Django's jsonb loader gives text
                    row["default_serve"] = json.loads(row["default_serve"])
                history.setdefault(row["id"], []).append(row)
        ids = [
            state["id"]
            for state in states
            if len(history.get(state["id"], [])) == RECENT_ROWS
            and _serves_alike(state, history[state["id"]])
        ]
        if not ids:
            return history
        for state_id in ids:
            del history[state_id]
    for row in (
        state_history.objects.filter(id__in=ids)
        .order_by("id", "-history_date", "-history_id")
        .values(*columns)
    ):
        history.setdefault(row["id"], []).append(row)
    return history


def stale_flags(
    flags: Iterable[Flag],
    *,
    now: datetime | None = None,
    evaluated: Mapping[tuple[int, int], datetime] | None = None,
) -> dict[int, Stale]:
    """The stale ones among ``flags`` (by id), with their reason; archived flags never are.

    Judged live, from the history. ``evaluated``: :func:`last_evaluated` of these flags when
    the caller has it (one query less).
    """
    now = now or timezone.now()
    configured = conf.stale_days()
    candidates = {
        flag.pk: flag for flag in flags if not flag.archived and _days(flag, configured) is not None
    }
    if not candidates:
        return {}
    found: dict[int, Stale] = {}
    for pk, (single_since, last_hour) in inputs(candidates.values(), evaluated=evaluated).items():
        flag = candidates[pk]
        days = _days(flag, configured)
        assert days is not None  # noqa: S101  # candidates have a number of days
        verdict = judge(flag, single_since, last_hour, now, days)
        if verdict is not None:
            found[pk] = verdict
    return found


def inputs(
    flags: Iterable[Flag], *, evaluated: Mapping[tuple[int, int], datetime] | None = None
) -> dict[int, tuple[datetime | None, datetime | None]]:
    """Each flag's (since when it serves one variant everywhere, latest evaluated hour).

    What a verdict is made of, whatever the time and the configured days (three or four
    queries for any number of flags); ``flags.staleness`` stores them.
    """
    listed = {flag.pk: flag for flag in flags}
    if not listed:
        return {}
    ids = list(listed)
    states = _state_rows(ids)
    targeting_changed: dict[int, datetime] = {}
    for state in states:
        changes = [state["rules_changed"], state["prerequisites_changed"]]
        latest = max((change for change in changes if change is not None), default=None)
        if latest is not None:
            targeting_changed[state["id"]] = latest
    history = _state_history(states)
    last_hour: dict[int, datetime] = {}
    for (flag_id, _environment_id), hour in (
        evaluated if evaluated is not None else last_evaluated(ids)
    ).items():
        if flag_id in listed and (flag_id not in last_hour or hour > last_hour[flag_id]):
            last_hour[flag_id] = hour
    by_flag: dict[int, list[dict[str, Any]]] = {}
    for state in states:
        state["targeted"] = state["has_rules"] or state["has_prerequisites"]
        by_flag.setdefault(state["flag_id"], []).append(state)
    return {
        pk: (_single_since(by_flag.get(pk, []), history, targeting_changed), last_hour.get(pk))
        for pk in listed
    }


def judge(
    flag: Flag, single_since: datetime | None, last_hour: datetime | None, now: datetime, days: int
) -> Stale | None:
    """The verdict on ``flag`` at ``now`` from its inputs, ``days`` configured for it.

    The one-variant rule first, then the not-evaluated rule.
    """
    limit = timedelta(days=days)
    if single_since is not None and now - single_since >= limit:
        return Stale(
            SINGLE_VARIANT,
            f"Serves one variant to everyone in every environment for {days} days or more.",
            single_since + limit,
        )
    return _not_evaluated_rule(flag, last_hour, now, limit, days)


def quiet_since(created_at: datetime, last_hour: datetime | None) -> datetime:
    """Since when nobody evaluated a flag created at ``created_at``."""
    return created_at if last_hour is None else max(created_at, last_hour + HOUR)


def _single_since(
    states: list[dict[str, Any]],
    history: Mapping[int, list[dict[str, Any]]],
    targeting_changed: Mapping[int, datetime],
) -> datetime | None:
    """Since when every one of ``states`` serves one variant to everyone; ``None``: not so."""
    if not states:
        return None
    since: datetime | None = None
    for state in states:
        started = _since_single(
            state, history.get(state["id"], []), targeting_changed.get(state["id"])
        )
        if started is None:
            return None
        since = started if since is None else max(since, started)
    return since


def _not_evaluated_rule(
    flag: Flag, last_hour: datetime | None, now: datetime, limit: timedelta, days: int
) -> Stale | None:
    """Created more than ``limit`` ago and not evaluated anywhere for ``limit``."""
    quiet = quiet_since(flag.created_at, last_hour)
    if now - quiet < limit:
        return None
    never = " (never evaluated)" if last_hour is None else ""
    return Stale(
        NOT_EVALUATED,
        f"Not evaluated in any environment for {days} days or more{never}.",
        quiet + limit,
    )


def last_evaluated(flag_ids: Iterable[int]) -> dict[tuple[int, int], datetime]:
    """(flag id, environment id) → start of the latest UTC hour with counted evaluations."""
    return {
        (flag_id, environment_id): hour
        for flag_id, environment_id, hour in FlagEvaluationCount.objects.filter(
            flag_id__in=list(flag_ids)
        )
        .order_by()
        .values("flag_id", "environment_id")
        .annotate(last=Max("hour"))
        .values_list("flag_id", "environment_id", "last")
    }
