"""``POST /api/v1/sdk/evaluations``: SDKs report how often they evaluated each flag, per hour.

Server and client keys only (admin tokens and people get 403, like the rest of the evaluation
API), rate limited with evaluation (same per-key counter). The body is checked whole before
anything is written: one invalid entry refuses the request (400 problem details) and nothing is
stored. Entries the server does not keep are *ignored*, not refused, so an SDK never retries them:
an hour older than ``MAX_AGE`` or later than ``MAX_AHEAD``, a flag that does not exist here (or is
archived, or is not client-visible for a client key), a variant the flag does not have. The rest
are added to ``FlagEvaluationCount`` in one transaction (``flags.services.evaluations``); the
answer is 202 ``{"accepted": n, "ignored": m}``, counting entries.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.permissions import EnvironmentKeyRequired, environment_key
from flagship.errors import PROBLEM_RESPONSES
from flagship.schema import PROBLEM_MEDIA_TYPE, PROBLEM_REF

from ..models import Flag, Variant
from ..models.evaluations import NO_VARIANT
from ..services.evaluations import CountKey, merge_counts, record_counts
from .throttling import EvaluationRateThrottle

logger = logging.getLogger(__name__)

TAG = "evaluation"
MAX_COUNTS = 1_000  # entries per request
MAX_COUNT = 1_000_000_000  # evaluations per entry
MAX_AGE = timedelta(days=7)  # hours starting earlier than this before now are ignored
MAX_AHEAD = timedelta(hours=1)  # hours starting later than this after now are ignored


class TooManyCounts(APIException):
    """More than ``MAX_COUNTS`` entries in one request: 400 ``too_many_counts``."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "too_many_counts"
    default_detail = f"At most {MAX_COUNTS} counts per request; send the rest in another."


@extend_schema_field(OpenApiTypes.DATETIME)
class HourField(serializers.Field[datetime, str, str, Any]):
    """An ISO 8601 date-time with an offset (``Z``), aligned on a UTC hour; answered in UTC."""

    default_error_messages = {  # DRF's own convention
        "invalid": "Enter an ISO 8601 date-time such as 2026-11-26T12:00:00Z.",
        "timezone_required": "Give the time zone (UTC: a trailing Z).",
        "hour_not_aligned": "Give the start of an hour (minutes, seconds and fractions zero).",
    }

    def to_internal_value(self, data: Any) -> datetime:
        """The hour as an aware UTC datetime."""
        parsed = parse_datetime(data) if isinstance(data, str) else None
        if parsed is None:
            self.fail("invalid")
        assert parsed is not None  # noqa: S101  # self.fail() raised otherwise (for mypy)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("timezone_required")
        hour = parsed.astimezone(UTC)
        if hour.minute or hour.second or hour.microsecond:
            self.fail("hour_not_aligned")
        return hour

    def to_representation(self, value: datetime) -> str:
        """``2026-11-26T12:00:00Z``."""
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: no strings, floats or booleans."""

    def to_internal_value(self, data: Any) -> int:
        """The integer, range-checked by the field's validators."""
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class EvaluationCountSerializer(serializers.Serializer[dict[str, Any]]):
    """One count: a flag served a variant ``count`` times during ``hour``."""

    flag = serializers.CharField(max_length=100, help_text="The flag key.")
    variant = serializers.CharField(
        max_length=100,
        allow_null=True,
        required=False,
        default=None,
        help_text="The variant served; null when none was (an error, or the caller's default).",
    )
    hour = HourField(
        help_text="Start of the UTC hour the evaluations happened in, e.g. "
        "`2026-11-26T12:00:00Z` (ISO 8601 with an offset, on the hour)."
    )
    count = StrictIntegerField(
        min_value=1, max_value=MAX_COUNT, help_text=f"Evaluations (1 to {MAX_COUNT})."
    )


class EvaluationCountsSerializer(serializers.Serializer[dict[str, Any]]):
    """A report of evaluation counts."""

    sdk = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text='The reporting SDK and its version, e.g. "flagship-python/1.2.0".',
    )
    counts = EvaluationCountSerializer(  # type: ignore[call-arg]  # many=True takes ListSerializer's
        many=True,
        max_length=MAX_COUNTS,
        help_text=f"At most {MAX_COUNTS} entries; more is 400 `too_many_counts`.",
    )


class EvaluationCountsAnswerSerializer(serializers.Serializer[dict[str, Any]]):
    """What the server kept (documentation only)."""

    accepted = serializers.IntegerField(help_text="Entries added to the stored counts.")
    ignored = serializers.IntegerField(
        help_text="Entries dropped: hour out of range, unknown (or hidden) flag or variant."
    )


