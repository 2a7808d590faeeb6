"""The golden vectors of sdk/vectors/, run against the engine: the public contract, as data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from flagship_sdk.engine import EvaluationResult, Ruleset, RulesetError, bucket

from .conftest import evaluation_vector_files, load_vectors

RESULT_FIELDS = ("value", "variant", "reason", "rule", "prerequisite", "error_code")


def _cases() -> list[Any]:
    return [
        pytest.param(path, group_index, case, id=f"{path.stem}:{case['name']}")
        for path in evaluation_vector_files()
        for group_index, group in enumerate(load_vectors(path.name)["groups"])
        for case in group["cases"]
    ]


_COMPILED: dict[tuple[Path, int], Ruleset] = {}


def _ruleset(path: Path, group_index: int) -> Ruleset:
    key = (path, group_index)
    if key not in _COMPILED:
        group = load_vectors(path.name)["groups"][group_index]
        _COMPILED[key] = Ruleset.from_dict(group["ruleset"])
    return _COMPILED[key]


def _observed(result: Any) -> dict[str, Any]:
    return {field: getattr(result, field) for field in RESULT_FIELDS}


def _same(expected: Any, observed: Any) -> bool:
    # JSON-native equality: 1 and 1.0 are different answers, and so are true and 1.
    if type(expected) is not type(observed):
        return False
    if isinstance(expected, dict):
        return expected.keys() == observed.keys() and all(
            _same(value, observed[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return len(expected) == len(observed) and all(map(_same, expected, observed))
    return bool(expected == observed)


@pytest.mark.parametrize(("path", "group_index", "case"), _cases())
def test_vector__evaluated__matches_expected(path: Path, group_index: int, case: Any) -> None:
    # Given a compiled vector ruleset
    ruleset = _ruleset(path, group_index)
    # When the case is evaluated
    if case.get("all"):
        results = ruleset.evaluate_all(case["context"])
        observed: Any = {key: _observed(result) for key, result in results.items()}
    else:
        observed = _observed(ruleset.evaluate(case["flag"], case["context"]))
        assert observed["value"] == case["expected"]["value"]
    # Then every field matches, with JSON types
    assert _same(case["expected"], observed), (case["expected"], observed)


def test_vectors__counted__at_least_two_hundred_cases() -> None:
    assert len(_cases()) >= 200


@pytest.mark.parametrize("case", load_vectors("buckets.json")["cases"], ids=repr)
def test_bucket_vector__computed__matches_expected(case: dict[str, Any]) -> None:
    assert bucket(case["salt"], case["value"], case["seed"]) == case["bucket"]


INVALID = load_vectors("invalid.json")["cases"]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c["name"])
def test_invalid_vector__compiled__is_rejected_with_code_and_path(case: dict[str, Any]) -> None:
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(case["ruleset"], strict=case["strict"])
    assert caught.value.code == case["error"]["code"], caught.value
    if "path" in case["error"]:
        assert caught.value.path == case["error"]["path"]
    assert caught.value.message


@pytest.mark.parametrize("case", [c for c in INVALID if not c["strict"]], ids=lambda c: c["name"])
def test_invalid_vector__refused_leniently__refused_strictly_with_the_same_error(
    case: dict[str, Any],
) -> None:
    # Given a document lenient mode refuses, when it is compiled strictly
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(case["ruleset"], strict=True)
    # Then strict mode refuses it too, with the same code
    assert caught.value.code == case["error"]["code"]


CONDITION_CODES = ("unknown_operator", "invalid_value", "invalid_document")


@pytest.mark.parametrize("case", [c for c in INVALID if c["strict"]], ids=lambda c: c["name"])
def test_invalid_vector__strict_only__compiles_leniently_recording_the_error_as_a_problem(
    case: dict[str, Any],
) -> None:
    # Given a document only strict mode refuses, when it is compiled leniently
    ruleset = Ruleset.from_dict(case["ruleset"])
    # Then it compiles, and what strict mode refuses in a condition is a problem of that condition
    # (an unknown operator is named first, even where strict mode stops at its missing values)
    error = case["error"]
    if error["code"] in CONDITION_CODES:
        condition = re.match(r".*\.conditions\[\d+\]", error["path"])
        assert condition is not None
        recorded = [p for p in ruleset.problems if p.path.startswith(condition.group())]
        assert len(recorded) == 1
        if error["code"] != "invalid_document":
            assert (recorded[0].code, recorded[0].path) == (error["code"], error["path"])
    elif error["code"] == "unsupported_format":
        assert [problem.code for problem in ruleset.problems] == ["newer_format"]
    ruleset.evaluate_all({"targetingKey": "user-1"})


# --- forward-compat.json: lenient mode reads past what a newer server may send --------------------

FORWARD = load_vectors("forward-compat.json")["groups"]


def _forward_cases() -> list[Any]:
    return [
        pytest.param(index, case, id=f"forward-compat:{case['name']}")
        for index, group in enumerate(FORWARD)
        for case in group["cases"]
    ]


def _with_problem(result: EvaluationResult) -> dict[str, Any]:
    observed = _observed(result)
    problem = result.problem
    observed["problem"] = None if problem is None else {"code": problem.code, "path": problem.path}
    return observed


@pytest.mark.parametrize(("group_index", "case"), _forward_cases())
def test_forward_vector__evaluated_leniently__matches_expected_with_problem(
    group_index: int, case: Any
) -> None:
    # Given a document a newer server may send, compiled leniently
    ruleset = Ruleset.from_dict(FORWARD[group_index]["ruleset"])
    # When the case is evaluated
    if case.get("all"):
        results = ruleset.evaluate_all(case["context"])
        observed: Any = {key: _with_problem(result) for key, result in results.items()}
    else:
        observed = _with_problem(ruleset.evaluate(case["flag"], case["context"]))
    # Then every field matches, the problem the evaluation went through included
    assert _same(case["expected"], observed), (case["expected"], observed)


@pytest.mark.parametrize(
    "group", FORWARD, ids=[f"forward-compat[{index}]" for index in range(len(FORWARD))]
)
def test_forward_vector_group__compiled__records_problems_and_strict_mode_refuses(
    group: dict[str, Any],
) -> None:
    # Given a document a newer server may send
    document = group["ruleset"]
    # When it is compiled leniently, then it records exactly the listed problems
    problems = Ruleset.from_dict(document).problems
    observed = sorted((p.code, p.flag or "", p.path) for p in problems)
    expected = sorted((p["code"], p["flag"] or "", p["path"]) for p in group["problems"])
    assert observed == expected
    assert all(problem.message for problem in problems)
    # And strict mode refuses it with the listed error (or, for unknown members, compiles it)
    if group["strict"] is None:
        assert Ruleset.from_dict(document, strict=True).problems == problems
        return
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(document, strict=True)
    assert (caught.value.code, caught.value.path) == (
        group["strict"]["code"],
        group["strict"]["path"],
    )


class _Tagged(EvaluationResult):
    """A result class of the caller's, as the server's (hashed by identity)."""

    __slots__ = ()
    __hash__ = object.__hash__
    __eq__ = object.__eq__


_TAGGED: dict[tuple[Path, int], Ruleset] = {}


@pytest.mark.parametrize(("path", "group_index", "case"), _cases())
def test_vector__result_type__every_result_of_that_type_with_the_same_fields(
    path: Path, group_index: int, case: Any
) -> None:
    # Given the vector's ruleset compiled with a result type of the caller's, and without
    key = (path, group_index)
    if key not in _TAGGED:
        group = load_vectors(path.name)["groups"][group_index]
        _TAGGED[key] = Ruleset.from_dict(group["ruleset"], result_type=_Tagged)
    tagged, plain = _TAGGED[key], _ruleset(path, group_index)
    # When the case is evaluated by both
    if case.get("all"):
        pairs = list(
            zip(
                tagged.evaluate_all(case["context"]).values(),
                plain.evaluate_all(case["context"]).values(),
                strict=True,
            )
        )
    else:
        pairs = [
            (
                tagged.evaluate(case["flag"], case["context"]),
                plain.evaluate(case["flag"], case["context"]),
            )
        ]
    # Then every result but an error's is of that type, with exactly the plain one's fields
    for mine, theirs in pairs:
        assert type(mine) is (EvaluationResult if theirs.error_code else _Tagged), mine
        assert mine.to_dict() == theirs.to_dict()
        # and the same object is handed out again for the same context
    if not case.get("all") and pairs[0][1].error_code is None:
        assert tagged.evaluate(case["flag"], case["context"]) is pairs[0][0]
