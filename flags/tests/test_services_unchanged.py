"""A write that changes nothing records nothing and moves no version; a given reason is recorded on
every history row a change writes (its cascades and many-to-many rows included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction

from accounts.models import User
from flags import services
from flags.history.recording import reason
from flags.models import Environment, Flag, FlagState, Project, Rule, Segment, Variant

from .footprint import footprint

SPLIT = {"split": [{"variant": "new", "weight": 30000}, {"variant": "sale", "weight": 70000}]}


@pytest.fixture
def targeted(string_flag: Flag, beta_testers: Segment, editor: User) -> Rule:
    """banner-text in staging: on, a split default serve, a rule with a condition and a segment."""
    state = string_flag.states.get(environment__key="staging")
    services.flag_state_update(state=state, actor=editor, enabled=True, default_serve=SPLIT)
    return services.rule_create(
        state=state,
        serve={"variant": "sale"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE", 42, True]}],
        segments=[beta_testers],
        rollout=30000,
        description="Germans",
        actor=editor,
    )


def _same_again(rule: Rule, editor: User) -> list[Callable[[], object]]:
    state = FlagState.objects.get(pk=rule.state_id)
    flag = Flag.objects.get(pk=state.flag_id)
    segment = rule.segments.get()
    variant = Variant.objects.get(flag=flag, key="sale")
    conditions = [
        {
            "attribute": c.attribute,
            "operator": c.operator,
            "values": c.values,
            "negate": c.negate,
            "case_insensitive": c.case_insensitive,
        }
        for c in rule.conditions.all()
    ]
    environment = state.environment
    return [
        lambda: services.rule_update(
            rule=Rule.objects.get(pk=rule.pk),
            actor=editor,
            serve={"variant": "sale"},
            conditions=conditions,
            segments=[segment],
            rollout=30000,
            bucket_by="targetingKey",
            description="Germans",
        ),
        lambda: services.flag_state_update(
            state=state, actor=editor, enabled=True, default_serve=SPLIT
        ),
        lambda: services.flag_update(
            flag=flag,
            actor=editor,
            tags=list(flag.tags.all()),
            name=flag.name,
            description=flag.description,
            salt=flag.salt,
            client_visible=flag.client_visible,
        ),
        lambda: services.variant_update(
            variant=variant, actor=editor, value="Winter sale!", name=variant.name
        ),
        lambda: services.segment_update(
            segment=segment,
            actor=editor,
            name=segment.name,
            description=segment.description,
            conditions=[
                {"attribute": "email", "operator": "str_ends_with", "values": ["@example.com"]}
            ],
        ),
        lambda: services.condition_save(condition=rule.conditions.get(), actor=editor),
        lambda: services.rules_reorder(state=state, rule_ids=[rule.pk], actor=editor),
        lambda: services.environment_update(
            environment=environment, actor=editor, name=environment.name, color=environment.color
        ),
        lambda: services.project_update(
            project=Project.objects.get(pk=environment.project_id),
            actor=editor,
            name="Demo",
            description="",
        ),
    ]


@pytest.mark.parametrize(
    "index",
    range(9),
    ids=[
        "rule_update",
        "flag_state_update",
        "flag_update",
        "variant_update",
        "segment_update",
        "condition_save",
        "rules_reorder",
        "environment_update",
        "project_update",
    ],
)
def test_service__same_values_again__no_history_row_and_no_version_moved(
    targeted: Rule, editor: User, index: int
) -> None:
    # Given a flag with a state, a rule, conditions, a segment and variants
    call = _same_again(targeted, editor)[index]
    before = footprint()
    # When a service is given exactly what is stored
    call()
    # Then no row (history included) was written and no version moved
    assert footprint() == before


def test_rule_update__one_value_changed__recorded_and_version_moved(
    targeted: Rule, editor: User
) -> None:
    # Given the rule at 30 %
    state = FlagState.objects.get(pk=targeted.state_id)
    before = Environment.objects.get(pk=state.environment_id).ruleset_version
    # When its rollout becomes 31 %
    services.rule_update(rule=targeted, actor=editor, rollout=31000)
    # Then it is recorded and the environment's version moved
    assert Rule.objects.get(pk=targeted.pk).rollout == 31000
    assert Environment.objects.get(pk=state.environment_id).ruleset_version == before + 1


def test_rule_update__condition_value_type_changed__is_a_change(
    targeted: Rule, editor: User
) -> None:
    # Given a condition whose values hold the number 42
    # When the same values are given with the string "42" instead
    services.rule_update(
        rule=targeted,
        actor=editor,
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE", "42", True]}],
    )
    # Then the new values are stored as given (1, 1.0, "1" and true are different JSON)
    assert targeted.conditions.get().values == ["DE", "42", True]


def test_reason__around_a_rule_delete__on_the_rule_and_its_cascaded_conditions(
    targeted: Rule, editor: User
) -> None:
    # Given a rule with a condition
    condition_id, rule_id = targeted.conditions.get().pk, targeted.pk
    # When it is deleted with a reason
    with reason("  Incident 42: Germans see errors  "):
        services.rule_delete(rule=targeted, actor=editor)
    # Then the rule's and its condition's deletion rows carry the reason (trimmed) and the editor
    rule_row = apps.get_model("flags", "HistoricalRule").objects.get(id=rule_id, history_type="-")
    condition_row = apps.get_model("flags", "HistoricalCondition").objects.get(
        id=condition_id, history_type="-"
    )
    assert rule_row.history_change_reason == "Incident 42: Germans see errors"
    assert condition_row.history_change_reason == "Incident 42: Germans see errors"
    assert rule_row.history_user == editor
    assert condition_row.history_user == editor  # written by the cascade, outside any request


def test_reason__segments_changed__on_the_many_to_many_row_too(
    targeted: Rule, editor: User, project: Project
) -> None:
    # Given a second segment
    enterprise = services.segment_create(
        project=project,
        key="enterprise",
        name="Enterprise",
        conditions=[{"attribute": "plan", "operator": "in", "values": ["enterprise"]}],
    )
    rows = apps.get_model("flags", "HistoricalRule").objects.filter(id=targeted.pk)
    last = rows.order_by("-history_id").values_list("history_id", flat=True).first()
    # When the rule's segments change with a reason
    with reason("Enterprise customers too"):
        services.rule_update(rule=targeted, actor=editor, segments=[enterprise])
    # Then the row written for it (the segments' row) says why
    written = rows.filter(history_id__gt=last)
    # (one row per many-to-many step: the old segment removed, the new one added)
    assert written.count() == 2
    assert {row.history_change_reason for row in written} == {"Enterprise customers too"}


def test_reason__blank__records_none(boolean_flag: Flag, editor: User) -> None:
    # Given a flag
    state = boolean_flag.states.get(environment__key="staging")
    # When it is toggled with a blank reason
    with reason("   "):
        services.flag_toggle(state=state, enabled=True, actor=editor)
    # Then the row has no reason (not an empty string)
    assert FlagState.history.filter(id=state.pk).first().history_change_reason is None


def _dates(rule_id: int) -> set[Any]:
    rules = apps.get_model("flags", "HistoricalRule").objects.filter(id=rule_id)
    conditions = apps.get_model("flags", "HistoricalCondition").objects.filter(rule_id=rule_id)
    return {
        *rules.values_list("history_date", flat=True),
        *conditions.values_list("history_date", flat=True),
    }


def test_history_date__one_change_of_several_rows__one_moment(
    boolean_flag: Flag, beta_testers: Segment
) -> None:
    # Given a rule created with a condition and a segment (a row each, and one for the segments)
    state = boolean_flag.states.get(environment__key="staging")
    rule = services.rule_create(
        state=state,
        serve={"variant": "on"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
        segments=[beta_testers],
    )
    # Then every row it wrote has the same date
    created = _dates(rule.pk)
    assert len(created) == 1
    # When the rule changes again
    services.rule_update(rule=rule, actor=None, rollout=5000)
    # Then that change has a moment of its own, later
    assert len(_dates(rule.pk)) == 2
    assert max(_dates(rule.pk)) > max(created)


@pytest.mark.django_db(transaction=True)
def test_history_date__committed_transactions__a_moment_each(
    boolean_flag: Flag, beta_testers: Segment
) -> None:
    # Given real transactions (committed, as in production)
    state = boolean_flag.states.get(environment__key="staging")
    with transaction.atomic():
        rule = services.rule_create(
            state=state,
            serve={"variant": "on"},
            conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
        )
        services.rule_update(rule=rule, actor=None, rollout=5000)
    services.rule_update(rule=rule, actor=None, rollout=6000)
    # Then both changes of the first transaction share its moment, the second has its own
    assert len(_dates(rule.pk)) == 2
