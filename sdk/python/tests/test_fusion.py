"""Fused rule functions must agree with the conditions evaluated one by one, for every value."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flagship_sdk.engine.conditions import Condition, compile_condition
from flagship_sdk.engine.fusion import check, fuse

SAMPLES: list[tuple[str, list[Any], bool]] = [
    ("in", ["a", "1", "true", 2.5], False),
    ("not_in", ["a", "false"], False),
    ("in", ["A", "b"], True),
    ("str_contains", ["x"], False),
    ("str_contains", ["x", "y"], False),
    ("str_starts_with", ["ab", "c"], False),
    ("str_ends_with", ["z"], True),
    ("regex", ["^a.?$"], False),
    ("num_eq", [1, "2.5"], False),
    ("num_gt", [0], False),
    ("num_gte", [-3, 7], False),
    ("num_lt", [10], False),
    ("num_lte", [10.5], False),
    ("semver_gte", ["1.0.0"], False),
    ("in_cidr", ["10.0.0.0/8"], False),
    ("date_after", ["2024-01-01T00:00:00Z"], False),
    ("exists", [], False),
    ("not_exists", [], False),
]

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-20, 20)
    | st.floats(allow_nan=True)
    | st.sampled_from(
        ["a", "A", "ab", "abz", "x", "1", "2.5", "true", "false", "10.1.2.3", "1.2.0"]
    )
    | st.text(max_size=4),
    lambda children: st.lists(children, max_size=3),
    max_leaves=5,
)


def _conditions(negate: bool) -> list[Condition]:
    compiled = []
    for index, (operator, sample, case_insensitive) in enumerate(SAMPLES):
        compiled.append(
            compile_condition(
                attribute=f"a{index}",
                operator=operator,
                values=sample,
                negate=negate,
                case_insensitive=case_insensitive,
                path="test",
            )
        )
    return compiled


PLAIN = _conditions(negate=False)
NEGATED = _conditions(negate=True)


@settings(max_examples=500)
@given(value=values, negate=st.booleans(), index=st.integers(0, len(SAMPLES) - 1))
def test_fused_condition__any_value__equals_unfused(value: Any, negate: bool, index: int) -> None:
    condition = (NEGATED if negate else PLAIN)[index]
    context = {condition.attribute: value}
    fused = fuse([condition])
    assert fused is not None
    assert fused(context) == check([condition], context) == condition.predicate(context)


@settings(max_examples=300)
@given(context=st.dictionaries(st.sampled_from([f"a{i}" for i in range(len(SAMPLES))]), values))
def test_fused_rule__any_context__equals_unfused(context: dict[str, Any]) -> None:
    for conditions in (PLAIN, NEGATED, PLAIN[::2] + NEGATED[1::2]):
        fused = fuse(conditions)
        assert fused is not None
        assert fused(context) == check(conditions, context)


def test_fuse__no_conditions__is_none() -> None:
    assert fuse([]) is None
