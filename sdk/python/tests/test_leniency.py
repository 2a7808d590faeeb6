"""Lenient mode reads past what a newer server may send: recorded problems, never a refusal.

The golden vectors in sdk/vectors/forward-compat.json pin the evaluation; these tests pin what the
vectors cannot see: the objects, the modes and the frame of a condition that stays strict.
"""

from __future__ import annotations

from typing import Any

import pytest

from flagship_sdk.engine import (
    FORMAT_MINOR,
    ProblemCode,
    Reason,
    Ruleset,
    RulesetError,
    RulesetProblem,
)

from .conftest import boolean_flag, document

GLOB = {"attribute": "email", "operator": "str_glob", "values": ["*@example.com"]}
GLOB_PATH = 'flags["glob"].rules[0].conditions[0].operator'


def _rule(rule_id: str, *conditions: dict[str, Any], serve: str = "on") -> dict[str, Any]:
    return {"id": rule_id, "conditions": list(conditions), "serve": {"variant": serve}}


def _in(attribute: str, *values: Any) -> dict[str, Any]:
    return {"attribute": attribute, "operator": "in", "values": list(values)}


def _glob_flag(**overrides: Any) -> dict[str, Any]:
    """A flag: an unknown operator's rule, then ``country in DE``; default off."""
    rules = [_rule("r-glob", GLOB), _rule("r-de", _in("country", "DE"))]
    return boolean_flag(rules=rules, default_serve={"variant": "off"}, **overrides)


def test_document_without_problems__compiled__records_none_and_results_carry_none() -> None:
    # Given an ordinary document
    doc = document({"f": boolean_flag(rules=[_rule("r", _in("country", "DE"))])})
    # When it is compiled leniently and evaluated
    ruleset = Ruleset.from_dict(doc)
    # Then there are no problems, and no result carries one
    assert ruleset.problems == ()
    assert ruleset.evaluate("f", {"country": "DE"}).problem is None
    assert ruleset.evaluate("f", {}).problem is None


def test_unknown_operator__strict__refused_as_before() -> None:
    # Given a document with an unknown operator, when it is compiled strictly
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(document({"glob": _glob_flag()}), strict=True)
    # Then it is refused with the code and path strict mode always gave
    assert (caught.value.code, caught.value.path) == ("unknown_operator", GLOB_PATH)


def test_results_after_an_unusable_rule__evaluated_twice__are_the_same_objects() -> None:
    # Given a flag whose results are served after a rule an unknown operator disabled
    ruleset = Ruleset.from_dict(document({"glob": _glob_flag()}))
    # When a result is asked for twice
    first = ruleset.evaluate("glob", {"country": "DE"})
    second = ruleset.evaluate("glob", {"country": "DE"})
    # Then it was built once, when compiling (nothing is allocated per evaluation)
    assert first is second
    assert first.problem is ruleset.problems[0]
    assert (first.rule, first.reason) == ("r-de", Reason.TARGETING_MATCH)


def test_result_with_problem__to_dict__names_code_path_and_message() -> None:
    ruleset = Ruleset.from_dict(document({"glob": _glob_flag()}))
    problem = ruleset.evaluate("glob", {}).to_dict()["problem"]
    assert problem == {
        "code": "unknown_operator",
        "path": GLOB_PATH,
        "message": "unknown operator 'str_glob'; the condition never matches",
    }


