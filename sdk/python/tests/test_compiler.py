"""Compile-time validation: precise codes, paths and messages; strict and lenient references."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flagship_sdk.engine import Reason, Ruleset, RulesetError

from .conftest import boolean_flag, document


def _rejected(doc: dict[str, Any], *, strict: bool = False) -> RulesetError:
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(doc, strict=strict)
    return caught.value


def _rule(**members: Any) -> dict[str, Any]:
    return {"id": "r1", "serve": {"variant": "on"}, **members}


def _condition(operator: str, values: list[Any], **extra: Any) -> dict[str, Any]:
    return {"attribute": "a", "operator": operator, "values": values, **extra}


BAD_CONDITIONS = pytest.mark.parametrize(
    ("condition", "code", "path_end", "message_part"),
    [
        (_condition("starts_with", ["x"]), "unknown_operator", ".operator", "unknown operator"),
        (_condition("regex", ["(a)\\1"]), "invalid_value", ".values[0]", "RE2 cannot compile"),
        (_condition("num_gt", ["ten"]), "invalid_value", ".values[0]", "not a finite number"),
        (_condition("num_gt", [True]), "invalid_value", ".values[0]", "not a finite number"),
        (_condition("date_after", ["2024-01-01"]), "invalid_value", ".values[0]", "with an offset"),
        (_condition("semver_gt", ["v1.0.0"]), "invalid_value", ".values[0]", "semantic version"),
        (_condition("in_cidr", ["10.0.0.1/8"]), "invalid_value", ".values[0]", "host bits set"),
        (_condition("in", [{"x": 1}]), "invalid_value", ".values[0]", "strings, numbers"),
        (_condition("str_contains", []), "invalid_value", ".values", "at least one value"),
        (_condition("exists", ["x"]), "invalid_value", ".values", "takes no values"),
        (
            _condition("num_gt", [1], case_insensitive=True),
            "invalid_value",
            ".case_insensitive",
            "string operators only",
        ),
        (
            {"attribute": "a", "operator": "in", "values": "x"},
            "invalid_document",
            ".values",
            "list",
        ),
        ({"attribute": "a", "operator": "in"}, "invalid_document", ".values", "required"),
    ],
)


@BAD_CONDITIONS
def test_condition__invalid__strictly_rejected_with_code_path_and_message(
    condition: dict[str, Any], code: str, path_end: str, message_part: str
) -> None:
    # Given a flag whose first rule holds one bad condition
    doc = document({"new-checkout": boolean_flag(rules=[_rule(conditions=[condition])])})
    # When it is compiled strictly
    error = _rejected(doc, strict=True)
    # Then the error names the code, the exact member and a helpful message
    assert error.code == code
    assert error.path == f'flags["new-checkout"].rules[0].conditions[0]{path_end}'
    assert message_part in error.message


@BAD_CONDITIONS
@pytest.mark.parametrize("negate", [False, True])
def test_condition__invalid__leniently_a_problem_and_its_rule_never_matches(
    condition: dict[str, Any], code: str, path_end: str, message_part: str, negate: bool
) -> None:
    # Given a flag whose first rule holds one bad condition (negated or not) and a catch-all rule
    bad = {**condition, "negate": negate}
    rules = [_rule(conditions=[bad]), {"id": "r2", "serve": {"variant": "off"}}]
    doc = document({"new-checkout": boolean_flag(rules=rules)})
    # When it is compiled leniently
    ruleset = Ruleset.from_dict(doc)
    # Then strict mode's error is recorded as the one problem, with the flag it belongs to
    path = f'flags["new-checkout"].rules[0].conditions[0]{path_end}'
    [problem] = ruleset.problems
    assert (problem.code, problem.flag, problem.path) == (code, "new-checkout", path)
    assert message_part in problem.message
    assert problem.message.endswith("the condition never matches")
    # And the bad condition holds for nobody, negated or not, with or without the attribute
    for context in ({}, {"a": "x"}, {"a": 1}):
        result = ruleset.evaluate("new-checkout", context)
        assert (result.variant, result.reason, result.rule) == ("off", Reason.TARGETING_MATCH, "r2")
        assert result.problem is problem


def test_split__weights_not_summing__rejected() -> None:
    serve = {"split": [{"variant": "on", "weight": 60_000}, {"variant": "off", "weight": 30_000}]}
    error = _rejected(document({"f": boolean_flag(default_serve=serve)}))
    assert (error.code, error.path) == ("invalid_split", 'flags["f"].default_serve.split')
    assert "add up to 100000" in error.message


def test_variant__of_wrong_kind__rejected() -> None:
    flag = boolean_flag(kind="number", variants={"low": 1, "high": "2"}, off_variant="low")
    flag["default_serve"] = {"variant": "low"}
    error = _rejected(document({"f": flag}))
    assert (error.code, error.path) == ("invalid_variant", 'flags["f"].variants["high"]')


def test_serve__unknown_variant__rejected() -> None:
    error = _rejected(document({"f": boolean_flag(default_serve={"variant": "maybe"})}))
    assert (error.code, error.path) == ("invalid_variant", 'flags["f"].default_serve.variant')


def test_rule_ids__duplicated__rejected() -> None:
    error = _rejected(document({"f": boolean_flag(rules=[_rule(), _rule()])}))
    assert (error.code, error.path) == ("duplicate_rule_id", 'flags["f"].rules[1].id')


@pytest.mark.parametrize("rollout", [-1, 100_001, 2.5, True, "50"])
def test_rollout__out_of_range_or_type__rejected(rollout: Any) -> None:
    error = _rejected(document({"f": boolean_flag(rules=[_rule(rollout=rollout)])}))
    assert (error.code, error.path) == ("invalid_rollout", 'flags["f"].rules[0].rollout')


def test_unknown_segment__lenient_never_matches__strict_rejects() -> None:
    doc = document(
        {"f": boolean_flag(rules=[_rule(segments=["ghosts"])], default_serve={"variant": "off"})}
    )
    result = Ruleset.from_dict(doc).evaluate("f", {"targetingKey": "u"})
    assert (result.variant, result.reason) == ("off", Reason.DEFAULT)
    error = _rejected(doc, strict=True)
    assert (error.code, error.path) == ("unknown_segment", 'flags["f"].rules[0].segments[0]')


def test_prerequisite_cycle__lenient_fails__strict_rejects() -> None:
    doc = document(
        {
            "a": boolean_flag(prerequisites=[{"flag": "b"}]),
            "b": boolean_flag(prerequisites=[{"flag": "a"}]),
            "c": boolean_flag(prerequisites=[{"flag": "a"}]),
        }
    )
    ruleset = Ruleset.from_dict(doc)
    for key, parent in [("a", "b"), ("b", "a"), ("c", "a")]:
        result = ruleset.evaluate(key, {})
        assert (result.variant, result.reason, result.prerequisite) == (
            "off",
            Reason.PREREQUISITE_FAILED,
            parent,
        )
    assert _rejected(doc, strict=True).code == "prerequisite_cycle"


def test_prerequisite_self_reference__strict__rejected() -> None:
    doc = document({"a": boolean_flag(prerequisites=[{"flag": "a"}])})
    assert _rejected(doc, strict=True).code == "prerequisite_cycle"


def _chain(length: int) -> dict[str, Any]:
    flags = {
        f"f{index}": boolean_flag(prerequisites=[{"flag": f"f{index + 1}"}])
        for index in range(length)
    }
    flags[f"f{length}"] = boolean_flag()
    return document(flags)


def test_prerequisite_chain__ten_levels__holds() -> None:
    ruleset = Ruleset.from_dict(_chain(10), strict=True)
    assert ruleset.evaluate("f0", {}).variant == "on"


def test_prerequisite_chain__eleven_levels__fails_or_is_rejected() -> None:
    ruleset = Ruleset.from_dict(_chain(11))
    assert ruleset.evaluate("f0", {}).reason == Reason.PREREQUISITE_FAILED
    assert ruleset.evaluate("f1", {}).variant == "on"
    error = _rejected(_chain(11), strict=True)
    assert (error.code, error.path) == (
        "prerequisite_too_deep",
        'flags["f0"].prerequisites[0].flag',
    )


def test_long_chain__thousands_of_flags__compiles_without_recursion_error() -> None:
    ruleset = Ruleset.from_dict(_chain(5_000))
    assert ruleset.evaluate("f4990", {}).variant == "on"
    assert ruleset.evaluate("f0", {}).reason == Reason.PREREQUISITE_FAILED


def test_unknown_prerequisite__strict__rejected() -> None:
    doc = document({"a": boolean_flag(prerequisites=[{"flag": "zzz"}])})
    assert Ruleset.from_dict(doc).evaluate("a", {}).reason == Reason.PREREQUISITE_FAILED
    error = _rejected(doc, strict=True)
    assert (error.code, error.path) == ("unknown_prerequisite", 'flags["a"].prerequisites[0].flag')


def test_prerequisite_variant__not_of_parent__rejected() -> None:
    doc = document(
        {
            "a": boolean_flag(prerequisites=[{"flag": "b", "variants": ["on", "maybe"]}]),
            "b": boolean_flag(),
        }
    )
    error = _rejected(doc)
    assert (error.code, error.path) == (
        "invalid_variant",
        'flags["a"].prerequisites[0].variants[1]',
    )


def test_format__unknown__rejected() -> None:
    assert _rejected({"format": 2, "version": 1, "flags": {}}).code == "unsupported_format"


def test_document__missing_member__names_it() -> None:
    error = _rejected({"format": 1, "flags": {}})
    assert (error.code, error.path) == ("invalid_document", "version")


RICH = document(
    {
        "f": boolean_flag(
            rules=[
                _rule(conditions=[_condition("in", ["x"]), _condition("semver_gt", ["1.0.0"])]),
                {
                    "id": "r2",
                    "rollout": 5,
                    "bucket_by": ["a", "b"],
                    "segments": ["s"],
                    "serve": {"split": [{"variant": "on", "weight": 100_000}]},
                },
            ],
            prerequisites=[{"flag": "g", "variants": ["x"]}],
        ),
        "g": {
            "kind": "json",
            "variants": {"x": {"deep": [1, 2.5, None]}},
            "enabled": False,
            "off_variant": "x",
            "default_serve": {"variant": "x"},
        },
    },
    segments={"s": {"conditions": [_condition("regex", ["^a"])]}},
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


RICH_PATHS = _paths(RICH)[1:]
junk = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@settings(max_examples=400)
@given(where=st.sampled_from(RICH_PATHS), replacement=junk, strict=st.booleans())
def test_compile__any_member_replaced__raises_only_ruleset_error(
    where: tuple[Any, ...], replacement: Any, strict: bool
) -> None:
    # Given a valid rich document with one member replaced by junk
    doc = copy.deepcopy(RICH)
    node: Any = doc
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = replacement
    # When it is compiled, it either compiles or fails with a RulesetError - nothing else
    try:
        ruleset = Ruleset.from_dict(doc, strict=strict)
    except RulesetError as error:
        assert error.code
        assert error.message
    else:
        ruleset.evaluate_all({"a": "abc", "targetingKey": "u"})
