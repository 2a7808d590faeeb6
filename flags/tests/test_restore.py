"""A flag state read back as it was at a moment of its history, and restored to it in one change."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User
from flags import documents, services
from flags.errors import PermissionDeniedError
from flags.history.as_of import current, state_as_of
from flags.history.recording import reason
from flags.models import Environment, Flag, FlagState, Rule, Segment

DE = {"attribute": "country", "operator": "in", "values": ["DE"]}


def _document(state: FlagState) -> dict[str, Any]:
    """What SDKs receive for the state, without rule ids (a rule created again has a new id)."""
    loaded = documents.states_for_ruleset(state.environment).get(pk=state.pk)
    document = documents.state_document(loaded)
    for rule in document.get("rules", []):
        rule.pop("id")
    return document


@pytest.fixture
def history(
    boolean_flag: Flag, string_flag: Flag, staging: Environment, beta_testers: Segment
) -> dict[str, Any]:
    """new-checkout in staging: a moment worth going back to, then a day of changes."""
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    germany = services.rule_create(
        state=state, serve={"variant": "on"}, conditions=[DE], description="Germany"
    )
    services.rule_create(
        state=state, serve={"variant": "on"}, rollout=30000, segments=[beta_testers]
    )
    parent = string_flag.states.get(environment=staging)
    services.prerequisite_add(
        state=state, parent=string_flag, variants=["sale", "none"], actor=None
    )
    services.flag_toggle(state=parent, enabled=True, actor=None)
    state.refresh_from_db()
    moment = timezone.now()
    before = _document(state)
    # The day after: conditions edited, a rule deleted, another added, prerequisite gone, off.
    services.rule_update(
        rule=germany,
        actor=None,
        conditions=[{**DE, "values": ["DE", "AT"], "id": germany.conditions.get().pk}],
    )
    services.rule_delete(rule=state.rules.get(rollout=30000), actor=None)
    services.rule_create(state=state, serve={"variant": "off"}, description="Later")
    services.prerequisite_remove(prerequisite=state.prerequisites.get(), actor=None)
    services.flag_toggle(state=FlagState.objects.get(pk=state.pk), enabled=False, actor=None)
    return {"state": state, "moment": moment, "before": before}


def test_state_as_of__a_past_moment__what_sdks_received_then(history: dict[str, Any]) -> None:
    state = FlagState.objects.get(pk=history["state"].pk)
    config = state_as_of(state, history["moment"])
    assert config is not None
    document = config.document(state)
    for rule in document.get("rules", []):
        rule.pop("id")
    assert document == history["before"]


def test_state_as_of__now__same_as_the_live_state(history: dict[str, Any]) -> None:
    state = FlagState.objects.get(pk=history["state"].pk)
    assert state_as_of(state, timezone.now()) == current(state)


def test_restore__to_a_past_moment__rules_conditions_prerequisites_back_in_one_version(
    history: dict[str, Any], release_manager: User
) -> None:
    # Given the state a day of changes later
    state = FlagState.objects.get(pk=history["state"].pk)
    config = state_as_of(state, history["moment"])
    assert config is not None
    version = Environment.objects.get(pk=state.environment_id).ruleset_version
    germany = Rule.objects.get(state=state, description="Germany")
    # When it is restored to the moment, with a reason
    with reason("Back to yesterday"):
        services.flag_state_restore(state=state, config=config, actor=release_manager)
    # Then SDKs receive exactly what they received then; the surviving rule kept its id;
    # the version moved once; every history row says who and why
    state = FlagState.objects.get(pk=state.pk)
    assert _document(state) == history["before"]
    assert state.rules.order_by("order").first() == germany
    assert Environment.objects.get(pk=state.environment_id).ruleset_version == version + 1
    last = Rule.history.filter(state_id=state.pk).order_by("-history_id").first()
    assert (last.history_user, last.history_change_reason) == (release_manager, "Back to yesterday")


def test_restore__nothing_different__nothing_written(history: dict[str, Any]) -> None:
    state = FlagState.objects.get(pk=history["state"].pk)
    version = Environment.objects.get(pk=state.environment_id).ruleset_version
    services.flag_state_restore(state=state, config=current(state), actor=None)
    assert Environment.objects.get(pk=state.environment_id).ruleset_version == version


def test_restore__segment_deleted_since__refused_and_nothing_written(
    history: dict[str, Any], beta_testers: Segment
) -> None:
    # Given the segment the old rule used, deleted since (no rule uses it any more)
    beta_testers.delete()
    state = FlagState.objects.get(pk=history["state"].pk)
    config = state_as_of(state, history["moment"])
    assert config is not None
    before = _document(state)
    # When the state is restored
    with pytest.raises(ValidationError) as refused:
        services.flag_state_restore(state=state, config=config, actor=None)
    # Then it is refused in words and nothing changed
    assert refused.value.messages == ["A segment its rules used has been deleted since."]
    assert _document(FlagState.objects.get(pk=state.pk)) == before


def test_restore__editor_in_production__permission_denied(
    boolean_flag: Flag, production: Environment, editor: User
) -> None:
    state = boolean_flag.states.get(environment=production)
    with pytest.raises(PermissionDeniedError):
        services.flag_state_restore(state=state, config=current(state), actor=editor)
