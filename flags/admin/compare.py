"""Environments side by side: one flag in each environment of its project, or every flag at once.

What is compared is what SDKs receive: each environment's flag document as ``flags.documents``
writes it (``states_for_ruleset`` + ``state_document`` for one flag, ``environment_ruleset`` for a
whole project). A row differs when the corresponding parts of the documents differ, compared as
canonical JSON (so ``1`` and ``1.0`` differ, as they may for an SDK); ``flags.words`` only describes
them. Rules are aligned by position; rule ids are left out of the comparison (every environment
numbers its own rules).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any, Protocol
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import selectors
from ..documents import environment_ruleset, state_document, states_for_ruleset
from ..models import Environment, Flag, FlagState, Segment
from ..words import (
    conditions_in_words,
    prerequisite_in_words,
    rollout_in_words,
    serve_in_words,
    state_summary,
)
from .base import require_visible, visible

MISSING = "—"
PROJECT_PARAM = "project"
SHOW_PARAM = "show"
SHOW_ALL = "all"  # any other value (or none): only the flags that differ
LEADING_PARTS = ("enabled", "off-variant", "prerequisites")  # then the rules, then the default


class Column(Protocol):
    """What a comparison's column is about: an environment, or a moment ("Now")."""

    @property
    def key(self) -> str:
        """Its identifier in test ids."""

    @property
    def name(self) -> str:
        """Its heading."""


@dataclass(frozen=True)
class Cell:
    """One column's side of a row: a text, a badge class, or labelled lines (a rule)."""

    environment: Column
    text: str = MISSING
    badge: str = ""
    lines: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    """One compared part of a flag (on/off, a rule, ...) in every environment."""

    key: str
    label: str
    differs: bool
    cells: list[Cell]


