"""A project as a JSON document people can keep, review and import again (docs/export-format.md).

``project_export(project)`` is the one writer of the format: the project, its environments, the
tags its flags use, its segments and its flags (archived ones too) with their variants and their
state in every environment. Ordering is fixed (environments by order then key, everything else by
key, variants, rules, conditions and prerequisites in their stored order) so that two exports of
the same data are the same text. No database ids, no secrets (API keys and webhooks stay out).
"""

from __future__ import annotations

from typing import Any

from ..models import Condition, Environment, Flag, Project, Segment

FORMAT_NAME = "flagship-project"
FORMAT_VERSION = 1

Document = dict[str, Any]


def condition_export(condition: Condition) -> dict[str, Any]:
    """One condition, every member spelled out (the services take this shape as a spec)."""
    return {
        "attribute": condition.attribute,
        "operator": condition.operator,
        "values": condition.values,
        "negate": condition.negate,
        "case_insensitive": condition.case_insensitive,
    }


def project_export(project: Project) -> Document:
    """The whole project in the export format (JSON-serialisable, deterministic)."""
    environments = list(project.environments.order_by("order", "key"))
    flags = list(
        Flag.objects.filter(project=project)
        .select_related("owner")
        .prefetch_related(
            "tags",
            "variants",
            "states__off_variant",
            "states__rules__conditions",
            "states__rules__segments",
            "states__prerequisites__flag",
        )
        .order_by("key")
    )
    segments = (
        Segment.objects.filter(project=project).prefetch_related("conditions").order_by("key")
    )
    tags = {tag.name: tag.color for flag in flags for tag in flag.tags.all()}
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "project": {
            "key": project.key,
            "name": project.name,
            "description": project.description,
            "reason_required": project.reason_required,
        },
        "environments": [_environment(environment) for environment in environments],
        "tags": [{"name": name, "color": tags[name]} for name in sorted(tags)],
        "segments": [
            {
                "key": segment.key,
                "name": segment.name,
                "description": segment.description,
                "conditions": [
                    condition_export(c)
                    for c in sorted(segment.conditions.all(), key=lambda c: (c.order, c.pk))
                ],
            }
            for segment in segments
        ],
        "flags": [_flag(flag, environments) for flag in flags],
    }


def _environment(environment: Environment) -> Document:
    return {
        "key": environment.key,
        "name": environment.name,
        "color": environment.color,
        "order": environment.order,
        "protected": environment.protected,
        "required_approvals": environment.required_approvals,
        "allow_self_approval": environment.allow_self_approval,
    }


def _flag(flag: Flag, environments: list[Environment]) -> Document:
    states = {state.environment_id: state for state in flag.states.all()}
    return {
        "key": flag.key,
        "name": flag.name,
        "description": flag.description,
        "kind": flag.kind,
        "lifecycle": flag.lifecycle,
        "owner": flag.owner.get_username() if flag.owner is not None else None,
        "client_visible": flag.client_visible,
        "salt": flag.salt,
        "archived": flag.archived,
        "tags": sorted(tag.name for tag in flag.tags.all()),
        "variants": [
            {"key": variant.key, "name": variant.name, "value": variant.value}
            for variant in sorted(flag.variants.all(), key=lambda v: (v.order, v.pk))
        ],
        "states": {
            environment.key: state_export(states[environment.pk])
            for environment in environments
            if environment.pk in states
        },
    }


def state_export(state: Any) -> Document:
    """One flag state (its rules, conditions, segments and prerequisites) as the format has it."""
    rules = sorted(state.rules.all(), key=lambda rule: (rule.order, rule.pk))
    return {
        "enabled": state.enabled,
        "off_variant": state.off_variant.key,
        "default_serve": state.default_serve,
        "rules": [
            {
                "description": rule.description,
                "conditions": [
                    condition_export(c)
                    for c in sorted(rule.conditions.all(), key=lambda c: (c.order, c.pk))
                ],
                "segments": sorted(segment.key for segment in rule.segments.all()),
                "rollout": rule.rollout,
                "bucket_by": rule.bucket_by,
                "serve": rule.serve,
            }
            for rule in rules
        ],
        "prerequisites": [
            {"flag": p.flag.key, "variants": list(p.variants)}
            for p in sorted(state.prerequisites.all(), key=lambda p: (p.order, p.pk))
        ],
    }
