"""Ruleset documents (docs/ruleset-format.md): the one module that writes the format's shape.

``environment_ruleset`` builds one environment's whole document in a fixed number of queries,
whatever the number of flags. ``flag_document`` and ``rule_document`` are the per-object pieces,
shared with validation (services) so that what is validated is exactly what SDKs will receive.

Every writer uses the same small functions taking plain values (``ruleset_document``,
``flag_values_document``, ``rule_values_document``, ``condition_values_document``,
``variant_serve``, ...): the per-object functions pass model attributes, ``environment_ruleset``
passes rows read with ``values_list`` (no model instances, no prefetch machinery: it runs after
every committed change), and the models' ``clean()`` (``flags.validation``), ``Condition`` and
bulk creation (``flags.services.bulk``) pass the values they check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Prefetch

from flagship_sdk.engine import FORMAT

from .delivery.committed import one_state
from .models import (
    Condition,
    Environment,
    Flag,
    FlagState,
    Prerequisite,
    Project,
    Rule,
    Segment,
    Variant,
)

DEFAULT_BUCKET_BY = "targetingKey"


_NO_VALUES_OPERATORS = frozenset(("exists", "not_exists"))


# --- Pieces from plain values (shared by both paths) -------------------------------------------


def condition_values_document(
    attribute: str, operator: str, values: Any, negate: bool, case_insensitive: bool
) -> dict[str, object]:
    """One condition as the format writes it (section 3); ``Condition.as_document()`` is this."""
    document: dict[str, object] = {"attribute": attribute, "operator": operator}
    if operator not in _NO_VALUES_OPERATORS:
        document["values"] = list(values)
    if negate:
        document["negate"] = True
    if case_insensitive:
        document["case_insensitive"] = True
    return document


def bucket_by_document(bucket_by: str) -> str | list[str] | None:
    """The ``bucket_by`` member of a rule stored with ``bucket_by``; None when it is the default.

    The attribute names are ``Rule.bucket_attributes()``'s: comma-separated, stripped, empties out.
    """
    if bucket_by == DEFAULT_BUCKET_BY:  # the column's default: the common case, no splitting
        return None
    attributes = [name.strip() for name in bucket_by.split(",") if name.strip()]
    if not attributes or attributes == [DEFAULT_BUCKET_BY]:
        return None
    return attributes[0] if len(attributes) == 1 else attributes


def rule_values_document(
    rule_id: int | None,
    *,
    conditions: list[dict[str, object]],
    segment_keys: list[str],
    rollout: int | None,
    bucket_by: str | list[str] | None,
    serve: Any,
) -> dict[str, Any]:
    """One rule; members holding their default are left out (format section 1, "Size").

    ``bucket_by`` is ``bucket_by_document``'s result (None: the default, left out).
    """
    document: dict[str, Any] = {"id": str(rule_id) if rule_id else "new"}
    if conditions:
        document["conditions"] = conditions
    if segment_keys:
        document["segments"] = segment_keys
    if rollout is not None:
        document["rollout"] = rollout
    if bucket_by is not None:
        document["bucket_by"] = bucket_by
    document["serve"] = serve
    return document


def flag_values_document(
    *,
    kind: str,
    key: str,
    salt: str,
    client_visible: bool,
    variants: dict[str, Any],
    enabled: bool,
    off_variant_key: str,
    rules: list[dict[str, Any]],
    default_serve: Any,
    prerequisites: list[dict[str, Any]],
) -> dict[str, Any]:
    """One flag in one environment, from its flag's and its state's values.

    ``prerequisites`` are already written (``prerequisite_values_document``).
    """
    document: dict[str, Any] = {
        "kind": kind,
        "variants": variants,
        "enabled": enabled,
        "off_variant": off_variant_key,
    }
    if rules:
        document["rules"] = rules
    document["default_serve"] = default_serve
    if prerequisites:
        document["prerequisites"] = prerequisites
    if salt and salt != key:
        document["salt"] = salt
    if client_visible:
        document["client_visible"] = True
    return document


def prerequisite_values_document(parent_key: str, variants: Any) -> dict[str, Any]:
    """One prerequisite: the parent flag's key, and its variants unless any will do."""
    if variants:
        return {"flag": parent_key, "variants": variants}
    return {"flag": parent_key}


def variant_serve(variant_key: str) -> dict[str, str]:
    """A serve of one variant (format section 2, "Serve"), as the serve columns store it too."""
    return {"variant": variant_key}


