"""Consistency of the golden vectors in sdk/vectors/ and of docs/ruleset.schema.json.

These tests do not run the engine: they check that every ruleset used by the evaluation vectors
conforms to the published JSON Schema, that every vectors file has the documented structure, that
the exact buckets in buckets.json follow the bucket formula from their hashes, and that the schema
lists the members the engine knows.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from flagship_sdk.engine.reading import MEMBERS

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors"
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "ruleset.schema.json"

NON_EVALUATION_FILES = frozenset({"buckets.json", "invalid.json", "forward-compat.json"})
EXPECTED_FIELDS = frozenset({"value", "variant", "reason", "rule", "prerequisite", "error_code"})
REASONS = frozenset(
    {"STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT", "DISABLED", "PREREQUISITE_FAILED", "ERROR"}
)
ERROR_CODES = frozenset({"FLAG_NOT_FOUND", "INVALID_CONTEXT", "GENERAL"})
COMPILE_ERROR_CODES = frozenset(
    {
        "invalid_document",
        "unsupported_format",
        "unknown_operator",
        "invalid_value",
        "invalid_variant",
        "invalid_split",
        "invalid_rollout",
        "duplicate_rule_id",
        "unknown_segment",
        "unknown_prerequisite",
        "prerequisite_cycle",
        "prerequisite_too_deep",
    }
)
# Reference problems: rejected in strict mode only, and invisible to a schema.
STRICT_ONLY_CODES = frozenset(
    {"unknown_segment", "unknown_prerequisite", "prerequisite_cycle", "prerequisite_too_deep"}
)
# What a condition's operator or values make unusable: refused in strict mode only.
CONDITION_VALUE_CODES = frozenset({"unknown_operator", "invalid_value"})
PROBLEM_CODES = frozenset(
    {"unknown_operator", "invalid_value", "invalid_document", "unknown_field", "newer_format"}
)
# Codes whose documents are wrong in shape, so the schema must reject them too.
SHAPE_CODES = frozenset(
    {"invalid_document", "unsupported_format", "unknown_operator", "invalid_rollout"}
)
MIN_EVALUATION_CASES = 220
MIN_BUCKET_CASES = 40
MIN_INVALID_CASES = 30
BUCKET_RANGE = 100_000


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def _evaluation_files() -> list[Path]:
    return sorted(
        path for path in VECTORS_DIR.glob("*.json") if path.name not in NON_EVALUATION_FILES
    )


def _groups() -> Iterator[tuple[str, int, dict[str, Any]]]:
    for path in _evaluation_files():
        for index, group in enumerate(_load(path)["groups"]):
            yield path.name, index, group


def _invalid_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = _load(VECTORS_DIR / "invalid.json")["cases"]
    return cases


def _bucket_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = _load(VECTORS_DIR / "buckets.json")["cases"]
    return cases


GROUPS = list(_groups())
GROUP_IDS = [f"{name}[{index}]" for name, index, _ in GROUPS]
EVALUATION_FILES = _evaluation_files()
INVALID_CASES = _invalid_cases()
INVALID_IDS = [case["name"] for case in INVALID_CASES]
BUCKET_CASES = _bucket_cases()


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(_load(SCHEMA_PATH))


def _schema_errors(validator: Draft202012Validator, document: Any) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def test_ruleset_schema__checked_against_the_2020_12_metaschema__is_valid() -> None:
    # Given the published schema
    schema = _load(SCHEMA_PATH)

    # When / Then it is itself a valid draft 2020-12 schema with a stable $id
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://flagship.dev/schemas/ruleset-1.json"


@pytest.mark.parametrize(("file_name", "index", "group"), GROUPS, ids=GROUP_IDS)
def test_vector_ruleset__validated_against_the_schema__conforms(
    validator: Draft202012Validator, file_name: str, index: int, group: dict[str, Any]
) -> None:
    # Given a ruleset used by the evaluation vectors
    ruleset = group["ruleset"]

    # When it is validated against the schema
    errors = _schema_errors(validator, ruleset)

    # Then nothing is reported
    assert errors == [], f"{file_name} group {index}"


@pytest.mark.parametrize("path", EVALUATION_FILES, ids=[path.name for path in EVALUATION_FILES])
def test_evaluation_vectors_file__read__has_the_documented_structure(path: Path) -> None:
    # Given an evaluation vectors file
    document = _load(path)

    # Then it holds a description and groups of {description, ruleset, cases}
    assert set(document) == {"description", "groups"}
    assert isinstance(document["description"], str)
    assert document["groups"]
    names: list[str] = []
    for group in document["groups"]:
        assert set(group) == {"description", "ruleset", "cases"}
        assert group["cases"], group["description"]
        for case in group["cases"]:
            names.append(case["name"])
            _assert_case_structure(case, set(group["ruleset"]["flags"]))

    # And every case name is unique within the file
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert duplicates == []


def _assert_case_structure(case: dict[str, Any], flag_keys: set[str]) -> None:
    name = case["name"]
    assert isinstance(name, str)
    assert name
    assert case["context"] is None or isinstance(case["context"], dict), name
    if "all" in case:
        assert set(case) == {"name", "all", "context", "expected"}, name
        assert case["all"] is True, name
        assert set(case["expected"]) == flag_keys, name
        for result in case["expected"].values():
            _assert_result_structure(result, name)
    else:
        assert set(case) == {"name", "flag", "context", "expected"}, name
        assert isinstance(case["flag"], str), name
        _assert_result_structure(case["expected"], name)
        if case["flag"] not in flag_keys:
            assert case["expected"]["error_code"] == "FLAG_NOT_FOUND", name


def _assert_result_structure(result: dict[str, Any], name: str) -> None:
    assert set(result) == EXPECTED_FIELDS, name
    assert result["reason"] in REASONS, name
    assert result["error_code"] is None or result["error_code"] in ERROR_CODES, name
    assert (result["reason"] == "ERROR") == (result["error_code"] is not None), name
    if result["reason"] == "ERROR":
        assert result["value"] is None, name
        assert result["variant"] is None, name
    else:
        assert isinstance(result["variant"], str), name
    assert (result["reason"] == "PREREQUISITE_FAILED") == (result["prerequisite"] is not None), name
    has_rule = result["reason"] in {"TARGETING_MATCH", "SPLIT"}
    assert result["rule"] is None or has_rule, name
    if result["reason"] == "TARGETING_MATCH":
        assert isinstance(result["rule"], str), name


def test_evaluation_vectors__counted_together__hold_enough_cases() -> None:
    # Given every evaluation vectors file
    # When their cases are counted
    total = sum(len(group["cases"]) for _, _, group in GROUPS)

    # Then there are at least as many as the contract promises
    assert total >= MIN_EVALUATION_CASES


@pytest.mark.parametrize(
    "case", BUCKET_CASES, ids=[f"{c['salt']}:{c['value']}@{c['seed']}" for c in BUCKET_CASES]
)
def test_bucket_case__formula_applied_to_hash__equals_bucket(case: dict[str, Any]) -> None:
    # Given an exact bucket case
    assert set(case) == {"salt", "value", "seed", "hash", "bucket"}
    assert isinstance(case["salt"], str)
    assert isinstance(case["value"], str)
    assert case["seed"] in {0, 1}
    assert 0 <= case["hash"] < 2**32

    # When the bucket formula is applied to the unsigned hash
    bucket = (case["hash"] * BUCKET_RANGE) >> 32

    # Then it is the recorded bucket
    assert bucket == case["bucket"]


def test_bucket_cases__taken_together__cover_seeds_boundaries_and_edge_inputs() -> None:
    # Given all exact bucket cases
    cases = BUCKET_CASES
    keys = [(case["salt"], case["value"], case["seed"]) for case in cases]

    # Then there are enough of them, without repeats, for both seeds, including the boundary
    # buckets of participation and empty and non-ASCII inputs
    assert len(cases) >= MIN_BUCKET_CASES
    assert len(set(keys)) == len(keys)
    assert {case["seed"] for case in cases} == {0, 1}
    participation = {case["bucket"] for case in cases if case["seed"] == 0}
    assert {0, BUCKET_RANGE - 1} <= participation
    assert any(case["value"] == "" for case in cases)
    assert any(case["salt"] == "" for case in cases)
    assert any(not (case["salt"] + case["value"]).isascii() for case in cases)


@pytest.mark.parametrize("case", INVALID_CASES, ids=INVALID_IDS)
def test_invalid_case__read__has_the_documented_structure(case: dict[str, Any]) -> None:
    # Given a document the compiler must reject
    # Then it names the mode, the ruleset and the expected error
    assert set(case) == {"name", "strict", "ruleset", "error"}
    assert isinstance(case["strict"], bool)
    assert isinstance(case["ruleset"], dict)
    error = case["error"]
    assert set(error) in ({"code"}, {"code", "path"})
    assert error["code"] in COMPILE_ERROR_CODES
    if "path" in error:
        assert isinstance(error["path"], str)
        assert error["path"]
        assert not error["path"].startswith(".")
    # Reference problems and unusable conditions are errors in strict mode only, so only strict
    # cases may expect them
    if error["code"] in STRICT_ONLY_CODES | CONDITION_VALUE_CODES:
        assert case["strict"] is True


def test_invalid_cases__taken_together__cover_every_compile_error_code() -> None:
    # Given all invalid documents
    names = [case["name"] for case in INVALID_CASES]

    # Then there are enough, uniquely named, and every code of the format page appears
    assert len(INVALID_CASES) >= MIN_INVALID_CASES
    assert len(set(names)) == len(names)
    assert {case["error"]["code"] for case in INVALID_CASES} == COMPILE_ERROR_CODES


@pytest.mark.parametrize(
    "case",
    [case for case in INVALID_CASES if case["error"]["code"] in SHAPE_CODES],
    ids=[case["name"] for case in INVALID_CASES if case["error"]["code"] in SHAPE_CODES],
)
def test_invalid_case__wrong_shape__is_rejected_by_the_schema(
    validator: Draft202012Validator, case: dict[str, Any]
) -> None:
    # Given a document whose error is one of shape
    # When it is validated against the schema
    errors = _schema_errors(validator, case["ruleset"])

    # Then the schema rejects it too
    assert errors != []


@pytest.mark.parametrize(
    "case",
    [case for case in INVALID_CASES if case["error"]["code"] in STRICT_ONLY_CODES],
    ids=[case["name"] for case in INVALID_CASES if case["error"]["code"] in STRICT_ONLY_CODES],
)
def test_invalid_case__strict_only_reference_problem__conforms_and_is_evaluated_leniently(
    validator: Draft202012Validator, case: dict[str, Any]
) -> None:
    # Given a document rejected only in strict mode
    ruleset = case["ruleset"]

    # When it is validated against the schema
    errors = _schema_errors(validator, ruleset)

    # Then its shape is valid, and the evaluation vectors pin its lenient behaviour
    assert errors == []
    assert any(group["ruleset"] == ruleset for _, _, group in GROUPS)


FORWARD = _load(VECTORS_DIR / "forward-compat.json")
FORWARD_GROUPS = FORWARD["groups"]
FORWARD_IDS = [f"forward-compat[{index}]" for index in range(len(FORWARD_GROUPS))]


@pytest.mark.parametrize("group", FORWARD_GROUPS, ids=FORWARD_IDS)
def test_forward_compat_group__read__has_the_documented_structure(group: dict[str, Any]) -> None:
    # Given a group of documents a newer server may send
    # Then it lists its problems, strict mode's answer and cases whose results add a problem
    assert set(group) == {"description", "ruleset", "problems", "strict", "cases"}
    assert group["problems"]
    for problem in group["problems"]:
        assert set(problem) == {"code", "flag", "path"}
        assert problem["code"] in PROBLEM_CODES
        assert problem["flag"] is None or problem["flag"] in group["ruleset"]["flags"]
    if group["strict"] is not None:
        assert set(group["strict"]) == {"code", "path"}
        assert group["strict"]["code"] in COMPILE_ERROR_CODES
    else:
        # Only unknown members are read past in strict mode too.
        assert {problem["code"] for problem in group["problems"]} == {"unknown_field"}
    for case in group["cases"]:
        results = case["expected"].values() if case.get("all") else [case["expected"]]
        for result in results:
            problem = result["problem"]
            assert problem is None or set(problem) == {"code", "path"}, case["name"]
            _assert_result_structure(
                {key: value for key, value in result.items() if key != "problem"}, case["name"]
            )


def test_forward_compat_groups__taken_together__cover_every_kind_of_problem() -> None:
    # Given every group of forward-compat.json
    codes = {problem["code"] for group in FORWARD_GROUPS for problem in group["problems"]}
    names = [case["name"] for group in FORWARD_GROUPS for case in group["cases"]]
    # Then every problem code appears, and case names are unique
    assert codes == PROBLEM_CODES
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    "group",
    [g for g in FORWARD_GROUPS if any(p["code"] == "unknown_field" for p in g["problems"])],
)
def test_forward_compat_group__unknown_members__rejected_by_the_schema(
    validator: Draft202012Validator, group: dict[str, Any]
) -> None:
    # Given a document with members format 1.0 does not have
    # When it is validated against the schema, then the schema (what the server writes) refuses it
    assert _schema_errors(validator, group["ruleset"]) != []


def test_schema_members__compared_with_the_engine__are_the_same() -> None:
    # Given the schema's objects and the members the engine knows (it records any other one)
    schema = _load(SCHEMA_PATH)
    listed = {
        name: set(schema["$defs"][name]["properties"]) for name in MEMBERS if name != "document"
    }
    listed["document"] = set(schema["properties"])
    # Then both list the same members for every object, and the schema admits no others
    assert listed == {name: set(members) for name, members in MEMBERS.items()}
    assert schema["additionalProperties"] is False
    assert all(
        schema["$defs"][name]["additionalProperties"] is False
        for name in listed
        if name != "document"
    )
