"""The golden vectors (sdk/vectors/) through the server: each vector ruleset is entered into the
database through the services, as a person would through the admin, then rebuilt by the snapshot
and evaluated. Every result field must match the vector, so the database, the services and the
snapshot together lose nothing the engine's contract depends on.

What the data model cannot hold is left out, flag by flag, and counted (see ``_inexpressible``):
keys that are not URL-safe, an empty salt (the model reads it as "the key"), a JSON ``null``
variant value, bucket-by attribute names with a comma (the model stores the list
comma-separated), and the references that strict validation refuses when saved (unknown segments
or prerequisite flags, prerequisite cycles and chains deeper than 10) together with every flag
that depends on them. A case runs when its flag (or, for ``all`` cases, each flag compared) could
be entered. Rule ids are database ids on the server; results are compared after mapping them
back to the vector's ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from flags import services, snapshot
from flags.models import Environment, Flag, FlagState, Project, Segment
from flagship_sdk.engine import MAX_PREREQUISITE_DEPTH, Ruleset

VECTORS = Path(settings.BASE_DIR) / "sdk" / "vectors"
NOT_EVALUATION_FILES = ("buckets.json", "invalid.json")
RESULT_FIELDS = ("value", "variant", "reason", "rule", "prerequisite", "error_code")
KEY = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")
ENVIRONMENT = (("vectors", "Vectors", False, "#6b7280"),)
BOOLEAN_VARIANTS = {"on": True, "off": False}

# What ran, pinned: a change in the vectors or in what the model can hold must be looked at.
EXPECTED_GROUPS_RUN = 20
EXPECTED_CASES_RUN = 971
EXPECTED_CASES_TOTAL = 1025


@dataclass
class Group:
    """One vector group, with what the server can hold of it."""

    name: str
    ruleset: dict[str, Any]
    cases: list[dict[str, Any]]
    left_out: dict[str, str] = field(default_factory=dict)  # flag key -> why

    @property
    def flags(self) -> dict[str, Any]:
        """The group's flags by key."""
        flags: dict[str, Any] = self.ruleset["flags"]
        return flags

    def runnable(self, case: dict[str, Any]) -> bool:
        """Whether every flag the case looks at could be entered."""
        if case.get("all"):
            return any(key not in self.left_out for key in self.flags) or not self.flags
        return case["flag"] not in self.left_out


def _groups() -> list[Group]:
    groups = []
    for path in sorted(VECTORS.glob("*.json")):
        if path.name in NOT_EVALUATION_FILES:
            continue
        loaded = json.loads(path.read_text(encoding="utf-8"))
        for index, group in enumerate(loaded["groups"]):
            entry = Group(f"{path.stem}[{index}]", group["ruleset"], group["cases"])
            entry.left_out = _inexpressible(entry.ruleset)
            groups.append(entry)
    return groups


def _inexpressible(ruleset: dict[str, Any]) -> dict[str, str]:
    """The flags of a vector ruleset the data model cannot hold, each with the reason."""
    flags: dict[str, Any] = ruleset["flags"]
    segments: dict[str, Any] = ruleset.get("segments", {})
    reasons: dict[str, str] = {}
    for key, flag in flags.items():
        reason = _flag_reason(key, flag, segments)
        if reason:
            reasons[key] = reason
    # Prerequisites: a missing parent, a cycle or a chain deeper than strict mode allows cannot
    # be saved; nor can any flag depending on a flag that cannot be entered.
    changed = True
    while changed:
        changed = False
        for key in flags:
            if key in reasons:
                continue
            reason = _prerequisite_reason(key, flags, reasons)
            if reason:
                reasons[key] = reason
                changed = True
    return reasons


def _flag_reason(key: str, flag: dict[str, Any], segments: dict[str, Any]) -> str | None:
    if not KEY.match(key):
        return "flag key not URL-safe"
    if any(not KEY.match(variant) for variant in flag["variants"]):
        return "variant key not URL-safe"
    if any(value is None for value in flag["variants"].values()):
        return "JSON null variant value"
    if flag.get("salt") == "":
        return "empty salt (the model reads an empty salt as the key)"
    for rule in flag.get("rules", []):
        for segment in rule.get("segments", []):
            if segment not in segments:
                return "unknown segment (refused when saved)"
            if not KEY.match(segment):
                return "segment key not URL-safe"
        names = _bucket_attributes(rule.get("bucket_by", "targetingKey"))
        if any("," in name or name != name.strip() or not name for name in names):
            return "bucket-by attribute the comma-separated column cannot hold"
    return None


