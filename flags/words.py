"""FlagShip's configuration in the words its forms use: serves, rollouts, conditions, rules, states.

Every function takes plain values in the ruleset format's shapes (docs/ruleset-format.md: a serve
document, a condition document, a rule document), so the flag list, the rules panel, the timeline's
diffs and the comparison of environments all describe the same thing the same way, whether it
comes from the database, from history, or from a ruleset document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .formats import format_percentage

OPERATOR_LABELS = {
    "in": "is one of",
    "not_in": "is not one of",
    "str_contains": "contains",
    "str_starts_with": "starts with",
    "str_ends_with": "ends with",
    "regex": "matches regex",
    "num_eq": "= (number)",
    "num_gt": "> (number)",
    "num_gte": "≥ (number)",
    "num_lt": "< (number)",
    "num_lte": "≤ (number)",
    "date_after": "is after (date)",
    "date_before": "is before (date)",
    "semver_eq": "= (version)",
    "semver_gt": "> (version)",
    "semver_gte": "≥ (version)",
    "semver_lt": "< (version)",
    "semver_lte": "≤ (version)",
    "in_cidr": "is in network",
    "exists": "is set",
    "not_exists": "is not set",
}


def percent(thousandths: int) -> str:
    """A share in thousandths of a percent, as people write it: "30 %"."""
    return f"{format_percentage(thousandths)} %"


def rollout_in_words(rollout: int | None) -> str:
    """A rule's rollout: "everyone" when it has none, else "30 %"."""
    return "everyone" if rollout is None else percent(rollout)


def serve_in_words(serve: Any) -> str:
    """A serve document: "on", or "twenty 50 %, fifty 50 %" for a split."""
    if not isinstance(serve, Mapping):
        return "—"
    if "variant" in serve:
        return str(serve["variant"])
    parts = [
        f"{entry.get('variant')} {percent(int(entry.get('weight', 0)))}"
        for entry in serve.get("split", [])
        if isinstance(entry, Mapping)
    ]
    return ", ".join(parts) or "—"


def split_short(serve: Mapping[str, Any]) -> str:
    """A split as its shares only: "split 50/50", "split 33.333/33.333/33.334"."""
    shares = [
        format_percentage(int(entry.get("weight", 0)))
        for entry in serve.get("split", [])
        if isinstance(entry, Mapping)
    ]
    return f"split {'/'.join(shares)}"


def value_in_words(value: Any) -> str:
    """One condition value: a string as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_in_words(condition: Mapping[str, Any]) -> str:
    """A condition document: "country is one of DE, AT", "NOT email ends with @example.com"."""
    operator = str(condition.get("operator", ""))
    label = OPERATOR_LABELS.get(operator, operator)
    values = condition.get("values") or []
    shown = ", ".join(value_in_words(value) for value in values)
    text = f"{condition.get('attribute', '')} {label} {shown}".strip()
    if condition.get("case_insensitive"):
        text = f"{text} (ignoring case)"
    return f"NOT {text}" if condition.get("negate") else text


def conditions_in_words(conditions: Sequence[Mapping[str, Any]]) -> str:
    """Every condition of a rule, joined with "and"; "—" when there is none."""
    return " and ".join(condition_in_words(condition) for condition in conditions) or "—"


def is_catch_all(rule: Mapping[str, Any]) -> bool:
    """Whether a rule applies to everyone (no condition, no segment), whatever its rollout."""
    return not rule.get("conditions") and not rule.get("segments")


def rule_in_words(rule: Mapping[str, Any], segment_names: Mapping[str, str] | None = None) -> str:
    """A rule document in one line: "If country is one of DE, 30 % of them → on".

    ``segment_names`` maps segment keys to names (keys are shown when a name is unknown).
    """
    names = segment_names or {}
    who = [condition_in_words(condition) for condition in rule.get("conditions", [])]
    who += [f"in segment {names.get(key, key)}" for key in rule.get("segments", [])]
    rollout = rule.get("rollout")
    if who:
        audience = f"If {' and '.join(who)}"
        if rollout is not None:
            audience = f"{audience}, {percent(int(rollout))} of them"
    else:
        audience = "Everyone" if rollout is None else f"{percent(int(rollout))} of everyone"
    serve = rule.get("serve")
    split = isinstance(serve, Mapping) and "split" in serve
    return f"{audience} → {'split ' if split else ''}{serve_in_words(serve)}"


@dataclass(frozen=True)
class StateSummary:
    """What a flag state serves, in a few words, and whether that deserves a warning."""

    text: str
    detail: str
    warning: bool = False


def state_summary(
    *,
    enabled: bool,
    off_variant: str,
    rules: Sequence[Mapping[str, Any]],
    default_serve: Any,
) -> StateSummary:
    """What a state serves: "Off", "On · serves on", "On · 30 % + 2 rules", "On · split 50/50".

    "On · serves off" is a warning: the state is on, but it can only ever serve its off variant.
    ``rules`` need only ``conditions`` and ``segments`` (lists, or their counts), ``rollout`` and
    ``serve``.
    """
    default = serve_in_words(default_serve)
    if not enabled:
        return StateSummary("Off", f"everyone gets {off_variant}")
    served = {_single(rule.get("serve")) for rule in rules} | {_single(default_serve)}
    if served == {off_variant}:
        detail = "on, but every rule and the default serve give the off variant"
        return StateSummary(f"On · serves {off_variant}", detail, warning=True)
    catch_all = next((rule for rule in rules if is_catch_all(rule)), None)
    targeted = sum(1 for rule in rules if not is_catch_all(rule))
    parts: list[str] = []
    details: list[str] = []
    if targeted:
        details.append(f"{targeted} targeting rule{'s' if targeted != 1 else ''}")
    if catch_all is not None:
        gets = serve_in_words(catch_all.get("serve"))
        rollout = catch_all.get("rollout")
        if rollout is not None:
            parts.append(percent(int(rollout)))
            details.append(f"{percent(int(rollout))} of everyone → {gets}")
        else:
            details.append(f"everyone → {gets}")
    # The catch-all's rollout is said as a share ("30 %"); every other rule is counted.
    others = len(rules) - (1 if parts else 0)
    if others:
        parts.append(f"{others} rule{'s' if others != 1 else ''}")
    details.append(f"anyone else → {default}")
    if not parts:
        if isinstance(default_serve, Mapping) and "split" in default_serve:
            return StateSummary(f"On · {split_short(default_serve)}", f"everyone: {default}")
        return StateSummary(f"On · serves {default}", f"everyone gets {default}")
    return StateSummary(f"On · {' + '.join(parts)}", "; ".join(details))


def _single(serve: Any) -> str | None:
    """The one variant a serve always gives, or None for a split of several variants."""
    if not isinstance(serve, Mapping):
        return None
    if "variant" in serve:
        return str(serve["variant"])
    given = {
        str(entry.get("variant"))
        for entry in serve.get("split", [])
        if isinstance(entry, Mapping) and int(entry.get("weight", 0)) > 0
    }
    return given.pop() if len(given) == 1 else None


def prerequisite_in_words(parent: str, variants: Sequence[str]) -> str:
    """A prerequisite: "new-checkout is on", "plan-flag serves gold or silver"."""
    if not variants:
        return f"{parent} is on"
    return f"{parent} serves {' or '.join(variants)}"
