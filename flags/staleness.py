"""Stored stale verdict inputs (:class:`~flags.models.FlagStaleness`): stale flags at scale.

Judging a flag live (:func:`flags.stale.stale_flags`) reads its states, their history and its
evaluation counts; for every flag of a big project on every request that is seconds. So each
flag's *inputs* are stored, one row per flag: ``single_since`` (since when every environment
serves one variant to everyone) and ``quiet_since`` (the later of its creation and the end of
its last evaluated hour). The verdict then depends only on the time and on
``FLAGSHIP_STALE_DAYS``, and is one SQL filter (:func:`stale_q`).

Kept exact without waiting for the worker:

- Every save or delete of a flag, a flag state, a rule or a prerequisite marks the flag's row
  dirty (:func:`mark_dirty`, from model signals, in the writing transaction); bulk creations of
  new flags leave them without a row. A dirty or missing row is never trusted: those flags (a
  few) are judged live, the others read from their rows (:func:`stale_verdicts`,
  :func:`stale_in`).
- Stored evaluation counts (``flags.services.evaluations.record_counts``) move the clean rows'
  ``last_evaluated`` and ``quiet_since`` forward in the same transaction (:func:`evaluated`).
- ``manage.py run_worker`` recomputes dirty and missing rows in batches (:func:`refresh`, the
  ``staleness.refresh`` job), rows locked while computed, so a change written meanwhile marks
  its row dirty again once the worker commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from . import conf
from .models import Flag, FlagEvaluationCount, FlagStaleness, FlagState, Prerequisite, Rule
from .stale import HOUR, Stale, inputs, judge, quiet_since, stale_flags

# Rows the worker computes per transaction.
BATCH = 500
REFRESH_SECONDS = 5.0


def mark_dirty(flag_ids: Iterable[int | None]) -> None:
    """Mark these flags' rows dirty (creating dirty rows for flags without one).

    An upsert: it takes each row's lock, so a row the worker is computing is marked again
    after the worker commits (ids sorted: concurrent writers lock rows in the same order).
    """
    ids = sorted({pk for pk in flag_ids if pk is not None})
    if not ids:
        return
    FlagStaleness.objects.bulk_create(
        [FlagStaleness(flag_id=pk, dirty=True) for pk in ids],
        update_conflicts=True,
        unique_fields=["flag"],
        update_fields=["dirty"],
    )


def evaluated(last_hours: Mapping[int, datetime]) -> None:
    """Move clean rows forward: these flags were evaluated in these hours (counts stored).

    One ``UPDATE`` per distinct hour (a flush holds one or two).
    """
    by_hour: dict[datetime, list[int]] = {}
    for flag_id, hour in last_hours.items():
        by_hour.setdefault(hour, []).append(flag_id)
    for hour, ids in sorted(by_hour.items()):
        FlagStaleness.objects.filter(flag_id__in=sorted(ids), dirty=False).update(
            last_evaluated=Greatest(Coalesce(F("last_evaluated"), hour), hour),
            quiet_since=Greatest(F("quiet_since"), hour + HOUR),
        )


# --- signals ----------------------------------------------------------------------------------
def _flag_saved(sender: Any, instance: Flag, **kwargs: Any) -> None:
    mark_dirty([instance.pk])


def _flag_deleted(sender: Any, instance: Flag, **kwargs: Any) -> None:
    FlagStaleness.objects.filter(flag_id=instance.pk).delete()


def _state_changed(sender: Any, instance: FlagState, **kwargs: Any) -> None:
    mark_dirty([instance.flag_id])


def _targeting_changed(sender: Any, instance: Rule | Prerequisite, **kwargs: Any) -> None:
    flag_id = FlagState.objects.filter(pk=instance.state_id).values_list("flag_id", flat=True)
    mark_dirty(flag_id)


def _count_saved(sender: Any, instance: FlagEvaluationCount, **kwargs: Any) -> None:
    mark_dirty([instance.flag_id])


def connect() -> None:
    """Mark rows dirty on every save or delete of what a verdict is made of."""
    post_save.connect(_flag_saved, sender=Flag, dispatch_uid="staleness.flag_saved")
    post_delete.connect(_flag_deleted, sender=Flag, dispatch_uid="staleness.flag_deleted")
    post_save.connect(_state_changed, sender=FlagState, dispatch_uid="staleness.state_saved")
    post_delete.connect(_state_changed, sender=FlagState, dispatch_uid="staleness.state_deleted")
    targeting: tuple[tuple[Any, str], ...] = ((Rule, "rule"), (Prerequisite, "prerequisite"))
    for model, name in targeting:
        post_save.connect(_targeting_changed, sender=model, dispatch_uid=f"staleness.{name}_saved")
        post_delete.connect(
            _targeting_changed, sender=model, dispatch_uid=f"staleness.{name}_deleted"
        )
    post_save.connect(_count_saved, sender=FlagEvaluationCount, dispatch_uid="staleness.count")


# --- the worker -------------------------------------------------------------------------------
def refresh(batch: int = BATCH) -> int:
    """Compute dirty and missing rows, ``batch`` flags per transaction; return how many."""
    done = 0
    while True:
        missing = list(
            Flag.objects.filter(staleness__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not missing:
            break
        # Dirty rows first, committed: a change from now on locks and marks them.
        FlagStaleness.objects.bulk_create(
            [FlagStaleness(flag_id=pk, dirty=True) for pk in missing], ignore_conflicts=True
        )
    while True:
        with transaction.atomic():
            rows_of = dict(
                FlagStaleness.objects.filter(dirty=True)
                .order_by("flag_id")
                .select_for_update(skip_locked=True)
                .values_list("flag_id", "pk")[:batch]
            )
            ids = list(rows_of)
            if not ids:
                return done
            flags = list(Flag.objects.filter(pk__in=ids).only("pk", "created_at"))
            computed = inputs(flags)
            now = timezone.now()
            rows = [
                FlagStaleness(
                    pk=rows_of[flag.pk],
                    flag_id=flag.pk,
                    single_since=computed[flag.pk][0],
                    last_evaluated=computed[flag.pk][1],
                    quiet_since=quiet_since(flag.created_at, computed[flag.pk][1]),
                    computed_at=now,
                    dirty=False,
                )
                for flag in flags
            ]
            FlagStaleness.objects.bulk_update(
                rows,
                ["single_since", "last_evaluated", "quiet_since", "computed_at", "dirty"],
                batch_size=batch,
            )
            gone = set(ids) - {flag.pk for flag in flags}
            if gone:
                FlagStaleness.objects.filter(flag_id__in=gone).delete()
            done += len(ids)


# --- reading ----------------------------------------------------------------------------------
def stale_q(now: datetime, prefix: str = "") -> Q:
    """Flags (``prefix`` leads to one) whose clean stored row says stale at ``now``."""
    clean = Q(**{f"{prefix}archived": False, f"{prefix}staleness__dirty": False})
    by_days = Q(pk__in=[])
    for lifecycle, days in conf.stale_days().items():
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        by_days |= Q(**{f"{prefix}lifecycle": lifecycle}) & (
            Q(**{f"{prefix}staleness__single_since__lte": cutoff})
            | Q(**{f"{prefix}staleness__quiet_since__lte": cutoff})
        )
    return clean & by_days


def _unsure(flags: QuerySet[Flag]) -> QuerySet[Flag]:
    """Those of ``flags`` without a clean row: judged live."""
    return flags.filter(Q(staleness__isnull=True) | Q(staleness__dirty=True))


def stale_in(flags: QuerySet[Flag], now: datetime | None = None) -> Q:
    """A filter on ``flags``' stale ones: clean rows in SQL, the others judged live (a few)."""
    return judged(flags, now or timezone.now())[0]