def _prerequisite_reason(key: str, flags: dict[str, Any], reasons: dict[str, str]) -> str | None:
    depth = _depth(key, flags, ())
    if depth is None:
        return "prerequisite cycle (refused when saved)"
    if depth > MAX_PREREQUISITE_DEPTH:
        return "prerequisite chain deeper than 10 (refused when saved)"
    for prerequisite in flags[key].get("prerequisites", []):
        parent = prerequisite["flag"]
        if parent not in flags:
            return "unknown prerequisite flag (refused when saved)"
        if parent in reasons:
            return f"depends on {parent!r}, which cannot be entered"
    return None


def _depth(key: str, flags: dict[str, Any], path: tuple[str, ...]) -> int | None:
    """Levels of prerequisites below a flag; None on a cycle."""
    if key in path:
        return None
    depths = [
        _depth(prerequisite["flag"], flags, (*path, key))
        for prerequisite in flags[key].get("prerequisites", [])
        if prerequisite["flag"] in flags
    ]
    if any(depth is None for depth in depths):
        return None
    return 1 + max((depth for depth in depths if depth is not None), default=-1)


def _bucket_attributes(bucket_by: str | list[str]) -> list[str]:
    return [bucket_by] if isinstance(bucket_by, str) else list(bucket_by)


# --- Entering a vector ruleset through the services ------------------------------------------


def _enter(group: Group) -> tuple[Environment, dict[str, str]]:
    """Create the group's project through the services; return it and rule id -> vector id."""
    project = services.project_create(key="vectors", name="Vectors", environments=ENVIRONMENT)
    environment = project.environments.get()
    segments = {
        key: services.segment_create(
            project=project, key=key, name=key, conditions=segment.get("conditions", [])
        )
        for key, segment in group.ruleset.get("segments", {}).items()
        if KEY.match(key)
    }
    flags: dict[str, Flag] = {}
    rule_ids: dict[str, str] = {}
    for key in _parents_first(group):
        document = group.flags[key]
        flags[key] = flag = _create_flag(project, key, document)
        state = flag.states.get(environment=environment)
        services.flag_state_update(
            state=state,
            actor=None,
            enabled=document["enabled"],
            off_variant=flag.variants.get(key=document["off_variant"]),
            default_serve=document["default_serve"],
        )
        for rule in document.get("rules", []):
            created = services.rule_create(
                state=state,
                serve=rule["serve"],
                conditions=rule.get("conditions", []),
                segments=[segments[name] for name in rule.get("segments", [])],
                rollout=rule.get("rollout"),
                bucket_by=",".join(_bucket_attributes(rule.get("bucket_by", "targetingKey"))),
                actor=None,
            )
            rule_ids[str(created.pk)] = rule["id"]
        for prerequisite in document.get("prerequisites", []):
            services.prerequisite_add(
                state=FlagState.objects.get(pk=state.pk),
                parent=flags[prerequisite["flag"]],
                variants=prerequisite.get("variants", []),
                actor=None,
            )
    return environment, rule_ids


def _create_flag(project: Project, key: str, document: dict[str, Any]) -> Flag:
    kind = document["kind"]
    variants = document["variants"]
    salt = document.get("salt", "")
    return services.flag_create(
        project=project,
        key=key,
        name=key,
        kind=kind,
        variants=None if kind == Flag.Kind.BOOLEAN else list(variants.items()),
        salt="" if salt == key else salt,
        client_visible=bool(document.get("client_visible", False)),
    )


def _parents_first(group: Group) -> Iterator[str]:
    done: set[str] = set()

    def visit(key: str) -> Iterator[str]:
        if key in done:
            return
        done.add(key)
        for prerequisite in group.flags[key].get("prerequisites", []):
            yield from visit(prerequisite["flag"])
        yield key

    for key in group.flags:
        if key not in group.left_out:
            yield from visit(key)


# --- Comparing -------------------------------------------------------------------------------