class EvaluationCountsView(APIView):
    """Receive evaluation counts from an SDK."""

    permission_classes = [EnvironmentKeyRequired]
    throttle_classes = [EvaluationRateThrottle]

    @extend_schema(
        operation_id="sdk_evaluations_create",
        tags=[TAG],
        summary="Report evaluation counts",
        description="SDKs report how often each flag served each variant, per UTC hour. Counts "
        "are added to the stored ones. The whole body is validated first: any invalid entry is "
        "400 and nothing is stored. Entries with an hour more than 7 days old or more than 1 hour "
        "ahead, an unknown or archived flag (or one not visible to a client key), or a variant "
        "the flag does not have are ignored and counted in `ignored`.",
        request=EvaluationCountsSerializer,
        responses={
            202: OpenApiResponse(
                EvaluationCountsAnswerSerializer, description="Stored: the entries kept."
            ),
            (400, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                response=PROBLEM_REF,
                description="`invalid` (see `errors`; nothing was stored), `malformed_json`, or "
                f"`too_many_counts` (more than {MAX_COUNTS} entries).",
            ),
            (403, PROBLEM_MEDIA_TYPE): OpenApiResponse(
                response=PROBLEM_REF,
                description="`permission_denied`: not an environment key (admin tokens, people).",
            ),
            **{
                key: value
                for key, value in PROBLEM_RESPONSES.items()
                if key[0] in (401, 413, 415, 429)
            },
        },
        examples=[
            OpenApiExample(
                "Counts",
                value={
                    "sdk": "flagship-python/1.0.0",
                    "counts": [
                        {
                            "flag": "new-checkout",
                            "variant": "on",
                            "hour": "2026-11-26T12:00:00Z",
                            "count": 42,
                        },
                        {
                            "flag": "new-checkout",
                            "variant": None,
                            "hour": "2026-11-26T12:00:00Z",
                            "count": 3,
                        },
                    ],
                },
                request_only=True,
            ),
            OpenApiExample("Answer", value={"accepted": 2, "ignored": 0}, response_only=True),
        ],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Validate the whole report, then add the counts kept in one transaction."""
        key = environment_key(request)
        if key is None or key.environment is None:  # pragma: no cover - the permission refused it
            raise NotFound()
        data = request.data
        counts = data.get("counts") if isinstance(data, dict) else None
        if isinstance(counts, list) and len(counts) > MAX_COUNTS:
            raise TooManyCounts()
        serializer = EvaluationCountsSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        entries: list[dict[str, Any]] = serializer.validated_data["counts"]
        kept, ignored = self.kept_counts(key, entries)
        record_counts(merge_counts(kept))
        logger.debug(
            "evaluation_counts.received",
            extra={
                "sdk": serializer.validated_data.get("sdk", ""),
                "accepted": len(kept),
                "ignored": ignored,
            },
        )
        return Response({"accepted": len(kept), "ignored": ignored}, status=202)

    @staticmethod
    def kept_counts(
        key: ApiKey, entries: list[dict[str, Any]]
    ) -> tuple[list[tuple[CountKey, int]], int]:
        """The entries to store (as count keys) and how many were ignored."""
        environment = key.environment
        assert environment is not None  # noqa: S101  # checked by the caller
        now = timezone.now()
        oldest, latest = now - MAX_AGE, now + MAX_AHEAD
        in_range = [entry for entry in entries if oldest <= entry["hour"] <= latest]
        flags = Flag.objects.filter(
            project_id=environment.project_id,
            key__in={entry["flag"] for entry in in_range},
            archived=False,
        )
        if key.kind == ApiKey.Kind.CLIENT:
            flags = flags.filter(client_visible=True)
        ids = dict(flags.order_by().values_list("key", "pk"))
        variants: dict[str, tuple[int, set[str]]] = {flag: (pk, set()) for flag, pk in ids.items()}
        keys_by_id = {pk: flag for flag, pk in ids.items()}
        for flag_id, variant_key in (
            Variant.objects.filter(flag_id__in=ids.values())
            .order_by()
            .values_list("flag_id", "key")
        ):
            variants[keys_by_id[flag_id]][1].add(variant_key)
        kept: list[tuple[CountKey, int]] = []
        for entry in in_range:
            found = variants.get(entry["flag"])
            variant = entry["variant"]
            if found is None or (variant is not None and variant not in found[1]):
                continue
            stored = NO_VARIANT if variant is None else variant
            kept.append(((environment.pk, found[0], stored, entry["hour"]), entry["count"]))
        return kept, len(entries) - len(kept)
