"""Properties of evaluation that must hold for every input (hypothesis), and split statistics."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flagship_sdk.engine import OPERATORS, EvaluationResult, Reason, Ruleset, RulesetError
from flagship_sdk.engine import values as engine_values

from .conftest import document

# Surrogates included: a JSON context can carry a lone "\ud800", and it must bucket like U+FFFD.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
keys = any_text
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


def _split_flag(rollout: int, weights: tuple[int, ...], salt: str = "exp") -> dict[str, Any]:
    variants = {f"v{index}": f"value-{index}" for index in range(len(weights))}
    return {
        "kind": "string",
        "variants": {**variants, "none": "none"},
        "enabled": True,
        "off_variant": "none",
        "salt": salt,
        "rules": [
            {
                "id": "ramp",
                "rollout": rollout,
                "serve": {
                    "split": [
                        {"variant": f"v{index}", "weight": weight}
                        for index, weight in enumerate(weights)
                    ]
                },
            }
        ],
        "default_serve": {"variant": "none"},
    }


def _ramp(rollout: int, weights: tuple[int, ...] = (30_000, 70_000)) -> Ruleset:
    return Ruleset.from_dict(document({"ramp": _split_flag(rollout, weights)}))


@given(key=keys, low=st.integers(0, 100_000), high=st.integers(0, 100_000))
def test_rollout__raised__keeps_everyone_in_on_the_same_variant(
    key: str, low: int, high: int
) -> None:
    # Given a subject evaluated at a lower and a higher rollout percentage
    low, high = min(low, high), max(low, high)
    before = _ramp(low).evaluate("ramp", {"targetingKey": key})
    after = _ramp(high).evaluate("ramp", {"targetingKey": key})
    # Then a subject that was in stays in, on the same variant
    if before.reason == Reason.SPLIT:
        assert after.reason == Reason.SPLIT
        assert after.variant == before.variant


@given(key=keys, rollout=st.integers(0, 100_000), context=st.dictionaries(st.text(), json_values))
def test_evaluation__repeated__is_deterministic(key: str, rollout: int, context: Any) -> None:
    context = {**context, "targetingKey": key}
    first = _ramp(rollout).evaluate("ramp", context)
    again = _ramp(rollout).evaluate("ramp", dict(context))
    assert first == again


def test_participation_and_split__many_keys__are_independent() -> None:
    # Given 40 000 keys, a 50 % rollout and a 50/50 split
    ruleset = _ramp(50_000, (50_000, 50_000))
    everyone = _ramp(100_000, (50_000, 50_000))
    rng = random.Random(7)
    counts = {True: [0, 0], False: [0, 0]}
    for _ in range(40_000):
        context = {"targetingKey": f"{rng.getrandbits(64):016x}"}
        participates = ruleset.evaluate("ramp", context).reason == Reason.SPLIT
        variant = everyone.evaluate("ramp", context).variant
        counts[participates][variant == "v0"] += 1
    # Then the variant share is the same among participants and the others (within 2 points)
    share_in = counts[True][1] / sum(counts[True])
    share_out = counts[False][1] / sum(counts[False])
    assert abs(share_in - 0.5) < 0.02
    assert abs(share_out - 0.5) < 0.02


def test_split__hundred_thousand_keys__each_variant_within_half_a_point() -> None:
    rng = random.Random(2026)
    subjects = [f"user-{rng.getrandbits(48)}" for _ in range(100_000)]
    for weights in [(50_000, 50_000), (10_000, 20_000, 70_000), (33_333, 33_333, 33_334)]:
        ruleset = _ramp(100_000, weights)
        counts = [0] * len(weights)
        for subject in subjects:
            variant = ruleset.evaluate("ramp", {"targetingKey": subject}).variant
            assert variant is not None
            counts[int(variant[1:])] += 1
        for index, weight in enumerate(weights):
            share = counts[index] / len(subjects) * 100
            assert abs(share - weight / 1000) <= 0.5, (weights, counts)


def _every_operator_ruleset() -> Ruleset:
    samples: dict[str, list[Any]] = {
        "in": ["a", 1, True],
        "not_in": ["a"],
        "str_contains": ["x"],
        "str_starts_with": ["x"],
        "str_ends_with": ["x"],
        "regex": ["^a+b?$"],
        "num_eq": [1],
        "num_gt": [1.5],
        "num_gte": ["2"],
        "num_lt": [3],
        "num_lte": [4],
        "date_after": ["2024-01-01T00:00:00Z"],
        "date_before": [1_700_000_000],
        "semver_eq": ["1.0.0"],
        "semver_gt": ["1.0.0-alpha.1"],
        "semver_gte": ["1.0.0"],
        "semver_lt": ["2.0.0"],
        "semver_lte": ["2.0.0+build"],
        "in_cidr": ["10.0.0.0/8", "::1"],
        "exists": [],
        "not_exists": [],
    }
    assert samples.keys() == OPERATORS
    rules = []
    for index, (operator, values) in enumerate(sorted(samples.items())):
        for negate in (False, True):
            condition = {"attribute": "a", "operator": operator, "values": values, "negate": negate}
            rules.append(
                {"id": f"{index}-{negate}", "conditions": [condition], "serve": {"variant": "on"}}
            )
    flag = {
        "kind": "boolean",
        "variants": {"on": True, "off": False},
        "enabled": True,
        "off_variant": "off",
        "rules": rules,
        "default_serve": {
            "split": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 99_999}]
        },
    }
    return Ruleset.from_dict(document({"f": flag}))


EVERY_OPERATOR = _every_operator_ruleset()


@settings(max_examples=300)
@given(
    context=st.dictionaries(st.sampled_from(["a", "targetingKey", "currentTime"]), json_values)
    | st.dictionaries(st.text(), json_values)
)
def test_evaluation__any_context__never_raises_or_errors(context: dict[str, Any]) -> None:
    for rule_key in [*EVERY_OPERATOR, "missing"]:
        result = EVERY_OPERATOR.evaluate(rule_key, context)
        assert isinstance(result, EvaluationResult)
        if rule_key == "f":
            assert result.error_code is None
            assert result.variant in ("on", "off")


@given(key=st.one_of(st.text(), st.integers(), st.none(), st.lists(st.integers())))
def test_evaluation__unknown_key_of_any_type__answers_flag_not_found(key: Any) -> None:
    result = EVERY_OPERATOR.evaluate(key, {})
    if key != "f":
        assert result.error_code == "FLAG_NOT_FOUND"


@settings(max_examples=300)
@given(
    doc=st.dictionaries(st.sampled_from(["format", "version", "flags", "segments"]), json_values)
)
def test_compile__arbitrary_document__raises_only_ruleset_error(doc: dict[str, Any]) -> None:
    try:
        Ruleset.from_dict(doc)
    except RulesetError as error:
        assert error.code


semver_like = st.from_regex(r"\A[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-[0-9A-Za-z.]{1,8})?\Z")


@given(st.lists(semver_like | any_text | st.text(min_size=60, max_size=80), max_size=30))
@settings(max_examples=200)
def test_remembered_version_keys__are_the_keys_a_fresh_parse_reads(texts: list[str]) -> None:
    # Given the engine's remembered version keys, filled by earlier reads of the same strings
    for text in texts:
        engine_values.parse_version(text)
    # Then every read answers what a fresh parse answers, and the memory stays bounded
    for text in texts:
        assert engine_values.parse_version(text) == engine_values._parse_version(text)
    assert len(engine_values._VERSION_KEYS) <= engine_values.VERSION_KEYS_KEPT
    assert all(
        len(text) <= engine_values.VERSION_KEPT_LENGTH for text in engine_values._VERSION_KEYS
    )


def test_remembered_version_keys__cleared_when_full__and_still_right() -> None:
    for number in range(engine_values.VERSION_KEYS_KEPT + 10):
        assert engine_values.parse_version(f"1.{number}.0") == (1, number, 0, 1, ())
    assert len(engine_values._VERSION_KEYS) <= engine_values.VERSION_KEYS_KEPT
    assert engine_values.parse_version("1.0.0-rc.1") == (1, 0, 0, 0, ((1, 0, "rc"), (0, 1, "")))
    assert engine_values.parse_version(7) is None
