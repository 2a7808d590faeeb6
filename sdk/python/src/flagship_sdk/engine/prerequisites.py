"""Prerequisite references: checked, cycles and over-deep chains found once, at compile time.

After linking, evaluation follows prerequisites without any depth counter: every prerequisite that
could loop or nest too deep is marked ``broken`` and simply fails (lenient mode) or is an error
(strict mode).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Final

from .errors import RulesetError, key_path
from .model import Flag, Prerequisite

MAX_PREREQUISITE_DEPTH: Final = 10


def link_prerequisites(flags: dict[str, Flag], *, strict: bool) -> None:
    """Check prerequisite references, mark the ones that can never hold, and bound their depth."""
    for flag in flags.values():
        for prerequisite in flag.prerequisites:
            parent = flags.get(prerequisite.flag)
            if parent is None:
                if strict:
                    raise RulesetError(
                        "unknown_prerequisite",
                        f"{prerequisite.path}.flag",
                        f"there is no flag {prerequisite.flag!r}",
                    )
                continue
            for index, name in enumerate(prerequisite.variants or ()):
                if name not in parent.variants:
                    raise RulesetError(
                        "invalid_variant",
                        f"{prerequisite.path}.variants[{index}]",
                        f"{name!r} is not a variant of flag {parent.key!r}",
                    )
    on_cycle = _flags_on_cycles(flags)
    if strict and on_cycle:
        first = next(key for key in flags if key in on_cycle)
        raise RulesetError(
            "prerequisite_cycle",
            key_path("flags", first) + ".prerequisites",
            f"flag {first!r} depends on itself through its prerequisites",
        )
    depths: dict[str, int] = {}
    for key in flags:
        _settle(key, flags, on_cycle, depths, strict=strict)


def _settle(
    key: str, flags: dict[str, Flag], on_cycle: set[str], depths: dict[str, int], *, strict: bool
) -> int:
    """Compute a flag's prerequisite depth and mark its broken prerequisites.

    Iterative rather than recursive, so a long chain never meets Python's recursion limit.
    """
    stack = [key]
    while stack:
        current = stack[-1]
        if current in depths:
            stack.pop()
            continue
        flag = flags[current]
        pending = [
            p.flag
            for p in flag.prerequisites
            if p.flag in flags and p.flag not in on_cycle and p.flag not in depths
        ]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        depth = 0
        linked: list[Prerequisite] = []
        for prerequisite in flag.prerequisites:
            parent = prerequisite.flag
            broken = parent not in flags or parent in on_cycle
            if not broken and depths[parent] >= MAX_PREREQUISITE_DEPTH:
                if strict:
                    raise RulesetError(
                        "prerequisite_too_deep",
                        f"{prerequisite.path}.flag",
                        f"prerequisites may be nested {MAX_PREREQUISITE_DEPTH} levels deep at most",
                    )
                broken = True
            if not broken:
                depth = max(depth, depths[parent] + 1)
            linked.append(replace(prerequisite, broken=broken) if broken else prerequisite)
        depths[current] = depth
        if any(p.broken for p in linked):
            flags[current] = replace(flag, prerequisites=tuple(linked))
    return depths[key]


def _flags_on_cycles(flags: Mapping[str, Flag]) -> set[str]:
    """Return the flags that lie on a prerequisite cycle (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: set[str] = set()
    counter = 0
    for root in flags:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, _parents(flags, root)))
        while work:
            node, parents = work[-1]
            advanced = False
            for parent in parents:
                if parent not in index:
                    index[parent] = low[parent] = counter
                    counter += 1
                    stack.append(parent)
                    on_stack.add(parent)
                    work.append((parent, _parents(flags, parent)))
                    advanced = True
                    break
                if parent in on_stack:
                    low[node] = min(low[node], index[parent])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                self_loop = any(p.flag == node for p in flags[node].prerequisites)
                if len(component) > 1 or self_loop:
                    result.update(component)
    return result


def _parents(flags: Mapping[str, Flag], key: str) -> Iterator[str]:
    return (p.flag for p in flags[key].prerequisites if p.flag in flags)
