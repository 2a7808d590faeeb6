"""An import's plan: what it changes, from the project's export before and after it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .exporting import Document


@dataclass
class ImportPlan:
    """What an import changes (or, in a dry run, would change), by kind of object."""

    project: str
    created: bool
    mode: str
    dry_run: bool
    environments: dict[str, list[str]] = field(default_factory=dict)
    segments: dict[str, list[str]] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    states: dict[str, list[str]] = field(default_factory=dict)
    # The project's own fields (name, description, reason_required) changed.
    project_changed: bool = False
    # Owners named by the document that are not users here (the flags get no owner).
    unknown_owners: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything changes."""
        groups = (self.environments, self.segments, self.flags, self.states)
        return (
            self.created
            or self.project_changed
            or any(keys for group in groups for keys in group.values())
        )

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON (what the API returns)."""
        return {
            "project": self.project,
            "project_created": self.created,
            "project_changed": self.project_changed,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "changed": self.changed,
            "environments": self.environments,
            "segments": self.segments,
            "flags": self.flags,
            "states": self.states,
            "unknown_owners": self.unknown_owners,
            "diff": self.lines(),
        }

    def lines(self) -> list[str]:
        """The diff for people: ``+`` created, ``~`` changed, ``-`` archived or deleted."""
        marks = {"created": "+", "changed": "~", "unarchived": "+", "archived": "-", "deleted": "-"}
        lines = [f"+ project {self.project}"] if self.created else []
        if self.project_changed:
            lines.append(f"~ project {self.project} (changed)")
        for name, group in (
            ("environment", self.environments),
            ("segment", self.segments),
            ("flag", self.flags),
            ("state", self.states),
        ):
            for what, keys in group.items():
                lines += [f"{marks[what]} {name} {key} ({what})" for key in keys]
        for owner in self.unknown_owners:
            lines.append(f"! owner {owner} is not a user here: those flags get no owner")
        return lines or ["(no changes)"]


def plan_of(
    key: str, before: Document | None, after: Document, mode: str, dry_run: bool
) -> ImportPlan:
    """The plan: the project's export before (None: no project yet) compared with after."""
    plan = ImportPlan(project=key, created=before is None, mode=mode, dry_run=dry_run)
    old = before or {"project": after["project"], "environments": [], "segments": [], "flags": []}
    plan.project_changed = before is not None and not same(before["project"], after["project"])
    plan.environments = _compare(old["environments"], after["environments"])
    plan.segments = _compare(old["segments"], after["segments"])
    old_flags = {item["key"]: item for item in old["flags"]}
    new_flags = {item["key"]: item for item in after["flags"]}
    flags: dict[str, list[str]] = {}
    states: dict[str, list[str]] = {}
    for flag_key, new in new_flags.items():
        previous = old_flags.get(flag_key)
        if previous is None:
            flags.setdefault("created", []).append(flag_key)
            continue
        if previous["archived"] != new["archived"]:
            what = "archived" if new["archived"] else "unarchived"
            flags.setdefault(what, []).append(flag_key)
        if not same(_without(previous, "states", "archived"), _without(new, "states", "archived")):
            flags.setdefault("changed", []).append(flag_key)
        for environment_key, state in new["states"].items():
            if not same(previous["states"].get(environment_key), state):
                what = "changed" if environment_key in previous["states"] else "created"
                states.setdefault(what, []).append(f"{flag_key}/{environment_key}")
    plan.flags, plan.states = flags, states
    return plan


def _compare(old: list[Document], new: list[Document]) -> dict[str, list[str]]:
    before = {item["key"]: item for item in old}
    after = {item["key"]: item for item in new}
    result: dict[str, list[str]] = {}
    for key in sorted(after):
        if key not in before:
            result.setdefault("created", []).append(key)
        elif not same(before[key], after[key]):
            result.setdefault("changed", []).append(key)
    deleted = sorted(set(before) - set(after))
    if deleted:
        result["deleted"] = deleted
    return result


def _without(document: Document, *members: str) -> Document:
    return {key: value for key, value in document.items() if key not in members}


def same(old: Any, new: Any) -> bool:
    """Equal as JSON (``1``, ``1.0`` and ``true`` are different values to SDKs)."""
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