def ruleset_document(
    *,
    version: int,
    flags: dict[str, Any],
    segments: dict[str, Any] | None = None,
    project: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """A ruleset around its flags (format section 1); names and segments only when given."""
    document: dict[str, Any] = {"format": FORMAT}
    if project is not None:
        document["project"] = project
    if environment is not None:
        document["environment"] = environment
    document["version"] = version
    if segments is not None:
        document["segments"] = segments
    document["flags"] = flags
    return document


# --- Pieces from model instances (validation, the closure document) --------------------------


def conditions_document(conditions: Iterable[Condition]) -> list[dict[str, object]]:
    """Conditions in their stored order."""
    return [
        condition_values_document(
            condition.attribute,
            condition.operator,
            condition.values,
            condition.negate,
            condition.case_insensitive,
        )
        for condition in conditions
    ]


def rule_document(
    rule: Rule, *, segment_keys: list[str], conditions: Iterable[Condition]
) -> dict[str, Any]:
    """One rule; members holding their default are left out (format section 1, "Size")."""
    return rule_values_document(
        rule.pk,
        conditions=conditions_document(conditions),
        segment_keys=segment_keys,
        rollout=rule.rollout,
        bucket_by=bucket_by_document(rule.bucket_by),
        serve=rule.serve,
    )


def flag_document(
    flag: Flag,
    state: FlagState,
    *,
    variants: Iterable[Variant],
    off_variant_key: str,
    rules: Iterable[dict[str, Any]],
    prerequisites: Iterable[Prerequisite],
) -> dict[str, Any]:
    """One flag in one environment."""
    return flag_values_document(
        kind=flag.kind,
        key=flag.key,
        salt=flag.salt,
        client_visible=flag.client_visible,
        variants={variant.key: variant.value for variant in variants},
        enabled=state.enabled,
        off_variant_key=off_variant_key,
        rules=list(rules),
        default_serve=state.default_serve,
        prerequisites=[
            prerequisite_values_document(prerequisite.flag.key, prerequisite.variants)
            for prerequisite in prerequisites
        ],
    )


def _rules_prefetch() -> Any:
    return Prefetch(
        "rules",
        queryset=Rule.objects.order_by("order", "id").prefetch_related(
            Prefetch("conditions", queryset=Condition.objects.order_by("order", "id")),
            Prefetch("segments", queryset=Segment.objects.only("id", "key")),
        ),
    )


def states_for_ruleset(environment: Environment) -> Any:
    """The environment's live flag states with everything a document needs, prefetched."""
    return (
        FlagState.objects.filter(environment=environment, flag__archived=False)
        .select_related("flag", "off_variant")
        .prefetch_related(
            Prefetch("flag__variants", queryset=Variant.objects.order_by("order", "id")),
            _rules_prefetch(),
            Prefetch(
                "prerequisites",
                queryset=Prerequisite.objects.select_related("flag").order_by("order", "id"),
            ),
        )
        .order_by("flag__key")
    )


def state_document(state: FlagState) -> dict[str, Any]:
    """The document of a state loaded by ``states_for_ruleset`` (or with the same prefetches)."""
    rules = [
        rule_document(
            rule,
            segment_keys=sorted(segment.key for segment in rule.segments.all()),
            conditions=rule.conditions.all(),
        )
        for rule in state.rules.all()
    ]
    return flag_document(
        state.flag,
        state,
        variants=state.flag.variants.all(),
        off_variant_key=state.off_variant.key,
        rules=rules,
        prerequisites=state.prerequisites.all(),
    )


def segments_document(project_id: int, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The project's segments (or only ``keys``) as the format writes them."""
    segments = Segment.objects.filter(project_id=project_id).prefetch_related(
        Prefetch("conditions", queryset=Condition.objects.order_by("order", "id"))
    )
    if keys is not None:
        segments = segments.filter(key__in=list(keys))
    return {
        segment.key: {"conditions": conditions_document(segment.conditions.all())}
        for segment in segments.order_by("key")
    }


def _segment_conditions(project_id: int) -> dict[int, list[dict[str, object]]]:
    """The conditions of the project's segments, by segment id, in their stored order (1 query)."""
    by_segment: dict[int, list[dict[str, object]]] = {}
    rows = (
        Condition.objects.filter(segment__project_id=project_id)
        .order_by("segment_id", "order", "id")
        .values_list("segment_id", "attribute", "operator", "values", "negate", "case_insensitive")
    )
    for segment_id, attribute, operator, values, negate, case_insensitive in rows:
        document = condition_values_document(attribute, operator, values, negate, case_insensitive)
        by_segment.setdefault(segment_id, []).append(document)
    return by_segment


def _segments_values_document(project_id: int) -> dict[str, Any]:
    """``segments_document(project_id)`` from rows (2 queries)."""
    segments = list(
        Segment.objects.filter(project_id=project_id).order_by("key").values_list("id", "key")
    )
    conditions = _segment_conditions(project_id)
    return {key: {"conditions": conditions.get(pk, [])} for pk, key in segments}


def _grouped(rows: Iterable[Sequence[Any]]) -> dict[Any, list[Sequence[Any]]]:
    """Rows grouped by their first column, each group in the rows' order."""
    groups: dict[Any, list[Sequence[Any]]] = {}
    for row in rows:
        group = groups.get(row[0])
        if group is None:
            groups[row[0]] = [row]
        else:
            group.append(row)
    return groups


def environment_ruleset(environment: Environment) -> dict[str, Any]:
    """Build an environment's complete ruleset document (a constant number of queries: 9).

    Rows, not model instances: the environment, its live states (with their flag and off
    variant), variants, rules, rule conditions, rule segments, prerequisites, segments and segment
    conditions. The document is the one ``state_document`` and ``segments_document`` write.

    All of them read one committed state, and ``version`` is that state's (``committed.one_state``):
    in a snapshot transaction of its own, or in the caller's transaction, whose own uncommitted
    writes it then includes (such a document is not to be shared).
    """
    with one_state() as lock:
        return _environment_ruleset(environment.pk, lock=lock)


def _environment_row(pk: int, *, lock: bool) -> tuple[int, str, int, int, str]:
    """The environment's id, key, version, project id and project key (read ``FOR SHARE``)."""
    if not lock:
        row: tuple[int, str, int, int, str] = (
            Environment.objects.filter(pk=pk)
            .values_list("pk", "key", "ruleset_version", "project_id", "project__key")
            .get()
        )
        return row
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.id, e.key, e.ruleset_version, e.project_id, p.key "  # noqa: S608  # table names from the models, the id a parameter
            f"FROM {quote(Environment._meta.db_table)} e "
            f"JOIN {quote(Project._meta.db_table)} p ON p.id = e.project_id "
            "WHERE e.id = %s FOR SHARE OF e",
            [pk],
        )
        found = cursor.fetchone()
    if found is None:
        raise Environment.DoesNotExist("Environment matching query does not exist.")
    env_id, key, version, project_id, project_key = found
    return env_id, key, version, project_id, project_key


def _environment_ruleset(pk: int, *, lock: bool) -> dict[str, Any]:
    env_id, env_key, version, project_id, project_key = _environment_row(pk, lock=lock)
    live = {"state__environment_id": env_id, "state__flag__archived": False}
    states = list(
        FlagState.objects.filter(environment_id=env_id, flag__archived=False)
        .order_by("flag__key")
        .values_list(
            "pk",
            "flag_id",
            "flag__key",
            "flag__kind",
            "flag__salt",
            "flag__client_visible",
            "enabled",
            "off_variant__key",
            "default_serve",
        )
    )
    variants: dict[int, dict[str, Any]] = {}
    for flag_id, key, value in (
        Variant.objects.filter(flag__states__environment_id=env_id, flag__archived=False)
        .order_by("flag_id", "order", "id")
        .values_list("flag_id", "key", "value")
    ):
        flag_variants = variants.get(flag_id)
        if flag_variants is None:
            variants[flag_id] = {key: value}
        else:
            flag_variants[key] = value
    rules = _grouped(
        Rule.objects.filter(**live)
        .order_by("state_id", "order", "id")
        .values_list("state_id", "id", "rollout", "bucket_by", "serve")
    )
    rule_conditions: dict[int, list[dict[str, object]]] = {}
    for rule_id, attribute, operator, values, negate, case_insensitive in (
        Condition.objects.filter(
            rule__state__environment_id=env_id, rule__state__flag__archived=False
        )
        .order_by("rule_id", "order", "id")
        .values_list("rule_id", "attribute", "operator", "values", "negate", "case_insensitive")
    ):
        document = condition_values_document(attribute, operator, values, negate, case_insensitive)
        listed = rule_conditions.get(rule_id)
        if listed is None:
            rule_conditions[rule_id] = [document]
        else:
            listed.append(document)
    rule_segments: dict[int, list[str]] = {}
    for rule_id, segment_key in Rule.segments.through.objects.filter(
        rule__state__environment_id=env_id, rule__state__flag__archived=False
    ).values_list("rule_id", "segment__key"):
        rule_segments.setdefault(rule_id, []).append(segment_key)
    prerequisites = _grouped(
        Prerequisite.objects.filter(**live)
        .order_by("state_id", "order", "id")
        .values_list("state_id", "flag__key", "variants")
    )
    segments = _segments_values_document(project_id)

    no_rows: list[Sequence[Any]] = []
    flags: dict[str, Any] = {}
    for (
        state_id,
        flag_id,
        key,
        kind,
        salt,
        client_visible,
        enabled,
        off_variant_key,
        default_serve,
    ) in states:
        flags[key] = flag_values_document(
            kind=kind,
            key=key,
            salt=salt,
            client_visible=client_visible,
            variants=variants.get(flag_id, {}),
            enabled=enabled,
            off_variant_key=off_variant_key,
            rules=[
                rule_values_document(
                    rule_id,
                    conditions=rule_conditions.get(rule_id, []),
                    segment_keys=sorted(rule_segments.get(rule_id, ())),
                    rollout=rollout,
                    bucket_by=bucket_by_document(bucket_by),
                    serve=serve,
                )
                for _, rule_id, rollout, bucket_by, serve in rules.get(state_id, no_rows)
            ],
            default_serve=default_serve,
            prerequisites=[
                prerequisite_values_document(parent_key, wanted)
                for _, parent_key, wanted in prerequisites.get(state_id, no_rows)
            ],
        )
    return ruleset_document(
        version=version,
        flags=flags,
        segments=segments,
        project=project_key,
        environment=env_key,
    )