def document_parts(document: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of a flag document that may differ between environments, in display order.

    ``rule-<n>`` is the n-th rule without its id. A flag missing from an environment (None) has
    no parts: every row then differs from the environments that have it.
    """
    if document is None:
        return {}
    parts: dict[str, Any] = {
        "enabled": document.get("enabled"),
        "off-variant": document.get("off_variant"),
        "prerequisites": document.get("prerequisites", []),
    }
    for number, rule in enumerate(document.get("rules", []), start=1):
        parts[f"rule-{number}"] = {key: value for key, value in rule.items() if key != "id"}
    parts["default-serve"] = document.get("default_serve")
    return parts


def differing_parts(documents: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """The keys of the parts (see ``document_parts``) that are not the same in every document."""
    all_parts = [document_parts(document) for document in documents]
    keys = _keys(all_parts)
    return [key for key in keys if len({_canonical(parts.get(key)) for parts in all_parts}) > 1]


def part_label(key: str) -> str:
    """What a part is called on the page: "On/off", "Rule 2", "Default serve"."""
    if key.startswith("rule-"):
        return f"Rule {key.removeprefix('rule-')}"
    return {
        "enabled": "On/off",
        "off-variant": "Off variant",
        "prerequisites": "Prerequisites",
        "default-serve": "Default serve",
    }.get(key, key)


# --- One flag ----------------------------------------------------------------------------------


def compare_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, flag_id: int
) -> HttpResponse:
    """One flag in every environment of its project, one column each, differing cells marked."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    flag = get_object_or_404(Flag.objects.select_related("project"), pk=flag_id)
    require_visible(request, flag.project)
    environments = selectors.environment_list(flag.project)
    states = {state.environment_id: state for state in _live_states(flag, environments)}
    documents: list[dict[str, Any] | None] = []
    columns = []
    for environment in environments:
        state = states.get(environment.pk)
        documents.append(state_document(state) if state is not None else None)
        url = reverse("admin:flags_flagstate_change", args=[state.pk]) if state else ""
        columns.append({"environment": environment, "state_url": url})
    segment_names = dict(
        Segment.objects.filter(project_id=flag.project_id).values_list("key", "name")
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{flag.key}: environments side by side",
        "flag": flag,
        "columns": columns,
        "rows": flag_rows(environments, documents, segment_names),
        "in_no_ruleset": all(document is None for document in documents),
        "project_url": _project_url(flag.project.key),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "flags/compare_flag.html", context)


def _live_states(flag: Flag, environments: Sequence[Environment]) -> list[FlagState]:
    """The flag's states as the snapshot loads them (archived flags are in no ruleset).

    The environments' ``states_for_ruleset`` querysets are ORed into one, which keeps their
    prefetches: the same loading as the snapshot's, in a constant number of queries.
    """
    if not environments:
        return []
    states = reduce(or_, (states_for_ruleset(env) for env in environments))
    return list(states.filter(flag_id=flag.pk))


def flag_rows(
    environments: Sequence[Column],
    documents: Sequence[Mapping[str, Any] | None],
    segment_names: Mapping[str, str],
) -> list[Row]:
    """The rows of the one-flag comparison: one per part, one cell per environment."""
    all_parts = [document_parts(document) for document in documents]
    differing = set(differing_parts(documents))
    return [
        Row(
            key=key,
            label=part_label(key),
            differs=key in differing,
            # "—" where an environment lacks the part (a rule it does not have).
            cells=[
                _cell(environment, key, parts.get(key), segment_names)
                if key in parts
                else Cell(environment)
                for environment, parts in zip(environments, all_parts, strict=True)
            ],
        )
        for key in _keys(all_parts)
    ]


def _cell(environment: Column, key: str, part: Any, segment_names: Mapping[str, str]) -> Cell:
    if key == "enabled":
        return Cell(environment, "On" if part else "Off", badge="fs-on" if part else "fs-off")
    if key == "off-variant":
        return Cell(environment, str(part))
    if key == "prerequisites":
        words = [prerequisite_in_words(p["flag"], p.get("variants") or []) for p in part]
        return Cell(environment, " and ".join(words) or "none")
    if key == "default-serve":
        return Cell(environment, serve_in_words(part))
    return Cell(environment, lines=_rule_lines(part, segment_names))


def _rule_lines(rule: Mapping[str, Any], segment_names: Mapping[str, str]) -> list[tuple[str, str]]:
    """A rule as labelled lines, the same lines in every column so they line up."""
    segments = [segment_names.get(key, key) for key in rule.get("segments", [])]
    rollout = rollout_in_words(rule.get("rollout"))
    bucket_by = rule.get("bucket_by")
    if bucket_by is not None:
        attributes = bucket_by if isinstance(bucket_by, list) else [bucket_by]
        rollout = f"{rollout}, bucketed by {', '.join(str(name) for name in attributes)}"
    return [
        ("If", conditions_in_words(rule.get("conditions", []))),
        ("Segments", ", ".join(segments) or MISSING),
        ("Rollout", rollout),
        ("Serves", serve_in_words(rule.get("serve"))),
    ]


# --- Every flag of a project -------------------------------------------------------------------


def compare_all_view(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """Every live flag of a project, one summary per environment, flags that differ first."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    projects = visible(request, selectors.project_list(), "")
    project = selectors.project_get(request.GET.get(PROJECT_PARAM), among=projects)
    environments = selectors.environment_list(project) if project is not None else []
    rulesets = [environment_ruleset(environment) for environment in environments]
    flags = (
        dict(Flag.objects.filter(project=project, archived=False).values_list("key", "pk"))
        if project is not None
        else {}
    )
    rows = project_rows(environments, rulesets, flags)
    show_all = request.GET.get(SHOW_PARAM) == SHOW_ALL
    differing = sum(1 for row in rows if row["differs"])
    key = project.key if project is not None else ""
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{project.name if project else 'Flags'}: environments side by side",
        "project": project,
        "projects": [
            {"project": other, "url": _project_url(other.key, show_all=show_all)}
            for other in selectors.project_list()
        ],
        "environments": environments,
        "rows": rows if show_all else [row for row in rows if row["differs"]],
        "show_all": show_all,
        "differing_count": differing,
        "flag_count": len(rows),
        "only_differing_url": _project_url(key),
        "all_url": _project_url(key, show_all=True),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "flags/compare_project.html", context)


def project_rows(
    environments: Sequence[Environment],
    rulesets: Sequence[Mapping[str, Any]],
    flag_ids: Mapping[str, int],
) -> list[dict[str, Any]]:
    """One row per flag: its summary in each environment; rows that differ first, then by key."""
    keys = sorted({key for ruleset in rulesets for key in ruleset["flags"]})
    rows = []
    for key in keys:
        documents = [ruleset["flags"].get(key) for ruleset in rulesets]
        parts = differing_parts(documents)
        flag_id = flag_ids.get(key)
        rows.append(
            {
                "key": key,
                "url": reverse("admin:flags_flag_compare", args=[flag_id]) if flag_id else "",
                "differs": bool(parts),
                "differs_in": ", ".join(part_label(part) for part in parts),
                "cells": [
                    _summary(environment, document)
                    for environment, document in zip(environments, documents, strict=True)
                ],
            }
        )
    rows.sort(key=lambda row: not row["differs"])  # stable: by key within each group
    return rows


def _summary(environment: Environment, document: Mapping[str, Any] | None) -> dict[str, Any]:
    if document is None:
        return {"environment": environment, "text": MISSING, "css": "", "detail": ""}
    summary = state_summary(
        enabled=bool(document["enabled"]),
        off_variant=str(document["off_variant"]),
        rules=document.get("rules", []),
        default_serve=document["default_serve"],
    )
    css = "fs-compare__summary--warning" if summary.warning else ""
    if not document["enabled"]:
        css = "fs-compare__summary--off"
    return {
        "environment": environment,
        "text": summary.text,
        "css": css,
        "detail": summary.detail,
    }


# --- Helpers -----------------------------------------------------------------------------------


def _keys(all_parts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every part key of any environment, in display order (as many rules as the most has)."""
    present = [parts for parts in all_parts if parts]
    if not present:
        return []
    rules = max(sum(1 for key in parts if key.startswith("rule-")) for parts in present)
    return [*LEADING_PARTS, *(f"rule-{number}" for number in range(1, rules + 1)), "default-serve"]


def _canonical(part: Any) -> str:
    """A part as canonical JSON, so that equal documents compare equal whatever their key order."""
    return json.dumps(part, sort_keys=True, ensure_ascii=False)


def _project_url(key: str, *, show_all: bool = False) -> str:
    params = {PROJECT_PARAM: key} if key else {}
    if show_all:
        params[SHOW_PARAM] = SHOW_ALL
    url = reverse("admin:flags_flag_compare_all")
    return f"{url}?{urlencode(params)}" if params else url
