"""Importing a ruleset document (docs/ruleset-format.md, format 1) into one environment.

``import_ruleset`` creates, in one transaction, everything a document holds: its segments (through
``segment_create``, or reusing a project segment with the same key and the same conditions), its
flags with their variants and a state in every environment (the document's in the target
environment; elsewhere the switched-off state ``flag_create`` gives a new flag), and, in the
target environment, each flag's rules with their conditions and segments, and its prerequisites.

The checks are the ones every write gets, done once for the whole document instead of once per
object, as ``flags_bulk_create`` does: the document is compiled by the engine in strict mode
before anything is written (what ``validate_states`` does per flag), every row passes its model
field checks, and after writing, the environment's stored ruleset (what SDKs will download,
``documents.environment_ruleset``) is compared with the document flag by flag; any difference
refuses the import. Every row gets its history row (simple-history's bulk helper; rule segments
too), attributed to ``actor``, and every environment's ruleset version moves once, in the same
transaction. Rows are written in bulk: 10 000 flags take seconds, not the minutes that object-by-
object services would (docs/operations.md).

What the data model cannot hold is refused up front with the reason (``inexpressible``): keys that
are not URL-safe, an empty salt, a JSON ``null`` variant value, bucket-by attribute names with a
comma, strings longer than their column, references strict mode refuses (unknown segments or
prerequisite flags, cycles, chains deeper than 10) and every flag depending on such a flag.
``skip_inexpressible=True`` leaves those flags out instead (and says which). Flags must be new to
the project, and prerequisites must name flags of the same document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from simple_history.utils import bulk_create_with_history

from flagship_sdk.engine import FORMAT, MAX_PREREQUISITE_DEPTH, Ruleset, RulesetError

from .. import documents
from ..delivery.changes import Kind
from ..models import Condition, Environment, Flag, FlagState, Prerequisite, Rule, Segment, Variant
from .bulk import BATCH_SIZE
from .common import announce, check_can_change, humanize
from .targeting import segment_create

KEY = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")
DEFAULT_BUCKET_BY = "targetingKey"
# Column sizes the document's strings must fit (flags/models).
MAX_SALT = Flag._meta.get_field("salt").max_length or 100
MAX_BUCKET_BY = Rule._meta.get_field("bucket_by").max_length or 200
MAX_ATTRIBUTE = Condition._meta.get_field("attribute").max_length or 200
# Reasons listed in a refusal; the rest are counted.
LISTED_REASONS = 10

Document = dict[str, Any]


@dataclass
class ImportResult:
    """What an import wrote."""

    environment: Environment
    flags: int = 0
    variants: int = 0
    rules: int = 0
    conditions: int = 0
    prerequisites: int = 0
    segments_created: int = 0
    segments_reused: int = 0
    # Database rule id (as SDKs see it) -> the document's rule id.
    rule_ids: dict[str, str] = field(default_factory=dict)
    # Flags left out (skip_inexpressible=True): key -> why.
    left_out: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line of counts, for people and logs."""
        text = (
            f"{self.flags} flags, {self.variants} variants, {self.rules} rules, "
            f"{self.conditions} rule conditions, {self.prerequisites} prerequisites, "
            f"{self.segments_created} segments created, {self.segments_reused} reused"
        )
        if self.left_out:
            text += f", {len(self.left_out)} flags left out"
        return text


# --- what the model cannot hold -------------------------------------------------------------------


def inexpressible(document: Mapping[str, Any]) -> dict[str, str]:
    """The flags of a (well-formed) document the data model cannot hold, each with the reason."""
    flags: dict[str, Any] = document["flags"]
    segments: dict[str, Any] = document.get("segments") or {}
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
    salt = flag.get("salt")
    if salt == "":
        return "empty salt (the model reads an empty salt as the key)"
    if salt is not None and len(salt) > MAX_SALT:
        return f"salt longer than {MAX_SALT} characters"
    for rule in flag.get("rules", []):
        for segment in rule.get("segments", []):
            if segment not in segments:
                return "unknown segment (refused when saved)"
            if not KEY.match(segment):
                return "segment key not URL-safe"
        names = bucket_attributes(rule.get("bucket_by", DEFAULT_BUCKET_BY))
        if any("," in name or name != name.strip() or not name for name in names):
            return "bucket-by attribute the comma-separated column cannot hold"
        if len(",".join(names)) > MAX_BUCKET_BY:
            return f"bucket-by attributes longer than {MAX_BUCKET_BY} characters together"
        if any(len(c.get("attribute", "")) > MAX_ATTRIBUTE for c in rule.get("conditions", [])):
            return f"condition attribute longer than {MAX_ATTRIBUTE} characters"
    return None


