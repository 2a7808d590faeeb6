"""Importing a project export (docs/export-format.md): all or nothing, with a dry run.

``project_import`` checks the document (``export_checks``: shape, then every environment's
ruleset by the engine in strict mode), then, in one transaction, makes the project what the
document describes through the ordinary services (so every change has its history, its actor, its
change event and its version bump), checks every environment's stored ruleset with the engine
again, and announces one ``project.imported`` event. The plan (what changed) is the difference
between the project's export before and after, computed inside that transaction; a dry run does
all of it and then rolls the transaction back, so its plan is exactly what applying would do.

``merge`` creates what is missing and updates what differs, leaving flags and segments the
document does not name alone. ``replace`` also archives (never deletes: an archived flag can be
brought back) the live flags the document does not name, and deletes the segments it does not
name; a flag another live flag requires, or a segment a rule still uses, refuses the import.
Environments the document does not name are left alone in both modes, and so are existing tags'
colours (tags are shared by every project).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from .. import documents
from ..delivery.changes import Kind
from ..errors import InUseError
from ..history.as_of import ConditionConfig, RuleConfig, StateConfig
from ..history.recording import current_reason, reason
from ..models import Environment, Flag, FlagState, Project, Segment, Tag, Variant
from . import export_checks
from .common import announce, save
from .exporting import Document, project_export, state_export
from .flags import (
    flag_archive,
    flag_create,
    flag_unarchive,
    flag_update,
    variant_create,
    variant_delete,
    variant_update,
)
from .import_plan import ImportPlan, plan_of, same
from .projects import (
    environment_create,
    environment_update,
    project_create,
    project_update,
    tag_create,
)
from .restore import flag_state_restore
from .targeting import segment_create, segment_delete, segment_update

MODES = ("merge", "replace")


class _RolledBackError(Exception):
    """Raised at the end of a dry run to roll its transaction back; carries the plan."""

    def __init__(self, plan: ImportPlan) -> None:
        super().__init__("dry run")
        self.plan = plan


def project_import(
    document: Any,
    *,
    actor: Any | None,
    mode: str = "merge",
    dry_run: bool = False,
    project_key: str | None = None,
) -> ImportPlan:
    """Make a project what an export describes (``project_key`` imports under another key).

    Raises, having written nothing: ``ValidationError`` (with a code) for an invalid document, one
    the engine refuses, or archiving/deleting that would break a prerequisite or a segment in use
    (``in_use``); ``InUseError`` for a variant the document drops that a state it does not name
    still uses; ``PermissionDeniedError`` for a protected environment the actor may not change.
    """
    if mode not in MODES:
        raise ValidationError(f"Unknown mode {mode!r}: merge or replace.", code="invalid_mode")
    export_checks.check_document(document)
    if project_key is not None:
        document = {**document, "project": {**document["project"], "key": project_key}}
    try:
        # Every history row of the import says so, unless the caller gave a reason.
        with transaction.atomic(), reason(current_reason() or f"Project import ({mode})"):
            plan = _apply(document, actor, mode, dry_run)
            if dry_run:
                raise _RolledBackError(plan)
    except _RolledBackError as rolled_back:
        return rolled_back.plan
    return plan


def _apply(document: Document, actor: Any | None, mode: str, dry_run: bool) -> ImportPlan:
    key = document["project"]["key"]
    project = Project.objects.filter(key=key).first()
    before = project_export(project) if project is not None else None
    project = _project(project, document["project"], actor)
    environments = _environments(project, document["environments"], actor)
    tags = _tags(document["tags"], actor)
    segments = _segments(project, document["segments"], actor)
    owners, unknown = _owners(document["flags"])
    flags = _flags(project, document["flags"], tags, owners, actor)
    _states(document["flags"], flags, environments, segments, actor)
    _archive([flags[item["key"]] for item in document["flags"] if item["archived"]], actor)
    if mode == "replace":
        _replace(project, document, actor)
    for environment in environments.values():
        export_checks.check_ruleset(
            documents.environment_ruleset(environment),
            f"Environment {environment.key} after the import",
        )
    after = project_export(project)
    plan = plan_of(key, before, after, mode, dry_run)
    plan.unknown_owners = unknown
    if not plan.changed:  # as every service: a write that changes nothing announces nothing
        return plan
    announce(
        Kind.PROJECT_IMPORTED,
        actor=actor,
        project_id=project.pk,
        environments=[environment.pk for environment in environments.values()],
        flags=sorted(set(plan.flags.get("created", [])) | set(plan.flags.get("changed", []))),
        after={"mode": mode, "diff": plan.lines()},
    )
    return plan


def _project(project: Project | None, document: Document, actor: Any | None) -> Project:
    values = {name: document[name] for name in ("name", "description", "reason_required")}
    if project is None:
        return project_create(key=document["key"], actor=actor, environments=(), **values)
    return project_update(project=project, actor=actor, **values)


def _environments(
    project: Project, documents_: list[Document], actor: Any | None
) -> dict[str, Environment]:
    existing = {environment.key: environment for environment in project.environments.all()}
    result: dict[str, Environment] = {}
    for item in documents_:
        values = {name: item[name] for name in ("name", "color", "order", "protected")}
        values |= {name: item[name] for name in export_checks.ENVIRONMENT_OPTIONAL if name in item}
        environment = existing.get(item["key"])
        if environment is None:
            result[item["key"]] = environment_create(
                project=project, key=item["key"], actor=actor, **values
            )
        else:
            result[item["key"]] = environment_update(environment=environment, actor=actor, **values)
    return result


def _tags(documents_: list[Document], actor: Any | None) -> dict[str, Tag]:
    tags: dict[str, Tag] = {}
    for item in documents_:
        tag = Tag.objects.filter(name__iexact=item["name"]).first()
        tags[item["name"].lower()] = tag or tag_create(
            name=item["name"], color=item["color"], actor=actor
        )
    return tags


def _segments(project: Project, documents_: list[Document], actor: Any | None) -> dict[str, int]:
    existing = {segment.key: segment for segment in Segment.objects.filter(project=project)}
    ids: dict[str, int] = {}
    for item in documents_:
        segment = existing.get(item["key"])
        values = {name: item[name] for name in ("name", "description", "conditions")}
        if segment is None:
            segment = segment_create(project=project, key=item["key"], actor=actor, **values)
        else:
            segment = segment_update(segment=segment, actor=actor, **values)
        ids[item["key"]] = segment.pk
    return ids


def _owners(documents_: list[Document]) -> tuple[dict[str, Any], list[str]]:
    names = {item["owner"] for item in documents_ if item["owner"] is not None}
    model = get_user_model()
    users = {
        user.get_username(): user
        for user in model._default_manager.filter(**{f"{model.USERNAME_FIELD}__in": names})
    }
    return users, sorted(names - set(users))


def _flags(
    project: Project,
    documents_: list[Document],
    tags: dict[str, Tag],
    owners: dict[str, Any],
    actor: Any | None,
) -> dict[str, Flag]:
    existing = {flag.key: flag for flag in Flag.objects.filter(project=project)}
    flags: dict[str, Flag] = {}
    for item in documents_:
        flag = existing.get(item["key"])
        values = {
            "name": item["name"],
            "description": item["description"],
            "owner": owners.get(item["owner"]) if item["owner"] is not None else None,
            "lifecycle": item["lifecycle"],
            "client_visible": item["client_visible"],
            "salt": item["salt"],
        }
        flag_tags = [tags[name.lower()] for name in item["tags"]]
        if flag is None:
            flag = flag_create(
                project=project,
                key=item["key"],
                kind=item["kind"],
                variants=[(variant["key"], variant["value"]) for variant in item["variants"]],
                tags=flag_tags,
                actor=actor,
                **values,
            )
        else:
            if flag.kind != item["kind"]:
                raise ValidationError(
                    f'Flag "{flag.key}" is {flag.kind} here and {item["kind"]} in the document; '
                    "a flag's kind never changes.",
                    code="kind_mismatch",
                )
            flag = flag_update(flag=flag, actor=actor, tags=flag_tags, **values)
        if flag.archived and not item["archived"]:
            flag = flag_unarchive(flag=flag, actor=actor)
        _variants(flag, item["variants"], actor)
        flags[item["key"]] = flag
    return flags


def _variants(flag: Flag, documents_: list[Document], actor: Any | None) -> None:
    """Variants the document names get its names, values and order (removed ones go later)."""
    existing = {variant.key: variant for variant in flag.variants.all()}
    for order, item in enumerate(documents_):
        variant = existing.get(item["key"])
        if variant is None:
            variant = variant_create(
                flag=flag, key=item["key"], value=item["value"], name=item["name"], actor=actor
            )
        else:
            variant = variant_update(
                variant=variant, actor=actor, value=item["value"], name=item["name"]
            )
        if variant.order != order:
            # Presentation only (SDKs receive variants by key): no service of its own.
            variant.order = order
            save(variant, actor)


def _states(
    documents_: list[Document],
    flags: dict[str, Flag],
    environments: dict[str, Environment],
    segments: dict[str, int],
    actor: Any | None,
) -> None:
    # Parents first: a flag's new prerequisites then only reach flags already in their final
    # shape, so no cycle appears midway that the document does not have.
    by_key = {item["key"]: item for item in documents_}
    for key in _parents_first(by_key):
        item = by_key[key]
        flag = flags[key]
        variants = {variant.key: variant for variant in flag.variants.all()}
        states = {state.environment_id: state for state in flag.states.all()}
        for environment_key, state_document in item["states"].items():
            state = states[environments[environment_key].pk]
            if same(state_export(state), state_document):
                # Unchanged (an archived flag's state too, whose archived parents restore refuses).
                continue
            config = _config(state, state_document, variants, segments, flags)
            flag_state_restore(state=state, config=config, actor=actor)
        wanted = {variant["key"] for variant in item["variants"]}
        for variant_key, variant in variants.items():
            if variant_key not in wanted:
                variant_delete(variant=variant, actor=actor)


def _parents_first(flags: dict[str, Document]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen:
            return
        seen.add(key)
        for state in flags[key]["states"].values():
            for prerequisite in state["prerequisites"]:
                visit(prerequisite["flag"])
        done.append(key)

    for key in flags:
        visit(key)
    return done


def _config(
    state: FlagState,
    document: Document,
    variants: dict[str, Variant],
    segments: dict[str, int],
    flags: dict[str, Flag],
) -> StateConfig:
    # Rules are matched by position, so an unchanged rule keeps its id (and its history).
    rule_ids = list(state.rules.order_by("order", "id").values_list("pk", flat=True))
    return StateConfig(
        enabled=document["enabled"],
        off_variant_id=variants[document["off_variant"]].pk,
        default_serve=document["default_serve"],
        rules=tuple(
            RuleConfig(
                id=rule_ids[index] if index < len(rule_ids) else None,
                description=rule["description"],
                segment_ids=tuple(sorted(segments[key] for key in rule["segments"])),
                rollout=rule["rollout"],
                bucket_by=rule["bucket_by"],
                serve=rule["serve"],
                conditions=tuple(
                    ConditionConfig(
                        None,
                        c["attribute"],
                        c["operator"],
                        c.get("values", []),
                        c["negate"],
                        c["case_insensitive"],
                    )
                    for c in rule["conditions"]
                ),
            )
            for index, rule in enumerate(document["rules"])
        ),
        prerequisites=tuple(
            (flags[p["flag"]].pk, tuple(p["variants"])) for p in document["prerequisites"]
        ),
    )


def _archive(flags: list[Flag], actor: Any | None) -> None:
    """Archive the live ones among ``flags``, each once no live flag requires it.

    Dependants go first, so a chain the document archives (or replace leaves out) is archived
    whole; a flag still required by a live flag outside ``flags`` refuses the import.
    """
    pending = [flag for flag in flags if not flag.archived]
    while pending:
        refused: list[tuple[Flag, InUseError]] = []
        for flag in pending:
            try:
                flag_archive(flag=flag, actor=actor)
            except InUseError as error:
                refused.append((flag, error))
        if len(refused) == len(pending):
            raise ValidationError(
                f"Archiving would break a prerequisite: {refused[0][1]}", code="in_use"
            ) from None
        pending = [flag for flag, _ in refused]


def _replace(project: Project, document: Document, actor: Any | None) -> None:
    named = {item["key"] for item in document["flags"]}
    # What the document names only requires flags it names (``export_checks``).
    _archive(
        list(Flag.objects.filter(project=project, archived=False).exclude(key__in=named)), actor
    )
    segments = {item["key"] for item in document["segments"]}
    for segment in Segment.objects.filter(project=project).exclude(key__in=segments):
        try:
            segment_delete(segment=segment, actor=actor)
        except InUseError as error:
            raise ValidationError(
                f"Replace would delete a segment in use: {error}", code="in_use"
            ) from None
