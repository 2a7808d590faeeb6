"""Mutations: switch a flag, or edit its state, through the REST API's own code.

``toggleFlag`` and ``updateFlagState`` validate with REST's input serializers and write with
``flags.api.state_writes`` (the services), so history, the version bump, the change event and the
webhook deliveries are the same as ``POST .../toggle/`` and ``PATCH .../environments/{env}/``.
``expectedVersion`` is REST's ``If-Match``: a stale one is ``stale_version``. In an environment
that takes change requests the write becomes one, returned as ``changeRequest``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from .. import services
from ..api.serializers.targeting import FlagStateInputSerializer, ToggleInputSerializer
from ..api.state_writes import proposed_or_written, state_write
from ..models import ChangeRequest, FlagState
from .access import CHANGE, require
from .queries import not_found, project_named
from .types import FlagStateType


@strawberry.input(name="ChangeRequestInput")
class ChangeRequestInput:
    """The title and description of the change request a write becomes, where one is needed."""

    title: str = ""
    description: str = ""


@strawberry.input(name="ConditionInput")
class ConditionInput:
    """One condition of a rule."""

    attribute: str
    operator: str
    values: JSON | None = strawberry.UNSET
    negate: bool | None = strawberry.UNSET
    case_insensitive: bool | None = strawberry.UNSET


@strawberry.input(name="RuleInput")
class RuleInput:
    """One rule; the list given replaces the state's rules."""

    serve: JSON
    description: str | None = strawberry.UNSET
    conditions: list[ConditionInput] | None = strawberry.UNSET
    segments: list[str] | None = strawberry.UNSET
    rollout: int | None = strawberry.UNSET
    bucket_by: str | None = strawberry.UNSET


@strawberry.input(name="PrerequisiteInput")
class PrerequisiteInput:
    """A prerequisite; the list given replaces the state's prerequisites."""

    flag: str
    variants: list[str] | None = strawberry.UNSET


@strawberry.input(name="FlagStateInput")
class FlagStateInput:
    """The parts of a flag state to change (REST's PATCH): what is left out stays."""

    enabled: bool | None = strawberry.UNSET
    off_variant: str | None = strawberry.UNSET
    default_serve: JSON | None = strawberry.UNSET
    rules: list[RuleInput] | None = strawberry.UNSET
    prerequisites: list[PrerequisiteInput] | None = strawberry.UNSET


@strawberry.type(name="ChangeRequestSummary")
class ChangeRequestSummary:
    """A change request a write became (see the REST API's change requests)."""

    id: int
    title: str
    status: str


@strawberry.type(name="FlagStateWrite")
class FlagStateWrite:
    """The flag state after a write, and the change request it became, if it did."""

    state: FlagStateType
    change_request: ChangeRequestSummary | None


def given(value: Any) -> Any:
    """An input as REST's request body: snake_case members, members left out dropped."""
    if isinstance(value, list):
        return [given(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: given(getattr(value, item.name))
            for item in dataclasses.fields(value)
            if getattr(value, item.name) is not strawberry.UNSET
        }
    return value


def state_named(info: Info[Any, Any], project: str, flag: str, environment: str) -> FlagState:
    """The flag state a mutation names, with what the services need joined."""
    state = (
        FlagState.objects.select_related("flag", "environment")
        .filter(flag__project=project_named(info, project), flag__key=flag)
        .filter(environment__key=environment)
        .first()
    )
    if state is None:
        raise not_found(f"flag {flag!r} in environment {environment!r} of project {project!r}")
    return state


def written(state: FlagState, change_request: ChangeRequest | None) -> FlagStateWrite:
    """The answer of a write: the state re-read, and the change request, if any."""
    summary = None
    if change_request is not None:
        summary = ChangeRequestSummary(
            id=change_request.pk, title=change_request.title, status=str(change_request.status)
        )
    fresh = FlagState.objects.get(pk=state.pk)
    return FlagStateWrite(state=fresh, change_request=summary)  # type: ignore[arg-type]  # a FlagState


@strawberry.type
class Mutation:
    """FlagShip's writes over GraphQL."""

    @strawberry.mutation(description="Switch a flag on or off in one environment.")
    def toggle_flag(
        self,
        info: Info[Any, Any],
        *,
        project: str,
        flag: str,
        environment: str,
        enabled: bool,
        expected_version: int | None = None,
        change_request: ChangeRequestInput | None = None,
    ) -> FlagStateWrite:
        """REST's ``POST .../toggle/`` (``change_flagstate``)."""
        user = require(info, FlagState, CHANGE)
        body: dict[str, Any] = {"enabled": enabled}
        if change_request is not None:
            body["change_request"] = given(change_request)
        data = ToggleInputSerializer(data=body)
        data.is_valid(raise_exception=True)
        state = state_named(info, project, flag, environment)
        proposal = proposed_or_written(
            user,
            state,
            data.validated_data.get("change_request"),
            lambda: services.flag_toggle(
                state=state,
                enabled=data.validated_data["enabled"],
                actor=user,
                expected_version=expected_version,
            ),
        )
        return written(state, proposal)

    @strawberry.mutation(
        description="Change a flag's state in one environment: what `state` gives replaces "
        "what is there (rules and prerequisites as whole lists); the rest stays."
    )
    def update_flag_state(
        self,
        info: Info[Any, Any],
        *,
        project: str,
        flag: str,
        environment: str,
        expected_version: int,
        state: FlagStateInput,
        change_request: ChangeRequestInput | None = None,
    ) -> FlagStateWrite:
        """REST's ``PATCH .../environments/{environment}/`` with ``If-Match``."""
        user = require(info, FlagState, CHANGE)
        body = given(state)
        if change_request is not None:
            body["change_request"] = given(change_request)
        data = FlagStateInputSerializer(data=body, partial=True)
        data.is_valid(raise_exception=True)
        validated = dict(data.validated_data)
        text = validated.pop("change_request", None)
        target = state_named(info, project, flag, environment)
        proposal = proposed_or_written(
            user,
            target,
            text,
            lambda: state_write(
                state=target, data=validated, actor=user, expected=expected_version
            ),
        )
        return written(target, proposal)