def _prerequisite_reason(key: str, flags: dict[str, Any], reasons: dict[str, str]) -> str | None:
    depth = _depth(key, flags, ())
    if depth is None:
        return "prerequisite cycle (refused when saved)"
    if depth > MAX_PREREQUISITE_DEPTH:
        return f"prerequisite chain deeper than {MAX_PREREQUISITE_DEPTH} (refused when saved)"
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


def bucket_attributes(bucket_by: str | list[str]) -> list[str]:
    """A rule's ``bucket_by`` as a list of attribute names."""
    return [bucket_by] if isinstance(bucket_by, str) else list(bucket_by)


def parents_first(flags: Mapping[str, Any]) -> Iterator[str]:
    """Flag keys ordered so that every prerequisite's parent comes before its dependants."""
    done: set[str] = set()

    def visit(key: str) -> Iterator[str]:
        if key in done:
            return
        done.add(key)
        for prerequisite in flags[key].get("prerequisites", []):
            if prerequisite["flag"] in flags:
                yield from visit(prerequisite["flag"])
        yield key

    for key in flags:
        yield from visit(key)


# --- the import -----------------------------------------------------------------------------------


def import_ruleset(
    *,
    document: Mapping[str, Any],
    environment: Environment,
    actor: Any | None = None,
    skip_inexpressible: bool = False,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Create a ruleset document's segments and flags in ``environment``'s project, all or nothing.

    Raises ``ValidationError`` (nothing written) when the document is not a valid format-1
    ruleset, holds what the model cannot store (unless ``skip_inexpressible``), names a flag key
    the project already has, a segment key it has with other conditions, or would be stored
    differently from the document. ``PermissionDeniedError`` in a protected environment for an
    actor without the release permission (``actor=None`` is the system).
    """
    try:
        _compile(document, strict=True)
        refused: ValidationError | None = None
    except ValidationError as error:
        # Strict mode refuses what the model cannot hold too (cycles, unknown references):
        # the document must still be well-formed to say which flags those are.
        _compile(document, strict=False)
        refused = error
    reasons = inexpressible(document)
    if refused is not None and not reasons:
        raise refused
    if reasons and not skip_inexpressible:
        listed = "; ".join(
            f'flag "{key}": {reason}' for key, reason in list(reasons.items())[:LISTED_REASONS]
        )
        more = len(reasons) - LISTED_REASONS
        raise ValidationError(
            f"{len(reasons)} flags cannot be stored: {listed}"
            + (f"; and {more} more" if more > 0 else "")
            + ".",
            code="inexpressible",
        )
    kept = _expressible(document, reasons)
    if reasons:
        _compile(kept, strict=True)
    with transaction.atomic():
        result = _write(kept, environment, actor, batch_size)
    result.left_out = reasons
    return result


def _compile(document: Mapping[str, Any], *, strict: bool, what: str = "The document") -> None:
    if not isinstance(document, Mapping) or not isinstance(document.get("flags"), Mapping):
        raise ValidationError(f"{what} is not a ruleset: it has no flags object.", code="invalid")
    if document.get("format") != FORMAT:
        raise ValidationError(
            f"{what} is in format {document.get('format')!r}; this server reads format {FORMAT}.",
            code="invalid_format",
        )
    try:
        Ruleset.from_dict(dict(document), strict=strict)
    except RulesetError as error:
        raise ValidationError(f"{what}: {humanize(error)}", code=error.code) from None


def _expressible(document: Mapping[str, Any], reasons: Mapping[str, str]) -> Document:
    """The document without the flags in ``reasons`` (and segments no kept flag could use)."""
    flags = {key: flag for key, flag in document["flags"].items() if key not in reasons}
    segments = {
        key: segment
        for key, segment in (document.get("segments") or {}).items()
        if KEY.match(key) or not reasons
    }
    return {**document, "segments": segments, "flags": flags}


def _write(
    document: Document, environment: Environment, actor: Any | None, batch_size: int
) -> ImportResult:
    environment = Environment.objects.select_related("project").get(pk=environment.pk)
    check_can_change(actor, environment)
    project = environment.project
    user = actor if getattr(actor, "is_authenticated", False) else None
    result = ImportResult(environment=environment)
    segments = _segments(document.get("segments") or {}, project, actor, result)
    flag_documents: dict[str, Any] = document["flags"]
    order = list(parents_first(flag_documents))
    _check_keys_free(project, order)
    environments = list(project.environments.order_by("order", "key"))
    flags, states = _write_flags(
        flag_documents, order, project, environment, environments, user, batch_size, result
    )
    _write_targeting(flag_documents, flags, states, segments, user, batch_size, result)
    # Every environment's document gained the flags (switched off outside the target). Advanced
    # before the check reads the environment (flags.delivery.versions: build after advancing).
    announce(
        Kind.RULESET_IMPORTED,
        actor=actor,
        project_id=project.pk,
        environments=[environment.pk],
        rulesets=(other.pk for other in environments),
        flags=sorted(flags),
        after={
            "environment": environment.key,
            "flags": result.flags,
            "rules": result.rules,
            "segments_created": result.segments_created,
        },
    )
    _check_stored(environment, flag_documents, result.rule_ids)
    return result


def _write_flags(  # noqa: PLR0917  # the import's state, passed on
    flag_documents: dict[str, Any],
    order: list[str],
    project: Any,
    environment: Environment,
    environments: list[Environment],
    user: Any | None,
    batch_size: int,
    result: ImportResult,
) -> tuple[dict[str, Flag], dict[int, FlagState]]:
    """Flags, variants and states; the flags by key, the target environment's states by flag."""
    # Flags and variants, with their history (as flags_bulk_create writes them, but with the
    # document's salt and without compiling each flag again: the whole document was compiled).
    new_flags = [_flag(project, key, flag_documents[key]) for key in order]
    flags = {
        flag.key: flag
        for flag in bulk_create_with_history(
            new_flags, Flag, batch_size=batch_size, default_user=user
        )
    }
    variants = []
    for key, flag in flags.items():
        for position, (variant_key, value) in enumerate(flag_documents[key]["variants"].items()):
            variant = Variant(flag=flag, key=variant_key, value=value, order=position)
            _field_checks(variant, key, f"variant {variant_key}", exclude=["flag"])
            variants.append(variant)
    variant_ids = {
        (variant.flag_id, variant.key): variant.pk
        for variant in bulk_create_with_history(
            variants, Variant, batch_size=batch_size, default_user=user
        )
    }
    result.flags, result.variants = len(flags), len(variant_ids)

    # A state in every environment: the document's in the target, switched off elsewhere (as
    # flag_create leaves a new flag).
    new_states = []
    for key, flag in flags.items():
        flag_document = flag_documents[key]
        first = next(iter(flag_document["variants"]))
        off = "off" if "off" in flag_document["variants"] else first
        for other in environments:
            if other.pk == environment.pk:
                state = FlagState(
                    flag=flag,
                    environment=other,
                    enabled=bool(flag_document["enabled"]),
                    off_variant_id=variant_ids[flag.pk, flag_document["off_variant"]],
                    default_serve=flag_document["default_serve"],
                )
            else:
                state = FlagState(
                    flag=flag,
                    environment=other,
                    enabled=False,
                    off_variant_id=variant_ids[flag.pk, off],
                    default_serve=documents.variant_serve(off),
                )
            new_states.append(state)
    states = {
        state.flag_id: state
        for state in bulk_create_with_history(
            new_states, FlagState, batch_size=batch_size, default_user=user
        )
        if state.environment_id == environment.pk
    }
    return flags, states


def _write_targeting(  # noqa: PLR0917  # the import's state, passed on
    flag_documents: dict[str, Any],
    flags: dict[str, Flag],
    states: dict[int, FlagState],
    segments: dict[str, Segment],
    user: Any | None,
    batch_size: int,
    result: ImportResult,
) -> None:
    """Rules (with their segments and conditions) and prerequisites, in the target environment."""
    rules, rule_segments, conditions, prerequisites = [], [], [], []
    for key, flag in flags.items():
        flag_document = flag_documents[key]
        state = states[flag.pk]
        for position, rule_document in enumerate(flag_document.get("rules", [])):
            rule = Rule(
                state=state,
                order=position,
                serve=rule_document["serve"],
                rollout=rule_document.get("rollout"),
                bucket_by=",".join(
                    bucket_attributes(rule_document.get("bucket_by", DEFAULT_BUCKET_BY))
                ),
            )
            where = f"rule {position + 1}"
            _field_checks(rule, key, where, exclude=["state"])
            rules.append((rule, rule_document["id"]))
            # A segment named twice is one requirement (the link is a set).
            names = dict.fromkeys(rule_document.get("segments", []))
            rule_segments.append([segments[name] for name in names])
            for index, spec in enumerate(rule_document.get("conditions", [])):
                condition = _condition(spec, index)
                _field_checks(
                    condition, key, f"{where}, condition {index + 1}", exclude=["rule", "segment"]
                )
                conditions.append((condition, len(rules) - 1))
        for position, spec in enumerate(flag_document.get("prerequisites", [])):
            prerequisite = Prerequisite(
                state=state,
                flag=flags[spec["flag"]],
                variants=list(spec.get("variants", [])),
                order=position,
            )
            _field_checks(
                prerequisite, key, f"prerequisite {position + 1}", exclude=["state", "flag"]
            )
            prerequisites.append(prerequisite)
    saved_rules = _create_rules(rules, rule_segments, user, batch_size)
    for rule, (_, document_id) in zip(saved_rules, rules, strict=True):
        result.rule_ids[str(rule.pk)] = document_id
    for condition, rule_index in conditions:
        condition.rule = saved_rules[rule_index]
    bulk_create_with_history(
        [condition for condition, _ in conditions],
        Condition,
        batch_size=batch_size,
        default_user=user,
    )
    bulk_create_with_history(prerequisites, Prerequisite, batch_size=batch_size, default_user=user)
    result.rules, result.conditions = len(saved_rules), len(conditions)
    result.prerequisites = len(prerequisites)


def _segments(
    segment_documents: Mapping[str, Any], project: Any, actor: Any | None, result: ImportResult
) -> dict[str, Segment]:
    """The document's segments: the project's own when identical, else created."""
    existing = {
        segment.key: segment
        for segment in Segment.objects.filter(project=project, key__in=list(segment_documents))
    }
    stored = documents.segments_document(project.pk, list(existing))
    segments: dict[str, Segment] = {}
    for key, segment_document in segment_documents.items():
        conditions = segment_document.get("conditions", [])
        if key in existing:
            wanted = [_condition(spec, 0).as_document() for spec in conditions]
            if _json(stored[key]["conditions"]) != _json(wanted):
                raise ValidationError(
                    f'Segment "{key}" already exists in {project.key} with other conditions.',
                    code="unique",
                )
            segments[key] = existing[key]
            result.segments_reused += 1
            continue
        try:
            segments[key] = segment_create(
                project=project, key=key, name=key, conditions=conditions, actor=actor
            )
        except ValidationError as error:
            raise ValidationError(f'Segment "{key}": {_first_message(error)}') from None
        result.segments_created += 1
    return segments


def _check_keys_free(project: Any, keys: list[str]) -> None:
    # One query for the whole document: cheaper than thousands of unique checks in full_clean.
    taken = set(Flag.objects.filter(project=project, key__in=keys).values_list("key", flat=True))
    for key in keys:
        if key in taken:
            raise ValidationError(
                {"key": f'Flag "{key}" already exists in {project.key}.'}, code="unique"
            )


def _flag(project: Any, key: str, document: Mapping[str, Any]) -> Flag:
    salt = document.get("salt")
    flag = Flag(
        project=project,
        key=key,
        name=key,
        kind=document["kind"],
        client_visible=bool(document.get("client_visible", False)),
        # The model reads an empty salt as the key, and writes it so: the format leaves it out.
        salt="" if salt is None or salt == key else salt,
    )
    try:
        # Field checks only: keys were checked above, and the project is known to exist.
        flag.full_clean(
            exclude=["project", "owner"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        raise ValidationError(f'Flag "{key}": {_first_message(error)}') from None
    return flag


def _condition(spec: Mapping[str, Any], order: int) -> Condition:
    values = spec.get("values", [])
    return Condition(
        order=order,
        attribute=spec["attribute"],
        operator=spec["operator"],
        values=list(values) if isinstance(values, list | tuple) else values,
        negate=bool(spec.get("negate", False)),
        case_insensitive=bool(spec.get("case_insensitive", False)),
    )


def _field_checks(instance: Any, key: str, where: str, *, exclude: list[str]) -> None:
    """Model field checks (lengths, choices, key formats); the engine checked the meaning."""
    try:
        instance.clean_fields(exclude=exclude)
    except ValidationError as error:
        place = f'Flag "{key}"' + (f", {where}" if where else "")
        raise ValidationError(f"{place}: {_first_message(error)}") from None


def _first_message(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        name, errors = next(iter(error.message_dict.items()))
        return f"{name}: {errors[0]}"
    return str(error.messages[0])


def _create_rules(
    rules: list[tuple[Rule, str]],
    rule_segments: list[list[Segment]],
    user: Any | None,
    batch_size: int,
) -> list[Rule]:
    """Rules, their segment links, and history for both (bulk helpers skip m2m history)."""
    saved = Rule.objects.bulk_create([rule for rule, _ in rules], batch_size=batch_size)
    through = Rule.segments.through
    links = through.objects.bulk_create(
        [
            through(rule_id=rule.pk, segment_id=segment.pk)
            for rule, segments in zip(saved, rule_segments, strict=True)
            for segment in segments
        ],
        batch_size=batch_size,
    )
    history = Rule.history.bulk_history_create(saved, batch_size=batch_size, default_user=user)
    historical_of = {historical.id: historical for historical in history}
    m2m_history = Rule.history.model.segments.model
    m2m_history.objects.bulk_create(
        [
            m2m_history(
                history=historical_of[link.rule_id],
                id=link.pk,
                rule_id=link.rule_id,
                segment_id=link.segment_id,
            )
            for link in links
        ],
        batch_size=batch_size,
    )
    return list(saved)


def _check_stored(
    environment: Environment, flag_documents: Mapping[str, Any], rule_ids: Mapping[str, str]
) -> None:
    """Compare each imported flag with what SDKs will now receive; refuse any difference."""
    # The imported flags were compiled strictly as a document, and reference only each other and
    # the document's segments (created, or identical ones): equal documents compile the same.
    stored = documents.environment_ruleset(environment)
    for key, document in flag_documents.items():
        flag = dict(stored["flags"][key])
        flag["rules"] = [{**rule, "id": rule_ids[rule["id"]]} for rule in flag.get("rules", [])]
        if _json(_normalized(flag, key)) != _json(_normalized(document, key)):
            raise ValidationError(
                f'Flag "{key}" would be stored differently from the document '
                f"(stored: {_json(flag)[:300]}).",
                code="not_stored",
            )


def _normalized(document: Mapping[str, Any], key: str) -> Document:
    """A flag document with every member holding its default spelled out one way."""
    rules = []
    for rule in document.get("rules", []):
        attributes = bucket_attributes(rule.get("bucket_by", DEFAULT_BUCKET_BY))
        rules.append(
            {
                "id": rule["id"],
                "conditions": [
                    _condition(spec, 0).as_document() for spec in rule.get("conditions", [])
                ],
                "segments": sorted(set(rule.get("segments", []))),
                "rollout": rule.get("rollout"),
                "bucket_by": attributes,
                "serve": rule["serve"],
            }
        )
    salt = document.get("salt") or key
    return {
        "kind": document["kind"],
        "variants": document["variants"],
        "enabled": document["enabled"],
        "off_variant": document["off_variant"],
        "default_serve": document["default_serve"],
        "rules": rules,
        "prerequisites": [
            {"flag": p["flag"], "variants": list(p.get("variants") or [])}
            for p in document.get("prerequisites", [])
        ],
        "salt": salt,
        "client_visible": bool(document.get("client_visible", False)),
    }


def _json(value: Any) -> str:
    """JSON text: 1 and 1.0, or true and 1, are different values to SDKs; -0.0 and 0.0 are not.

    (PostgreSQL's jsonb stores numbers as ``numeric``, which has no negative zero; the format
    gives both the same canonical string, "0", and they compare equal as numbers.)
    """
    return json.dumps(_without_negative_zero(value), sort_keys=True)


def _without_negative_zero(value: Any) -> Any:
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, dict):
        return {key: _without_negative_zero(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_negative_zero(item) for item in value]
    return value
