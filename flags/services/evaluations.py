"""Recording the evaluation counts SDKs report (``POST /api/v1/sdk/evaluations``).

Counts are added, never overwritten: one ``INSERT ... ON CONFLICT (environment, flag, variant,
hour) DO UPDATE SET count = count + excluded.count`` per batch of rows, all batches in one
transaction. Concurrent reports of the same key add up on PostgreSQL and SQLite alike: the
database resolves the conflict row by row, there is no read-modify-write in Python. (Django's
``bulk_create(update_conflicts=True)`` can only overwrite a column with the new value, not add
to it, hence the SQL.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from .. import staleness
from ..models import FlagEvaluationCount

# (environment id, flag id, variant or NO_VARIANT, hour) -> evaluations to add.
CountKey = tuple[int, int, str, datetime]
COLUMNS = ("environment_id", "flag_id", "variant", "hour", "count", "updated_at")
CONFLICT_COLUMNS = ("environment_id", "flag_id", "variant", "hour")


def merge_counts(entries: Iterable[tuple[CountKey, int]]) -> dict[CountKey, int]:
    """Sum the counts of equal keys (one statement must not update a row twice)."""
    merged: dict[CountKey, int] = {}
    for key, count in entries:
        merged[key] = merged.get(key, 0) + count
    return merged


def _batch_size() -> int:
    """Rows per statement, within the backend's limit on query parameters."""
    limit = connection.features.max_query_params or 65_535
    return max(1, min(1_000, limit // len(COLUMNS)))


def _upsert_sql(rows: int) -> str:
    quote = connection.ops.quote_name
    table = quote(FlagEvaluationCount._meta.db_table)
    columns = ", ".join(quote(column) for column in COLUMNS)
    conflict = ", ".join(quote(column) for column in CONFLICT_COLUMNS)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(COLUMNS)) + ")"] * rows)
    count, updated_at = quote("count"), quote("updated_at")
    return (
        f"INSERT INTO {table} ({columns}) VALUES {placeholders} "  # noqa: S608  # quoted names, values as parameters
        f"ON CONFLICT ({conflict}) DO UPDATE SET "
        f"{count} = {table}.{count} + excluded.{count}, {updated_at} = excluded.{updated_at}"
    )


def record_counts(counts: Mapping[CountKey, int]) -> int:
    """Add ``counts`` to the stored ones, atomically (all or nothing); return the rows touched.

    Rows are written in key order, so concurrent reports lock the rows they share in the same
    order (no deadlock on PostgreSQL).
    """
    if not counts:
        return 0
    hour_field = FlagEvaluationCount._meta.get_field("hour")
    now = hour_field.get_db_prep_value(timezone.now(), connection)
    rows = [
        (
            environment_id,
            flag_id,
            variant,
            hour_field.get_db_prep_value(hour, connection),
            count,
            now,
        )
        for (environment_id, flag_id, variant, hour), count in sorted(counts.items())
    ]
    size = _batch_size()
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            cursor.execute(_upsert_sql(len(batch)), [value for row in batch for value in row])
        latest: dict[int, datetime] = {}
        for _environment_id, flag_id, _variant, hour in counts:
            if flag_id not in latest or hour > latest[flag_id]:
                latest[flag_id] = hour
        staleness.evaluated(latest)  # the flags' stored stale inputs, in this transaction
    return len(rows)