@pytest.mark.parametrize(
    ("condition", "path_end"),
    [
        ("country in DE", ""),
        ({"attribute": "a", "operator": 7, "values": ["x"]}, ".operator"),
        ({"operator": "in", "values": ["x"]}, ".attribute"),
        ({"attribute": "a", "operator": "str_glob", "values": ["x"], "negate": "yes"}, ".negate"),
        (
            {"attribute": "a", "operator": "in", "values": ["x"], "case_insensitive": 1},
            ".case_insensitive",
        ),
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_condition_frame__broken__refused_in_both_modes(
    condition: Any, path_end: str, strict: bool
) -> None:
    # Given a condition whose frame (not its operator or values) is broken
    doc = document(
        {
            "f": boolean_flag(
                rules=[{"id": "r", "conditions": [condition], "serve": {"variant": "on"}}]
            )
        }
    )
    # When it is compiled in either mode
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(doc, strict=strict)
    # Then it is refused: the format fixes the frame, so this is a broken document, not a newer one
    assert caught.value.code == "invalid_document"
    assert caught.value.path == f'flags["f"].rules[0].conditions[0]{path_end}'


def test_unusable_condition_in_a_segment__rules_naming_it_never_match() -> None:
    # Given a segment with an unknown operator beside a condition that holds, used by two flags
    segments = {"beta": {"conditions": [_in("country", "DE"), GLOB]}}
    uses = [{"id": "r", "segments": ["beta"], "serve": {"variant": "on"}}]
    doc = document(
        {
            "a": boolean_flag(rules=uses, default_serve={"variant": "off"}),
            "b": boolean_flag(rules=uses),
        },
        segments=segments,
    )
    # When it is compiled leniently
    ruleset = Ruleset.from_dict(doc)
    # Then the problem is recorded once, for the segment, and neither flag's rule matches
    [problem] = ruleset.problems
    assert (problem.code, problem.flag, problem.path) == (
        "unknown_operator",
        None,
        'segments["beta"].conditions[1].operator',
    )
    for key in ("a", "b"):
        result = ruleset.evaluate(key, {"country": "DE", "email": "ann@example.com"})
        assert (result.reason, result.rule, result.problem) == (Reason.DEFAULT, None, problem)


def test_two_unusable_rules__result_after_both__names_the_first() -> None:
    # Given two rules disabled by unusable conditions, then a catch-all
    bad_regex = {"attribute": "a", "operator": "regex", "values": ["(a)\\1"]}
    rules = [_rule("r1", GLOB), _rule("r2", bad_regex), {"id": "r3", "serve": {"variant": "off"}}]
    ruleset = Ruleset.from_dict(document({"f": boolean_flag(rules=rules)}))
    # When the catch-all serves
    result = ruleset.evaluate("f", {"a": "aa"})
    # Then both problems are recorded and the result names the first one passed over
    assert [p.code for p in ruleset.problems] == ["unknown_operator", "invalid_value"]
    assert result.rule == "r3"
    assert result.problem is ruleset.problems[0]


def test_prerequisite_chain__parent_went_through_a_problem__every_descendant_carries_it() -> None:
    # Given glob <- child <- grandchild, and a flag whose parent has no problem
    flags = {
        "glob": _glob_flag(),
        "child": boolean_flag(prerequisites=[{"flag": "glob", "variants": ["on"]}]),
        "grandchild": boolean_flag(
            prerequisites=[{"flag": "child"}],
            rules=[_rule("r", _in("plan", "pro"))],
            default_serve={"variant": "off"},
        ),
        "plain": boolean_flag(),
        "sibling": boolean_flag(prerequisites=[{"flag": "plain"}]),
    }
    ruleset = Ruleset.from_dict(document(flags))
    problem = ruleset.problems[0]
    context = {"country": "DE", "plan": "pro"}
    # When each is evaluated, alone and all together
    alone = {key: ruleset.evaluate(key, context) for key in flags}
    together = ruleset.evaluate_all(context)
    # Then the problem follows the chain, the values are those of an ordinary evaluation, and the
    # flags that did not go through it carry none
    for results in (alone, together):
        assert results["glob"].problem is problem
        assert (results["child"].variant, results["child"].problem) == ("on", problem)
        grandchild = results["grandchild"]
        assert (grandchild.variant, grandchild.rule, grandchild.problem) == ("on", "r", problem)
        assert results["sibling"].problem is None
    failed = ruleset.evaluate("grandchild", {"country": "FR"})
    assert (failed.reason, failed.prerequisite, failed.problem) == (
        Reason.PREREQUISITE_FAILED,
        "child",
        problem,
    )


def test_prerequisite__parent_matched_before_its_unusable_rule__child_carries_no_problem() -> None:
    # Given a parent whose first rule matches before the rule an unknown operator disabled
    parent = boolean_flag(
        rules=[_rule("r-fr", _in("country", "FR")), _rule("r-glob", GLOB)],
        default_serve={"variant": "off"},
    )
    child = boolean_flag(prerequisites=[{"flag": "parent"}])
    ruleset = Ruleset.from_dict(document({"parent": parent, "child": child}))
    # When the child is evaluated for a subject the first rule matches, then it carries no problem
    result = ruleset.evaluate("child", {"country": "FR"})
    assert (result.variant, result.problem) == ("on", None)


def test_prerequisite__broken_after_a_parent_with_a_problem__fails_carrying_it() -> None:
    # Given a child whose first parent went through a problem and whose second parent is missing
    child = boolean_flag(prerequisites=[{"flag": "glob"}, {"flag": "ghost"}])
    ruleset = Ruleset.from_dict(document({"glob": _glob_flag(), "child": child}))
    # When it is evaluated with the first parent on
    result = ruleset.evaluate("child", {"country": "DE"})
    # Then the missing parent fails it, and the problem met on the way is kept
    assert (result.reason, result.prerequisite) == (Reason.PREREQUISITE_FAILED, "ghost")
    assert result.problem is ruleset.problems[0]


@pytest.mark.parametrize("strict", [False, True])
def test_unknown_members__every_level__recorded_and_ignored_in_both_modes(strict: bool) -> None:
    # Given a document with a member format 1.0 does not have in each kind of object
    flag = boolean_flag(
        rules=[
            {
                "id": "r",
                "x-rule": 1,
                "conditions": [{**_in("country", "DE"), "x-condition": 1}],
                "serve": {"variant": "on", "x-serve": 1},
            }
        ],
        prerequisites=[{"flag": "g", "x-prerequisite": 1}],
        default_serve={"split": [{"variant": "off", "weight": 100000, "x-entry": 1}], "x-split": 1},
        x_flag=1,
    )
    doc = document(
        {"f": flag, "g": boolean_flag()},
        segments={"s": {"conditions": [], "x segment": 1}},
        x_document=1,
    )
    # When it is compiled
    ruleset = Ruleset.from_dict(doc, strict=strict)
    # Then each is recorded with its path (a name that is not an identifier in brackets)
    observed = {(p.flag, p.path) for p in ruleset.problems}
    assert {p.code for p in ruleset.problems} == {ProblemCode.UNKNOWN_FIELD}
    assert observed == {
        (None, "x_document"),
        (None, 'segments["s"]["x segment"]'),
        ("f", 'flags["f"].x_flag'),
        ("f", 'flags["f"].rules[0]["x-rule"]'),
        ("f", 'flags["f"].rules[0].conditions[0]["x-condition"]'),
        ("f", 'flags["f"].rules[0].serve["x-serve"]'),
        ("f", 'flags["f"].default_serve["x-split"]'),
        ("f", 'flags["f"].default_serve.split[0]["x-entry"]'),
        ("f", 'flags["f"].prerequisites[0]["x-prerequisite"]'),
    }
    # And evaluation is as without them, with no problem on any result
    result = ruleset.evaluate("f", {"country": "DE"})
    assert (result.variant, result.rule, result.problem) == ("on", "r", None)


def test_format_minor__current_or_absent__no_problem() -> None:
    for extra in ({}, {"format_minor": FORMAT_MINOR}, {"format_minor": None}):
        doc = document({"f": boolean_flag()}, **extra)
        assert Ruleset.from_dict(doc).problems == ()
        assert Ruleset.from_dict(doc, strict=True).problems == ()


def test_format_minor__newer__lenient_problem_strict_refused() -> None:
    # Given a document of a newer minor format version
    doc = document({"f": boolean_flag()}, format_minor=FORMAT_MINOR + 1)
    # When it is compiled leniently, then it is read, with one problem
    assert Ruleset.from_dict(doc).problems == (
        RulesetProblem(
            "newer_format",
            None,
            "format_minor",
            f"format 1.{FORMAT_MINOR + 1} is newer than this engine's 1.{FORMAT_MINOR}: "
            "what it does not know is ignored or never matches",
        ),
    )
    # And strict mode refuses it
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(doc, strict=True)
    assert (caught.value.code, caught.value.path) == ("unsupported_format", "format_minor")


@pytest.mark.parametrize("strict", [False, True])
def test_format_major__newer__refused_in_both_modes(strict: bool) -> None:
    doc = {"format": 2, "format_minor": 0, "version": 1, "flags": {}}
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(doc, strict=strict)
    assert (caught.value.code, caught.value.path) == ("unsupported_format", "format")


def test_problem__as_text__code_path_and_message() -> None:
    problem = RulesetProblem("unknown_field", "f", 'flags["f"].x', "unknown member 'x' ignored")
    assert str(problem) == "unknown_field at flags[\"f\"].x: unknown member 'x' ignored"


def test_evaluate_all__child_before_its_parents__inherits_and_memoizes_every_parent() -> None:
    # Given a child listed before its two parents, the first of which goes through a problem
    flags = {
        "child": boolean_flag(prerequisites=[{"flag": "glob"}, {"flag": "plain"}]),
        "glob": _glob_flag(),
        "plain": boolean_flag(),
    }
    ruleset = Ruleset.from_dict(document(flags))
    # When every flag is evaluated together
    results = ruleset.evaluate_all({"country": "DE"})
    # Then the child holds, carries the problem, and each parent's result is the one served alone
    assert (results["child"].variant, results["child"].problem) == ("on", ruleset.problems[0])
    assert results["plain"] is ruleset.evaluate("plain", {})
    assert results["glob"] is ruleset.evaluate("glob", {"country": "DE"})


def test_child_and_parent__same_broken_segment__child_result_kept_as_built() -> None:
    # Given a parent and a child whose first rules both name a segment with an unknown operator
    segments = {"beta": {"conditions": [GLOB]}}
    beta_then_all = [
        {"id": "r-beta", "segments": ["beta"], "serve": {"variant": "off"}},
        {"id": "r-all", "serve": {"variant": "on"}},
    ]
    flags = {
        "parent": boolean_flag(rules=beta_then_all),
        "child": boolean_flag(prerequisites=[{"flag": "parent"}], rules=beta_then_all),
    }
    ruleset = Ruleset.from_dict(document(flags, segments=segments))
    # When the child is evaluated twice
    first = ruleset.evaluate("child", {})
    # Then its result already names the (same) problem, so it is served as built, not copied
    assert (first.rule, first.problem) == ("r-all", ruleset.problems[0])
    assert ruleset.evaluate("child", {}) is first
