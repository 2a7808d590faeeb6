"""The golden vectors of sdk/vectors/, run against the engine: the public contract, as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flagship_sdk.engine import Ruleset, RulesetError, bucket

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


@pytest.mark.parametrize("case", load_vectors("invalid.json")["cases"], ids=lambda c: c["name"])
def test_invalid_vector__compiled__is_rejected_with_code_and_path(case: dict[str, Any]) -> None:
    with pytest.raises(RulesetError) as caught:
        Ruleset.from_dict(case["ruleset"], strict=case["strict"])
    assert caught.value.code == case["error"]["code"], caught.value
    if "path" in case["error"]:
        assert caught.value.path == case["error"]["path"]
    assert caught.value.message
