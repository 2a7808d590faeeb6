"""The public API of a compiled ruleset: lookups, contexts of every shape, never raising."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from flagship_sdk.engine import ErrorCode, Reason, Ruleset, bucket

from .conftest import boolean_flag, document

RULESET = Ruleset.from_dict(
    document(
        {
            "visible": boolean_flag(client_visible=True),
            "hidden": boolean_flag(
                rules=[{"id": "r", "rollout": 100_000, "serve": {"variant": "off"}}]
            ),
            "text": {
                "kind": "string",
                "variants": {"a": "A"},
                "enabled": True,
                "off_variant": "a",
                "default_serve": {"variant": "a"},
            },
        },
        project="demo",
        environment="production",
        version=7,
    )
)


def test_ruleset__compiled__exposes_version_keys_and_kinds() -> None:
    assert (RULESET.version, RULESET.project, RULESET.environment) == (7, "demo", "production")
    assert list(RULESET) == ["visible", "hidden", "text"]
    assert len(RULESET) == 3
    assert "text" in RULESET
    assert "nope" not in RULESET
    assert [] not in RULESET  # an unhashable key is simply not there
    assert RULESET.kind("text") == "string"
    assert RULESET.kind("nope") is None
    assert RULESET.client_visible("visible")
    assert not RULESET.client_visible("hidden")
    assert not RULESET.client_visible("nope")


def test_evaluate_all__client_visible_only__returns_only_visible_flags() -> None:
    results = RULESET.evaluate_all({"targetingKey": "u"}, client_visible_only=True)
    assert list(results) == ["visible"]


@pytest.mark.parametrize("context", [[1, 2], "user-1", 42, object()])
def test_evaluate__context_not_an_object__answers_invalid_context(context: Any) -> None:
    result = RULESET.evaluate("hidden", context)
    assert (result.reason, result.error_code, result.value) == (
        Reason.ERROR,
        ErrorCode.INVALID_CONTEXT,
        None,
    )
    everything = RULESET.evaluate_all(context)
    assert {r.error_code for r in everything.values()} == {ErrorCode.INVALID_CONTEXT}


class _ReadOnlyContext(Mapping[str, Any]):
    """A non-dict mapping: the engine accepts any Mapping as a context."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_evaluate__any_mapping__is_a_context() -> None:
    result = RULESET.evaluate("hidden", _ReadOnlyContext({"targetingKey": "u"}))
    assert (result.variant, result.reason, result.rule) == ("off", Reason.TARGETING_MATCH, "r")


class _Hostile(Mapping[str, Any]):
    """A mapping that fails on every read, standing in for a broken host object."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_evaluate__context_raising__answers_general_error_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        result = RULESET.evaluate("hidden", _Hostile())
        everything = RULESET.evaluate_all(_Hostile())
    assert (result.reason, result.error_code) == (Reason.ERROR, ErrorCode.GENERAL)
    assert everything["hidden"].error_code == ErrorCode.GENERAL
    assert everything["visible"].value is True  # a flag that needs no context still answers
    assert "flag.evaluation_failed" in caplog.text


def test_result__to_dict__has_every_contract_field() -> None:
    result = RULESET.evaluate("hidden", {"targetingKey": "u"})
    assert result.to_dict() == {
        "key": "hidden",
        "value": False,
        "variant": "off",
        "reason": "TARGETING_MATCH",
        "rule": "r",
        "prerequisite": None,
        "error_code": None,
        "problem": None,
    }
    assert not result.is_error
    assert RULESET.evaluate("nope").is_error


def test_evaluate__non_string_key__reported_as_its_repr() -> None:
    assert RULESET.evaluate(42, {}).key == "42"  # type: ignore[arg-type]  # a caller's mistake


def test_bucket__lone_surrogate__hashed_as_replacement_character() -> None:
    # A browser's TextEncoder turns a lone surrogate into U+FFFD; so does the engine.
    assert bucket("salt", "a\ud800b", 0) == bucket("salt", "a\ufffdb", 0)
    ruleset = Ruleset.from_dict(
        document(
            {"f": boolean_flag(rules=[{"id": "r", "rollout": 50_000, "serve": {"variant": "off"}}])}
        )
    )
    split = Ruleset.from_dict(
        document(
            {
                "s": boolean_flag(
                    default_serve={
                        "split": [
                            {"variant": "on", "weight": 50_000},
                            {"variant": "off", "weight": 50_000},
                        ]
                    }
                )
            }
        )
    )
    assert split.evaluate("s", {"targetingKey": "\ud800"}) == split.evaluate(
        "s", {"targetingKey": "\ufffd"}
    )
    lone = ruleset.evaluate("f", {"targetingKey": "x\udfff"})
    replaced = ruleset.evaluate("f", {"targetingKey": "x\ufffd"})
    assert lone == replaced
    assert lone.error_code is None