def judged(flags: QuerySet[Flag], now: datetime) -> tuple[Q, dict[int, Stale]]:
    """:func:`stale_in`'s filter, and the verdicts on the flags it judged live (stale ones).

    One query for the flags without a clean row, and their live judgement if there are any.
    """
    unsure = list(_unsure(flags.filter(archived=False)).order_by())
    live = stale_flags(unsure, now=now)
    return stale_q(now) | Q(pk__in=sorted(live)), live


def verdict(flag: Flag, now: datetime, live: Mapping[int, Stale]) -> Stale | None:
    """The verdict on ``flag`` (fetched with ``select_related("staleness")``).

    Its clean row's, else ``live``'s (:func:`judged`).
    """
    row = getattr(flag, "staleness", None)
    if row is None or row.dirty:
        return live.get(flag.pk)
    days = conf.stale_days().get(str(flag.lifecycle))
    if flag.archived or days is None:
        return None
    return judge(flag, row.single_since, row.last_evaluated, now, days)


def stale_verdicts(
    flags: Iterable[Flag],
    *,
    now: datetime | None = None,
    evaluated: Mapping[tuple[int, int], datetime] | None = None,
) -> dict[int, Stale]:
    """:func:`flags.stale.stale_flags`'s answer, from the stored rows where they are clean.

    One query for the rows (none when the flags were fetched with
    ``select_related("staleness")``), and the live judgement's three or four for the others, if
    any.
    """
    now = now or timezone.now()
    configured = conf.stale_days()
    candidates = {
        flag.pk: flag
        for flag in flags
        if not flag.archived and configured.get(str(flag.lifecycle)) is not None
    }
    if not candidates:
        return {}
    if all(Flag.staleness.is_cached(flag) for flag in candidates.values()):  # select_related
        rows = {
            pk: row
            for pk, flag in candidates.items()
            if (row := getattr(flag, "staleness", None)) is not None and not row.dirty
        }
    else:
        rows = {
            row.flag_id: row
            for row in FlagStaleness.objects.filter(flag_id__in=list(candidates), dirty=False)
        }
    found: dict[int, Stale] = {}
    unsure = [flag for pk, flag in candidates.items() if pk not in rows]
    if unsure:
        found.update(stale_flags(unsure, now=now, evaluated=evaluated))
    for pk, row in rows.items():
        flag = candidates[pk]
        days = configured[str(flag.lifecycle)]
        assert days is not None  # noqa: S101  # candidates have a number of days
        verdict = judge(flag, row.single_since, row.last_evaluated, now, days)
        if verdict is not None:
            found[pk] = verdict
    return {pk: found[pk] for pk in candidates if pk in found}
