"""The golden vectors (sdk/vectors/) through the server: each vector ruleset is entered into the
database by the import service (``flags.services.importing``: the services' checks, history and
version bumps), then rebuilt by the snapshot and evaluated. Every result field must match the
vector, so the database, the services and the snapshot together lose nothing the engine's
contract depends on.

What the data model cannot hold is left out, flag by flag, and counted
(``importing.inexpressible``): keys that are not URL-safe, an empty salt (the model reads it as
"the key"), a JSON ``null`` variant value, bucket-by attribute names with a comma (the model
stores the list comma-separated), and the references that strict validation refuses when saved
(unknown segments or prerequisite flags, prerequisite cycles and chains deeper than 10) together
with every flag that depends on them. A case runs when its flag (or, for ``all`` cases, each flag
compared) could be entered. Rule ids are database ids on the server; results are compared after
mapping them back to the vector's ids.

``forward-compat.json`` holds documents a newer server may send, which lenient SDKs read past: the
server itself must stay strict, so importing any of them that strict mode refuses fails with strict
mode's code and writes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from flags import documents, services
from flags.models import Environment, Flag, Segment
from flags.services import importing
from flagship_sdk.engine import Ruleset

VECTORS = Path(settings.BASE_DIR) / "sdk" / "vectors"
NOT_EVALUATION_FILES = ("buckets.json", "invalid.json", "forward-compat.json")
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
    return importing.inexpressible(ruleset)


# --- Entering a vector ruleset through the services ------------------------------------------


def _enter(group: Group) -> tuple[Environment, dict[str, str]]:
    """Create the group's project and import its ruleset; return it and rule id -> vector id."""
    project = services.project_create(key="vectors", name="Vectors", environments=ENVIRONMENT)
    environment = project.environments.get()
    result = importing.import_ruleset(
        document=group.ruleset, environment=environment, skip_inexpressible=True
    )
    assert result.left_out == group.left_out
    return environment, result.rule_ids


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
    document = documents.environment_ruleset(environment)
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


FORWARD_REFUSED = [
    group
    for group in json.loads((VECTORS / "forward-compat.json").read_text(encoding="utf-8"))["groups"]
    if group["strict"] is not None
]


@pytest.mark.parametrize(
    "group",
    FORWARD_REFUSED,
    ids=lambda group: str(group["strict"]["code"]) + ":" + group["strict"]["path"],
)
def test_forward_compat_group__imported__refused_as_strict_mode_refuses_it(
    group: dict[str, Any], db: None
) -> None:
    # Given a document that lenient SDKs read past (a newer server's operator, value or format)
    project = services.project_create(key="vectors", name="Vectors", environments=ENVIRONMENT)
    environment = project.environments.get()
    # When it is imported into the server
    with pytest.raises(ValidationError) as raised:
        importing.import_ruleset(document=group["ruleset"], environment=environment)
    # Then the server refuses it with strict mode's code, and nothing is written
    assert raised.value.code == group["strict"]["code"]
    assert not Flag.objects.filter(project=project).exists()