def _same(expected: Any, observed: Any) -> bool:
    """JSON-native equality: 1 and 1.0 are different answers, and so are true and 1."""
    if type(expected) is not type(observed):
        return False
    if isinstance(expected, dict):
        return expected.keys() == observed.keys() and all(
            _same(value, observed[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return len(expected) == len(observed) and all(map(_same, expected, observed))
    return bool(expected == observed)


def _observed(result: Any, rule_ids: dict[str, str]) -> dict[str, Any]:
    observed = {name: getattr(result, name) for name in RESULT_FIELDS}
    if observed["rule"] is not None:
        observed["rule"] = rule_ids[observed["rule"]]
    return observed


def _mismatches(group: Group, ruleset: Ruleset, rule_ids: dict[str, str]) -> list[str]:
    mismatches = []
    for case in group.cases:
        if not group.runnable(case):
            continue
        if case.get("all"):
            results = ruleset.evaluate_all(case["context"])
            observed: Any = {key: _observed(result, rule_ids) for key, result in results.items()}
            expected = {
                key: value for key, value in case["expected"].items() if key not in group.left_out
            }
        else:
            observed = _observed(ruleset.evaluate(case["flag"], case["context"]), rule_ids)
            expected = case["expected"]
        if not _same(expected, observed):
            mismatches.append(f"{case['name']}: expected {expected}, got {observed}")
    return mismatches


GROUPS = _groups()


@pytest.mark.parametrize("group", GROUPS, ids=lambda group: group.name)
def test_vector_group__entered_through_services__snapshot_evaluates_as_expected(
    group: Group, db: None
) -> None:
    # Given the group's ruleset entered into the database through the services
    if not any(group.runnable(case) for case in group.cases):
        pytest.skip(f"no case can run: {sorted(set(group.left_out.values()))}")
    environment, rule_ids = _enter(group)
    # When the environment's snapshot is built and compiled as strictly as when saving
    document = snapshot.environment_ruleset(environment)
    ruleset = Ruleset.from_dict(document, strict=True)
    # Then it holds exactly the flags that could be entered, and every runnable case matches
    assert sorted(document["flags"]) == sorted(set(group.flags) - set(group.left_out))
    assert _mismatches(group, ruleset, rule_ids) == []


def test_vector_groups__through_the_server__count_pinned() -> None:
    # Given every evaluation vector group
    # When the groups and cases the server can hold are counted
    cases_total = sum(len(group.cases) for group in GROUPS)
    groups_run = sum(any(group.runnable(case) for case in group.cases) for group in GROUPS)
    cases_run = sum(group.runnable(case) for group in GROUPS for case in group.cases)
    # Then they are the pinned numbers (left out: see the module docstring)
    assert (groups_run, cases_run, cases_total) == (
        EXPECTED_GROUPS_RUN,
        EXPECTED_CASES_RUN,
        EXPECTED_CASES_TOTAL,
    )


def test_inexpressible__reasons__each_one_detected() -> None:
    # Given a ruleset with one flag for each thing the model cannot hold
    def flag(**members: Any) -> dict[str, Any]:
        return {
            "kind": "boolean",
            "variants": dict(BOOLEAN_VARIANTS),
            "enabled": True,
            "off_variant": "off",
            "default_serve": {"variant": "on"},
            **members,
        }

    ruleset = {
        "segments": {"ok": {"conditions": []}},
        "flags": {
            "fine": flag(rules=[{"id": "r", "segments": ["ok"], "serve": {"variant": "on"}}]),
            "spaced key": flag(),
            "salted": flag(salt=""),
            "nulled": {**flag(kind="json"), "variants": {"n": None}, "off_variant": "n"},
            "ghost-segment": flag(
                rules=[{"id": "r", "segments": ["x"], "serve": {"variant": "on"}}]
            ),
            "comma": flag(rules=[{"id": "r", "bucket_by": "a,b", "serve": {"variant": "on"}}]),
            "ghost-parent": flag(prerequisites=[{"flag": "nowhere"}]),
            "cycle-a": flag(prerequisites=[{"flag": "cycle-b"}]),
            "cycle-b": flag(prerequisites=[{"flag": "cycle-a"}]),
            "child": flag(prerequisites=[{"flag": "salted"}]),
        },
    }
    # When the inexpressible flags are found
    reasons = _inexpressible(ruleset)
    # Then each is named with its reason, and the fine flag is not
    assert reasons == {
        "spaced key": "flag key not URL-safe",
        "salted": "empty salt (the model reads an empty salt as the key)",
        "nulled": "JSON null variant value",
        "ghost-segment": "unknown segment (refused when saved)",
        "comma": "bucket-by attribute the comma-separated column cannot hold",
        "ghost-parent": "unknown prerequisite flag (refused when saved)",
        "cycle-a": "prerequisite cycle (refused when saved)",
        "cycle-b": "prerequisite cycle (refused when saved)",
        "child": "depends on 'salted', which cannot be entered",
    }


def test_segment_model__vector_segment_keys__url_safe_or_left_out() -> None:
    # Given every vector group's segments
    # When their keys are checked against what the model stores
    unsafe = sorted(
        key for group in GROUPS for key in group.ruleset.get("segments", {}) if not KEY.match(key)
    )
    # Then the unsafe ones are known (their flags are left out as "segment key not URL-safe")
    assert unsafe == ["bêta-ünicode"]
    assert Segment._meta.get_field("key").max_length == 100
