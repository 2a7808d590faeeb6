"""Writes to a flag's state in one environment, shared by the REST and GraphQL APIs.

Both validate the body with ``FlagStateInputSerializer`` and hand it here; every write goes
through the services, so history, the version bump, the change event and webhook deliveries are
the same whichever API made it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import exceptions
from rest_framework.serializers import as_serializer_error

from .. import services
from ..models import ChangeRequest, Flag, FlagState, Segment


def _variant(flag: Flag, key: str) -> Any:
    variant = flag.variants.filter(key=key).first()
    if variant is None:
        raise exceptions.ValidationError({"off_variant": [f"Unknown variant: {key}."]})
    return variant


def _segments(flag: Flag, keys: list[str], index: int) -> list[Segment]:
    segments = list(Segment.objects.filter(project_id=flag.project_id, key__in=keys))
    missing = sorted(set(keys) - {segment.key for segment in segments})
    if missing:
        raise exceptions.ValidationError(
            {"rules": {str(index): {"segments": [f"Unknown segment: {key}." for key in missing]}}}
        )
    return segments


@transaction.atomic
def state_write(
    *, state: FlagState, data: dict[str, Any], actor: Any, expected: int | None
) -> None:
    """Apply a validated state write through the services, all or nothing.

    ``flag_state_update`` runs first: it locks the row and checks ``expected`` before anything
    else is written. Rules and prerequisites, when given, replace the old ones.
    """
    flag = state.flag
    off_variant = _variant(flag, data["off_variant"]) if "off_variant" in data else None
    services.flag_state_update(
        state=state,
        actor=actor,
        expected_version=expected,
        enabled=data.get("enabled"),
        off_variant=off_variant,
        default_serve=data.get("default_serve"),
    )
    if "rules" in data:
        for rule in list(state.rules.all()):
            services.rule_delete(rule=rule, actor=actor)
        for index, rule_data in enumerate(data["rules"]):
            segments = _segments(flag, rule_data.get("segments", []), index)
            try:
                services.rule_create(
                    state=state,
                    serve=rule_data["serve"],
                    conditions=rule_data.get("conditions", []),
                    segments=segments,
                    rollout=rule_data.get("rollout"),
                    bucket_by=rule_data.get("bucket_by", "targetingKey"),
                    description=rule_data.get("description", ""),
                    order=index,
                    actor=actor,
                )
            except DjangoValidationError as error:
                raise exceptions.ValidationError(
                    {"rules": {str(index): as_serializer_error(error)}}
                ) from None
    if "prerequisites" in data:
        for prerequisite in list(state.prerequisites.all()):
            services.prerequisite_remove(prerequisite=prerequisite, actor=actor)
        for index, wanted in enumerate(data["prerequisites"]):
            parent = Flag.objects.filter(project_id=flag.project_id, key=wanted["flag"]).first()
            if parent is None:
                raise exceptions.ValidationError(
                    {"prerequisites": {str(index): {"flag": [f"Unknown flag: {wanted['flag']}."]}}}
                )
            try:
                services.prerequisite_add(
                    state=state, parent=parent, variants=wanted.get("variants", []), actor=actor
                )
            except DjangoValidationError as error:
                raise exceptions.ValidationError(
                    {"prerequisites": {str(index): as_serializer_error(error)}}
                ) from None


def proposed_or_written(
    actor: Any,
    state: FlagState,
    text: dict[str, str] | None,
    write: Callable[[], object],
) -> ChangeRequest | None:
    """Run ``write``: directly, or, where the environment takes them, as a change request.

    ``text`` is the body's ``change_request`` (title and description). The result is the new
    change request; ``None`` when the write was made directly or, proposed, changed nothing.
    """
    environment = state.environment
    if not environment.needs_change_requests:
        write()
        return None
    text = text or {}
    with services.proposing(
        environment=environment,
        actor=actor,
        title=text.get("title", ""),
        description=text.get("description", ""),
    ) as result:
        write()
    return result.change_request
