"""What a state serves, in the flag list's words (flags.words.state_summary), case by case."""

from __future__ import annotations

from typing import Any

import pytest

from flags.words import rule_in_words, state_summary

ON = {"variant": "on"}
OFF = {"variant": "off"}
TARGETED = {"conditions": [{"attribute": "country", "operator": "in", "values": ["DE"]}]}


@pytest.mark.parametrize(
    ("enabled", "rules", "default", "text", "warning"),
    [
        (False, [], ON, "Off", False),
        (True, [], ON, "On · serves on", False),
        (True, [], OFF, "On · serves off", True),
        (True, [{**TARGETED, "serve": OFF}], OFF, "On · serves off", True),
        (True, [{**TARGETED, "serve": ON}], OFF, "On · 1 rule", False),
        (
            True,
            [{**TARGETED, "serve": ON}, {"rollout": 30000, "serve": ON}],
            OFF,
            "On · 30 % + 1 rule",
            False,
        ),
        (True, [{"rollout": 30000, "serve": ON}], OFF, "On · 30 %", False),
        (True, [{**TARGETED, "serve": ON}, {"serve": ON}], OFF, "On · 2 rules", False),
        (
            True,
            [],
            {"split": [{"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]},
            "On · split 50/50",
            False,
        ),
    ],
)
def test_state_summary__each_shape__said_as_the_list_says_it(
    enabled: bool, rules: list[dict[str, Any]], default: Any, text: str, warning: bool
) -> None:
    summary = state_summary(enabled=enabled, off_variant="off", rules=rules, default_serve=default)
    assert (summary.text, summary.warning) == (text, warning)


def test_rule_in_words__conditions_segments_rollout_split() -> None:
    rule = {
        **TARGETED,
        "segments": ["beta"],
        "rollout": 12500,
        "serve": {"split": [{"variant": "a", "weight": 50000}, {"variant": "b", "weight": 50000}]},
    }
    assert rule_in_words(rule, {"beta": "Beta testers"}) == (
        "If country is one of DE and in segment Beta testers, 12.5 % of them → split a 50 %, b 50 %"
    )
