"""What a person is told when a change is refused, next to the field they filled in; and that a
refused change writes nothing at all (no row, no history, no version bump).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from flags import services
from flags.models import Environment, Flag, FlagState, Project, Segment, Variant

Footprint = dict[str, Any]


def _footprint() -> Footprint:
    """Every row count of the flags app (history and m2m tables too) and every version."""
    footprint: Footprint = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("flags").get_models(include_auto_created=True)
    }
    footprint["ruleset versions"] = sorted(
        Environment.objects.values_list("project__key", "key", "ruleset_version")
    )
    footprint["state versions"] = sorted(FlagState.objects.values_list("pk", "version"))
    return footprint


def _refused(change: Callable[[], object]) -> tuple[dict[str, list[str]], Footprint, Footprint]:
    """Run a change that must be refused; return its messages and the footprints around it."""
    before = _footprint()
    with pytest.raises(ValidationError) as caught:
        change()
    return caught.value.message_dict, before, _footprint()


@pytest.fixture
def staging_state(boolean_flag: Flag, staging: Environment) -> FlagState:
    """new-checkout in staging."""
    return boolean_flag.states.get(environment=staging)


@pytest.fixture
def number_flag(project: Project) -> Flag:
    """A number flag ``max-items`` with variants small (10) and large (100)."""
    return services.flag_create(
        project=project,
        key="max-items",
        name="Max items",
        kind=Flag.Kind.NUMBER,
        variants=[("small", 10), ("large", 100)],
    )


# --- Conditions: operator and values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        pytest.param(
            {"attribute": "email", "operator": "like", "values": ["%@example.com"]},
            {"operator": ["Value 'like' is not a valid choice."]},
            id="unknown operator",
        ),
        pytest.param(
            {"attribute": "name", "operator": "regex", "values": [r"(a)\1"]},
            {"values": ["RE2 cannot compile the pattern '(a)\\\\1': invalid escape sequence: \\1"]},
            id="regex back-reference",
        ),
        pytest.param(
            {
                "attribute": "signedUpAt",
                "operator": "date_after",
                "values": ["2026-01-31T09:00:00"],
            },
            {
                "values": [
                    "'2026-01-31T09:00:00' is not a date-time with an offset, such as "
                    "2026-01-31T09:00:00+01:00"
                ]
            },
            id="date without offset",
        ),
        pytest.param(
            {"attribute": "appVersion", "operator": "semver_gte", "values": ["v1.4.0"]},
            {"values": ["'v1.4.0' is not a semantic version such as 1.4.0 or 2.0.0-beta.1"]},
            id="invalid semver",
        ),
        pytest.param(
            {"attribute": "ip", "operator": "in_cidr", "values": ["10.0.0.1/8"]},
            {"values": ["'10.0.0.1/8' is not a network: 10.0.0.1/8 has host bits set"]},
            id="cidr with host bits",
        ),
        pytest.param(
            {"attribute": "age", "operator": "num_gte", "values": ["eighteen"]},
            {"values": ["'eighteen' is not a finite number"]},
            id="not a number",
        ),
        pytest.param(
            {"attribute": "country", "operator": "in", "values": "DE"},
            {"values": ["Enter a list of values."]},
            id="values not a list",
        ),
        pytest.param(
            {"attribute": "email", "operator": "exists", "values": ["x"]},
            {"values": ["'exists' takes no values"]},
            id="values on exists",
        ),
        pytest.param(
            {"attribute": "age", "operator": "num_gt", "values": [18], "case_insensitive": True},
            {
                "case_insensitive": [
                    "case_insensitive applies to string operators only, not to 'num_gt'"
                ]
            },
            id="case-insensitive number",
        ),
    ],
)
def test_rule_create__condition_the_engine_cannot_use__refused_next_to_the_field(
    staging_state: FlagState, condition: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    # Given new-checkout in staging
    # When a rule is added with a condition the engine cannot use
    messages, before, after = _refused(
        lambda: services.rule_create(
            state=staging_state, serve={"variant": "on"}, conditions=[condition], actor=None
        )
    )
    # Then the one message names the problem next to the field, and the rule was not written
    assert messages == expected
    assert after == before


def test_segment_update__regex_with_lookahead__refused_and_old_conditions_kept(
    beta_testers: Segment, staging_state: FlagState
) -> None:
    # Given beta-testers, used by a rule in staging
    services.rule_create(state=staging_state, serve={"variant": "on"}, segments=[beta_testers])
    # When its conditions are replaced by a pattern RE2 rejects
    messages, before, after = _refused(
        lambda: services.segment_update(
            segment=beta_testers,
            actor=None,
            conditions=[{"attribute": "email", "operator": "regex", "values": ["(?=admin)"]}],
        )
    )
    # Then the values are refused and the segment keeps its conditions
    assert messages == {
        "values": ["RE2 cannot compile the pattern '(?=admin)': invalid perl operator: (?="]
    }
    assert after == before
    assert list(beta_testers.conditions.values_list("operator", "values")) == [
        ("str_ends_with", ["@example.com"])
    ]


def test_condition_values__tuple__stored_as_a_list(staging_state: FlagState) -> None:
    # Given new-checkout in staging
    # When a condition's values are given as a tuple
    rule = services.rule_create(
        state=staging_state,
        serve={"variant": "on"},
        conditions=[{"attribute": "country", "operator": "in", "values": ("DE", "FR")}],
    )
    # Then they are stored as a list
    assert rule.conditions.get().values == ["DE", "FR"]


# --- Serves, rollouts and variants -----------------------------------------------------------


def test_rule_create__split_weights_not_100_percent__refused_next_to_serve(
    string_flag: Flag, staging: Environment
) -> None:
    # Given banner-text in staging
    state = string_flag.states.get(environment=staging)
    split = {"split": [{"variant": "sale", "weight": 50_000}, {"variant": "new", "weight": 40_000}]}
    # When a rule splits 50 % / 40 %
    messages, before, after = _refused(
        lambda: services.rule_create(state=state, serve=split, actor=None)
    )
    # Then the serve says what the weights add up to, and nothing was written
    assert messages == {"serve": ["weights must add up to 100000 (100 %), not 90000"]}
    assert after == before


def test_flag_state_update__default_split_over_100_percent__refused_next_to_default_serve(
    string_flag: Flag, staging: Environment
) -> None:
    # Given banner-text in staging
    state = string_flag.states.get(environment=staging)
    split = {"split": [{"variant": "sale", "weight": 60_000}, {"variant": "new", "weight": 60_000}]}
    # When its default serve becomes a 60 % / 60 % split
    messages, before, after = _refused(
        lambda: services.flag_state_update(state=state, default_serve=split, actor=None)
    )
    # Then the default serve is refused, and the state is unchanged
    assert messages == {"default_serve": ["weights must add up to 100000 (100 %), not 120000"]}
    assert after == before


def test_rule_create__serves_unknown_variant__refused_next_to_serve(
    staging_state: FlagState,
) -> None:
    # Given new-checkout in staging (variants on and off)
    # When a rule serves "maybe"
    messages, before, after = _refused(
        lambda: services.rule_create(state=staging_state, serve={"variant": "maybe"})
    )
    # Then the serve names the unknown variant
    assert messages == {"serve": ["'maybe' is not a variant of this flag"]}
    assert after == before


def test_rule_create__rollout_above_100_percent__refused_next_to_rollout(
    staging_state: FlagState,
) -> None:
    # Given new-checkout in staging
    # When a rule rolls out to 100.001 %
    messages, before, after = _refused(
        lambda: services.rule_create(state=staging_state, serve={"variant": "on"}, rollout=100_001)
    )
    # Then only the rollout is refused (not also as a violated database constraint)
    assert messages == {
        "rollout": ["rollout must be an integer from 0 to 100000 (thousandths of a percent)"]
    }
    assert after == before


def test_flag_state_update__off_variant_of_another_flag__refused_next_to_off_variant(
    staging_state: FlagState, string_flag: Flag
) -> None:
    # Given new-checkout in staging, and banner-text's variant "sale"
    sale = string_flag.variants.get(key="sale")
    # When new-checkout's off variant is set to banner-text's "sale"
    messages, before, after = _refused(
        lambda: services.flag_state_update(state=staging_state, off_variant=sale, actor=None)
    )
    # Then the off variant is refused
    assert messages == {"off_variant": ["Choose one of this flag's variants."]}
    assert after == before


def test_variant_create__string_in_a_number_flag__refused_next_to_value(
    number_flag: Flag,
) -> None:
    # Given number flag max-items
    # When a variant with the value "ten" is added
    messages, before, after = _refused(
        lambda: services.variant_create(flag=number_flag, key="ten", value="ten", actor=None)
    )
    # Then the value says what a number flag takes
    assert messages == {"value": ["A number flag's values must be a number."]}
    assert after == before


def test_flag_create__string_variant_in_a_number_flag__refused_and_flag_not_written(
    project: Project,
) -> None:
    # Given project demo
    # When a number flag is created with the variant value "10"
    messages, before, after = _refused(
        lambda: services.flag_create(
            project=project,
            key="max-items",
            name="Max items",
            kind=Flag.Kind.NUMBER,
            variants=[("small", "10")],
        )
    )
    # Then the value is refused, and neither the flag nor its states were written
    assert messages == {"value": ["A number flag's values must be a number."]}
    assert after == before


def test_variant_create__null_value__refused_next_to_value(project: Project) -> None:
    # Given a json flag
    flag = services.flag_create(
        project=project, key="layout", name="Layout", kind=Flag.Kind.JSON, variants=[("a", {})]
    )
    # When a variant with the value null is added
    messages, before, after = _refused(
        lambda: services.variant_create(flag=flag, key="nothing", value=None, actor=None)
    )
    # Then it is refused in words (not as a database error)
    assert messages == {"value": ["Enter a value (null is not supported)."]}
    assert after == before


@pytest.mark.parametrize(
    ("kind", "value"),
    [("string", ""), ("json", {}), ("json", []), ("number", 0), ("json", False)],
)
def test_flag_create__empty_looking_value__accepted(
    project: Project, kind: str, value: Any
) -> None:
    # Given project demo
    # When a flag is created with an empty string, object or list, a zero or false as a value
    flag = services.flag_create(
        project=project, key="empty", name="Empty", kind=kind, variants=[("empty", value)]
    )
    # Then the value is stored as given
    assert Variant.objects.get(flag=flag).value == value


def test_flag_create__boolean_with_other_variants__refused_next_to_variants(
    project: Project,
) -> None:
    # Given project demo
    # When a boolean flag is created with variants yes/no
    messages, before, after = _refused(
        lambda: services.flag_create(
            project=project, key="b", name="B", variants=[("yes", True), ("no", False)]
        )
    )
    # Then the variants field says what a boolean flag has
    assert messages == {
        "variants": ["A boolean flag has exactly the variants on (true) and off (false)."]
    }
    assert after == before


# --- Prerequisites ---------------------------------------------------------------------------


def test_prerequisite_add__cycle__refused_next_to_flag_and_nothing_written(
    boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout requires banner-text in staging
    services.prerequisite_add(
        state=boolean_flag.states.get(environment=staging), parent=string_flag, actor=None
    )
    parent_state = string_flag.states.get(environment=staging)
    # When banner-text is made to require new-checkout
    messages, before, after = _refused(
        lambda: services.prerequisite_add(state=parent_state, parent=boolean_flag, actor=None)
    )
    # Then the parent flag field says it would go round in a circle, and nothing was written
    assert messages == {
        "flag": [
            "Flag \"banner-text\": flag 'banner-text' depends on itself through its prerequisites"
        ]
    }
    assert after == before


def test_prerequisite_add__itself__refused_next_to_flag(staging_state: FlagState) -> None:
    # Given new-checkout in staging
    # When new-checkout is made its own prerequisite
    messages, before, after = _refused(
        lambda: services.prerequisite_add(
            state=staging_state, parent=staging_state.flag, actor=None
        )
    )
    # Then it is refused as a cycle
    assert messages == {
        "flag": [
            "Flag \"new-checkout\": flag 'new-checkout' depends on itself through its prerequisites"
        ]
    }
    assert after == before


def test_prerequisite_add__variant_the_parent_lacks__refused_next_to_variants(
    staging_state: FlagState, string_flag: Flag
) -> None:
    # Given new-checkout in staging, and banner-text (variants none, sale, new)
    # When new-checkout requires banner-text to serve "nope"
    messages, before, after = _refused(
        lambda: services.prerequisite_add(
            state=staging_state, parent=string_flag, variants=["nope"], actor=None
        )
    )
    # Then the variants field names the missing variant
    assert messages == {
        "variants": [
            "Flag \"new-checkout\", prerequisite 1: 'nope' is not a variant of flag 'banner-text'"
        ]
    }
    assert after == before


def test_prerequisite_add__same_parent_twice__refused_next_to_flag(
    staging_state: FlagState, string_flag: Flag
) -> None:
    # Given new-checkout requires banner-text in staging
    services.prerequisite_add(state=staging_state, parent=string_flag, actor=None)
    # When banner-text is added again
    messages, before, after = _refused(
        lambda: services.prerequisite_add(state=staging_state, parent=string_flag, actor=None)
    )
    # Then the parent flag field says it is already there
    assert messages == {"flag": ["banner-text is already a prerequisite of this flag."]}
    assert after == before


def test_prerequisite_add__flag_of_another_project__refused_next_to_flag(
    staging_state: FlagState,
) -> None:
    # Given new-checkout in staging, and a flag of another project
    other = services.project_create(key="other", name="Other")
    stranger = services.flag_create(project=other, key="stranger", name="Stranger")
    # When the stranger is made a prerequisite
    messages, before, after = _refused(
        lambda: services.prerequisite_add(state=staging_state, parent=stranger, actor=None)
    )
    # Then it is refused
    assert messages == {"flag": ["A prerequisite must be a flag of the same project."]}
    assert after == before


# --- Duplicate keys --------------------------------------------------------------------------


def test_flag_create__key_taken_in_project__refused_next_to_key(boolean_flag: Flag) -> None:
    # Given new-checkout in project demo
    # When another flag new-checkout is created there
    messages, before, after = _refused(
        lambda: services.flag_create(project=boolean_flag.project, key="new-checkout", name="Again")
    )
    # Then the key field says it is taken, and nothing was written
    assert messages == {"key": ["This project already has a flag new-checkout."]}
    assert after == before


@pytest.mark.parametrize(
    ("create", "expected"),
    [
        pytest.param(
            lambda p, f: services.segment_create(project=p, key="beta-testers", name="Again"),
            {"key": ["This project already has a segment beta-testers."]},
            id="segment",
        ),
        pytest.param(
            lambda p, f: services.environment_create(project=p, key="staging", name="Again"),
            {"key": ["This project already has an environment staging."]},
            id="environment",
        ),
        pytest.param(
            lambda p, f: services.project_create(key="demo", name="Again"),
            {"key": ["A project with the key demo already exists."]},
            id="project",
        ),
        pytest.param(
            lambda p, f: services.variant_create(flag=f, key="sale", value="Again", actor=None),
            {"key": ["This flag already has a variant sale."]},
            id="variant",
        ),
        pytest.param(
            lambda p, f: [
                services.tag_create(name="Checkout"),
                services.tag_create(name="checkout"),
            ],
            {"name": ["A tag checkout already exists (tag names ignore case)."]},
            id="tag in another case",
        ),
    ],
)
def test_create__key_taken__refused_next_to_key(
    beta_testers: Segment, string_flag: Flag, create: Any, expected: dict[str, list[str]]
) -> None:
    # Given project demo with segment beta-testers and flag banner-text (variant "sale")
    project = string_flag.project
    # When a segment, environment, project, variant or tag is created with a taken key
    with pytest.raises(ValidationError) as caught:
        create(project, string_flag)
    # Then the key field says it is taken
    assert caught.value.message_dict == expected
