"""The row-based ``environment_ruleset`` writes byte for byte the document the model-instance
implementation it replaced wrote (kept below as the reference), in a fixed number of queries.

The document's JSON (and so its key order) is compared, not only its value: the body SDKs
receive and its ETag are compared byte for byte elsewhere.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Prefetch
from pytest_django import DjangoAssertNumQueries

from flags import documents, services
from flags.models import (
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
from flagship_sdk.engine import FORMAT, Ruleset

# --- The reference: environment_ruleset as it was (model instances and prefetches) -----------


def _ref_conditions_document(conditions: Iterable[Condition]) -> list[dict[str, object]]:
    return [condition.as_document() for condition in conditions]


def _ref_rule_document(
    rule: Rule, *, segment_keys: list[str], conditions: Iterable[Condition]
) -> dict[str, Any]:
    document: dict[str, Any] = {"id": str(rule.pk) if rule.pk else "new"}
    listed = _ref_conditions_document(conditions)
    if listed:
        document["conditions"] = listed
    if segment_keys:
        document["segments"] = segment_keys
    if rule.rollout is not None:
        document["rollout"] = rule.rollout
    attributes = rule.bucket_attributes()
    if attributes and attributes != ["targetingKey"]:
        document["bucket_by"] = attributes[0] if len(attributes) == 1 else attributes
    document["serve"] = rule.serve
    return document


def _ref_flag_document(
    flag: Flag,
    state: FlagState,
    *,
    variants: Iterable[Variant],
    off_variant_key: str,
    rules: Iterable[dict[str, Any]],
    prerequisites: Iterable[Prerequisite],
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "kind": flag.kind,
        "variants": {variant.key: variant.value for variant in variants},
        "enabled": state.enabled,
        "off_variant": off_variant_key,
    }
    listed_rules = list(rules)
    if listed_rules:
        document["rules"] = listed_rules
    document["default_serve"] = state.default_serve
    listed_prerequisites = [
        {
            "flag": prerequisite.flag.key,
            **({"variants": prerequisite.variants} if prerequisite.variants else {}),
        }
        for prerequisite in prerequisites
    ]
    if listed_prerequisites:
        document["prerequisites"] = listed_prerequisites
    if flag.salt and flag.salt != flag.key:
        document["salt"] = flag.salt
    if flag.client_visible:
        document["client_visible"] = True
    return document


def _ref_states_for_ruleset(environment: Environment) -> Any:
    return (
        FlagState.objects.filter(environment=environment, flag__archived=False)
        .select_related("flag", "off_variant")
        .prefetch_related(
            Prefetch("flag__variants", queryset=Variant.objects.order_by("order", "id")),
            Prefetch(
                "rules",
                queryset=Rule.objects.order_by("order", "id").prefetch_related(
                    Prefetch("conditions", queryset=Condition.objects.order_by("order", "id")),
                    Prefetch("segments", queryset=Segment.objects.only("id", "key")),
                ),
            ),
            Prefetch(
                "prerequisites",
                queryset=Prerequisite.objects.select_related("flag").order_by("order", "id"),
            ),
        )
        .order_by("flag__key")
    )


def _ref_state_document(state: FlagState) -> dict[str, Any]:
    rules = [
        _ref_rule_document(
            rule,
            segment_keys=sorted(segment.key for segment in rule.segments.all()),
            conditions=rule.conditions.all(),
        )
        for rule in state.rules.all()
    ]
    return _ref_flag_document(
        state.flag,
        state,
        variants=state.flag.variants.all(),
        off_variant_key=state.off_variant.key,
        rules=rules,
        prerequisites=state.prerequisites.all(),
    )


def _ref_segments_document(project_id: int, keys: Iterable[str] | None = None) -> dict[str, Any]:
    segments = Segment.objects.filter(project_id=project_id).prefetch_related(
        Prefetch("conditions", queryset=Condition.objects.order_by("order", "id"))
    )
    if keys is not None:
        segments = segments.filter(key__in=list(keys))
    return {
        segment.key: {"conditions": _ref_conditions_document(segment.conditions.all())}
        for segment in segments.order_by("key")
    }


def _reference_environment_ruleset(environment: Environment) -> dict[str, Any]:
    environment = Environment.objects.select_related("project").get(pk=environment.pk)
    flags = {
        state.flag.key: _ref_state_document(state) for state in _ref_states_for_ruleset(environment)
    }
    return {
        "format": FORMAT,
        "project": environment.project.key,
        "environment": environment.key,
        "version": environment.ruleset_version,
        "segments": _ref_segments_document(environment.project_id),
        "flags": flags,
    }


# --- Data ------------------------------------------------------------------------------------


def _seed(*args: str) -> None:
    call_command("seed_demo", *args, stdout=io.StringIO(), stderr=io.StringIO())


def _demo() -> Project:
    return Project.objects.get(key="demo")


def _add_edge_cases(project: Project, *, stored_only: bool = True) -> None:
    """What the demo does not have: every optional member, and stored values the services would
    not write but the columns hold (odd bucket-by spellings, ties in order, a segment of another
    project on a rule, an archived parent, JSON values with nested keys)."""
    staging = project.environments.get(key="staging")
    people = services.segment_create(
        project=project,
        key="edge-people",
        name="Edge people",
        conditions=[
            {"attribute": "plan", "operator": "exists"},
            {"attribute": "email", "operator": "regex", "values": ["^a.*$"], "negate": True},
            {
                "attribute": "country",
                "operator": "in",
                "values": ["DE", "at"],
                "case_insensitive": True,
            },
        ],
    )
    services.segment_create(project=project, key="edge-empty", name="Edge empty")
    other = services.project_create(key="edge-other", name="Edge other")
    foreign = services.segment_create(project=other, key="aaa-foreign", name="Foreign")
    services.flag_create(project=other, key="edge-elsewhere", name="Elsewhere")
    config = services.flag_create(
        project=project,
        key="edge-config",
        name="Edge config",
        kind=Flag.Kind.JSON,
        variants=[
            ("empty", {}),
            ("nested", {"z": 1, "a": {"y": [1, 2, {"b": None}], "x": "é"}, "m": 1.5}),
            ("list", [3, "two", {"one": True}]),
        ],
        salt="edge-salt",
        client_visible=True,
    )
    number = services.flag_create(
        project=project,
        key="edge-number",
        name="Edge number",
        kind=Flag.Kind.NUMBER,
        variants=[("zero", 0), ("pi", 3.14159), ("big", 10**15), ("neg", -2)],
        salt="edge-number",  # the key: left out
    )
    parent = services.flag_create(project=project, key="edge-parent", name="Edge parent")
    state = config.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    serve = {
        "split": [{"variant": "nested", "weight": 60_000}, {"variant": "list", "weight": 40_000}]
    }
    first = services.rule_create(
        state=state,
        serve=serve,
        segments=[people],
        conditions=[
            {"attribute": "appVersion", "operator": "semver_gte", "values": ["1.2.0"]},
            {"attribute": "ip", "operator": "in_cidr", "values": ["10.0.0.0/8"]},
            {"attribute": "gone", "operator": "not_exists"},
        ],
        rollout=0,
        bucket_by="accountId, targetingKey",
    )
    tied = [
        services.rule_create(state=state, serve={"variant": "empty"}, bucket_by=spelling)
        for spelling in ("companyId", "targetingKey", "accountId")
    ]
    Rule.objects.filter(pk__in=[rule.pk for rule in tied]).update(order=7)  # ties: id decides
    Rule.objects.filter(pk=tied[0].pk).update(bucket_by=" companyId , , targetingKey ")
    Rule.objects.filter(pk=tied[1].pk).update(bucket_by="targetingKey, ")
    Rule.objects.filter(pk=tied[2].pk).update(bucket_by=" , ")
    services.rule_create(
        state=state,
        serve={"variant": "list"},
        conditions=[{"attribute": "n", "operator": "num_gt", "values": [1, 2.5]}] * 3,
    )
    Condition.objects.filter(rule__state=state, attribute="n").update(order=0)  # ties
    services.flag_state_update(state=state, default_serve={"variant": "nested"}, actor=None)
    services.prerequisite_add(state=state, parent=parent, variants=["on"], actor=None)
    services.prerequisite_add(state=state, parent=number, actor=None)
    number_state = number.states.get(environment=staging)
    services.rule_create(state=number_state, serve={"variant": "pi"}, rollout=100_000)
    if stored_only:  # last, and not through the services: they refuse both
        first.segments.add(foreign)  # another project's segment: written as stored
        Flag.objects.filter(pk=parent.pk).update(archived=True)  # an archived parent


def _ruleset_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False)


def _assert_same_everywhere() -> int:
    """Every environment's document equals the reference's, as JSON; returns how many flags."""
    compared = 0
    for environment in Environment.objects.order_by("pk"):
        expected = _reference_environment_ruleset(environment)
        built = documents.environment_ruleset(environment)
        assert _ruleset_json(built) == _ruleset_json(expected), environment.key
        compared += len(built["flags"])
    return compared


# --- Equality ---------------------------------------------------------------------------------


def test_environment_ruleset__demo_seed__same_json_as_the_reference(db: None) -> None:
    # Given the demo (rules, segments, splits, prerequisites) in its three environments
    _seed()
    # When every environment's document is built both ways
    # Then the JSON is the same, byte for byte
    assert _assert_same_everywhere() > 0


def test_environment_ruleset__generated_flags__same_json_as_the_reference(db: None) -> None:
    # Given the demo and 60 generated flags of every kind, a third of them on
    _seed("--flags", "60")
    # When every environment's document is built both ways
    # Then the JSON is the same, byte for byte
    assert _assert_same_everywhere() >= 3 * 60


def test_environment_ruleset__every_optional_member_and_odd_values__same_json(db: None) -> None:
    # Given the demo plus flags using every optional member and values only the columns allow
    _seed()
    _add_edge_cases(_demo())
    # When every environment's document is built both ways
    built = documents.environment_ruleset(_demo().environments.get(key="staging"))
    # Then the JSON is the same, byte for byte, and the edge cases are really in it
    _assert_same_everywhere()
    config = built["flags"]["edge-config"]
    assert [rule.get("bucket_by") for rule in config["rules"]] == [
        ["accountId", "targetingKey"],
        ["companyId", "targetingKey"],
        None,
        None,
        None,
    ]
    assert config["rules"][0]["segments"] == ["aaa-foreign", "edge-people"]
    assert config["prerequisites"] == [
        {"flag": "edge-parent", "variants": ["on"]},
        {"flag": "edge-number"},
    ]
    assert "edge-parent" not in built["flags"]
    assert built["segments"]["edge-empty"] == {"conditions": []}
    assert "aaa-foreign" not in built["segments"]


def test_per_object_documents__same_json_as_the_reference(db: None) -> None:
    # Given the demo plus the edge cases
    _seed()
    _add_edge_cases(_demo())
    project = _demo()
    for environment in project.environments.all():
        # When each state and the segments are written by the per-object functions (validation)
        for state in documents.states_for_ruleset(environment):
            expected = _ref_state_document(state)
            # Then they are the reference's, byte for byte
            assert _ruleset_json(documents.state_document(state)) == _ruleset_json(expected)
    keys = ["edge-people", "edge-empty", "beta-testers"]
    for chosen in (None, keys):
        assert _ruleset_json(documents.segments_document(project.pk, chosen)) == _ruleset_json(
            _ref_segments_document(project.pk, chosen)
        )


def test_environment_ruleset__edge_cases__compiles_strictly(db: None) -> None:
    # Given the demo plus the edge cases
    _seed()
    _add_edge_cases(_demo(), stored_only=False)
    # When staging's document is compiled strictly
    document = documents.environment_ruleset(_demo().environments.get(key="staging"))
    # Then the engine accepts it
    assert "edge-config" in Ruleset.from_dict(document, strict=True)


# --- A fixed number of queries -----------------------------------------------------------------


def _target_generated(project: Project) -> None:
    """Give every generated flag, in every environment, a rule with conditions and segments, and
    a prerequisite (in bulk: this is data, not the services under test)."""
    segments = list(Segment.objects.filter(project=project))
    root = Flag.objects.get(project=project, key="new-checkout")
    states = list(
        FlagState.objects.filter(flag__project=project, flag__key__startswith="generated-")
    )
    rules = Rule.objects.bulk_create(
        Rule(state=state, order=index, serve={"variant": state.default_serve.get("variant")})
        for state in states
        for index in range(2)
        if "variant" in state.default_serve
    )
    Condition.objects.bulk_create(
        Condition(rule=rule, order=0, attribute="country", operator="in", values=["DE"])
        for rule in rules
    )
    Rule.segments.through.objects.bulk_create(
        Rule.segments.through(rule_id=rule.pk, segment_id=segment.pk)
        for rule in rules
        for segment in segments
    )
    Prerequisite.objects.bulk_create(Prerequisite(state=state, flag=root) for state in states)


@pytest.mark.parametrize("count", [10, 200])
def test_environment_ruleset__10_or_200_flags__same_number_of_queries(
    db: None, django_assert_num_queries: DjangoAssertNumQueries, count: int
) -> None:
    # Given the demo and 10 (or 200) generated flags, each with rules, conditions, segments and
    # a prerequisite
    _seed("--flags", str(count))
    _target_generated(_demo())
    staging = _demo().environments.get(key="staging")
    # When staging's ruleset is built
    # Then it takes the same 9 queries: environment, states, variants, rules, conditions, rule
    # segments, prerequisites, segments, segment conditions
    with django_assert_num_queries(9):
        document = documents.environment_ruleset(staging)
    assert len([key for key in document["flags"] if key.startswith("generated-")]) == count
    assert _ruleset_json(document) == _ruleset_json(_reference_environment_ruleset(staging))
