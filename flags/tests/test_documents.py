"""The ruleset document built from the database: its exact shape, its schema, its strict
compilation, its query count, and what it leaves out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from jsonschema import Draft202012Validator
from pytest_django import DjangoAssertNumQueries

from flags import documents, services
from flags.models import Condition, Environment, Flag, Project, Rule, Segment
from flagship_sdk.engine import Ruleset

SCHEMA = json.loads(
    (Path(settings.BASE_DIR) / "docs" / "ruleset.schema.json").read_text(encoding="utf-8")
)
VALIDATOR = Draft202012Validator(SCHEMA)


def _schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in VALIDATOR.iter_errors(document)]


@pytest.fixture
def targeted(
    boolean_flag: Flag, string_flag: Flag, beta_testers: Segment, staging: Environment
) -> dict[str, Any]:
    """new-checkout and banner-text in staging, using every member the format has.

    Returns the rules' ids, which the document reports as strings.
    """
    checkout = boolean_flag.states.get(environment=staging)
    banner = string_flag.states.get(environment=staging)
    services.flag_toggle(state=checkout, enabled=True, actor=None)
    services.flag_toggle(state=banner, enabled=True, actor=None)
    services.flag_update(flag=string_flag, actor=None, salt="banner-2026", client_visible=True)
    beta_rule = services.rule_create(
        state=checkout,
        serve={"variant": "on"},
        segments=[beta_testers],
        conditions=[
            {"attribute": "country", "operator": "in", "values": ["DE", "AT"]},
            {
                "attribute": "email",
                "operator": "str_contains",
                "values": ["+test"],
                "negate": True,
                "case_insensitive": True,
            },
            {"attribute": "plan", "operator": "exists"},
        ],
    )
    rollout_rule = services.rule_create(
        state=checkout, serve={"variant": "on"}, rollout=25_000, bucket_by="accountId, targetingKey"
    )
    split = {"split": [{"variant": "sale", "weight": 30_000}, {"variant": "new", "weight": 70_000}]}
    banner_rule = services.rule_create(state=banner, serve=split, bucket_by="accountId")
    services.flag_state_update(state=banner, default_serve={"variant": "none"}, actor=None)
    services.prerequisite_add(state=banner, parent=boolean_flag, actor=None)
    services.prerequisite_add(
        state=checkout,
        parent=services.flag_create(
            project=boolean_flag.project, key="kill-switch", name="Kill switch"
        ),
        variants=["off"],
        actor=None,
    )
    return {
        "beta": str(beta_rule.pk),
        "rollout": str(rollout_rule.pk),
        "banner": str(banner_rule.pk),
    }


def test_environment_ruleset__every_member__exact_document(
    targeted: dict[str, Any], staging: Environment
) -> None:
    # Given staging with two targeted flags, a kill switch and a segment
    # When its ruleset is built
    document = documents.environment_ruleset(staging)
    # Then the document is exactly this (members holding their default left out)
    assert document == {
        "format": 1,
        "project": "demo",
        "environment": "staging",
        "version": Environment.objects.get(pk=staging.pk).ruleset_version,
        "segments": {
            "beta-testers": {
                "conditions": [
                    {"attribute": "email", "operator": "str_ends_with", "values": ["@example.com"]}
                ]
            }
        },
        "flags": {
            "banner-text": {
                "kind": "string",
                "variants": {"none": "", "sale": "Winter sale!", "new": "Try our new checkout"},
                "enabled": True,
                "off_variant": "none",
                "rules": [
                    {
                        "id": targeted["banner"],
                        "bucket_by": "accountId",
                        "serve": {
                            "split": [
                                {"variant": "sale", "weight": 30_000},
                                {"variant": "new", "weight": 70_000},
                            ]
                        },
                    }
                ],
                "default_serve": {"variant": "none"},
                "prerequisites": [{"flag": "new-checkout"}],
                "salt": "banner-2026",
                "client_visible": True,
            },
            "kill-switch": {
                "kind": "boolean",
                "variants": {"on": True, "off": False},
                "enabled": False,
                "off_variant": "off",
                "default_serve": {"variant": "off"},
            },
            "new-checkout": {
                "kind": "boolean",
                "variants": {"on": True, "off": False},
                "enabled": True,
                "off_variant": "off",
                "rules": [
                    {
                        "id": targeted["beta"],
                        "conditions": [
                            {"attribute": "country", "operator": "in", "values": ["DE", "AT"]},
                            {
                                "attribute": "email",
                                "operator": "str_contains",
                                "values": ["+test"],
                                "negate": True,
                                "case_insensitive": True,
                            },
                            {"attribute": "plan", "operator": "exists"},
                        ],
                        "segments": ["beta-testers"],
                        "serve": {"variant": "on"},
                    },
                    {
                        "id": targeted["rollout"],
                        "rollout": 25_000,
                        "bucket_by": ["accountId", "targetingKey"],
                        "serve": {"variant": "on"},
                    },
                ],
                "default_serve": {"variant": "off"},
                "prerequisites": [{"flag": "kill-switch", "variants": ["off"]}],
            },
        },
    }


def test_environment_ruleset__every_member__satisfies_the_schema_and_compiles_strictly(
    targeted: dict[str, Any], staging: Environment
) -> None:
    # Given staging with targeted flags
    # When its ruleset is built
    document = documents.environment_ruleset(staging)
    # Then the JSON Schema accepts it and the engine compiles it in strict mode
    assert _schema_errors(document) == []
    ruleset = Ruleset.from_dict(document, strict=True)
    assert sorted(ruleset) == ["banner-text", "kill-switch", "new-checkout"]
    assert ruleset.version == document["version"]


def test_environment_ruleset__evaluated__follows_targeting(
    targeted: dict[str, Any], staging: Environment
) -> None:
    # Given staging's ruleset, compiled
    ruleset = Ruleset.from_dict(documents.environment_ruleset(staging), strict=True)
    # When a German beta tester and an outsider are evaluated
    tester = {"targetingKey": "u1", "email": "ana@example.com", "country": "DE", "plan": "pro"}
    outsider = {"country": "FR"}
    # Then the tester matches the segment rule; the outsider cannot be bucketed and falls through
    result = ruleset.evaluate("new-checkout", tester)
    assert (result.value, result.reason, result.rule) == (True, "TARGETING_MATCH", targeted["beta"])
    result = ruleset.evaluate("new-checkout", outsider)
    assert (result.value, result.reason, result.rule) == (False, "DEFAULT", None)


def test_environment_ruleset__json_round_trip__unchanged(
    targeted: dict[str, Any], staging: Environment
) -> None:
    # Given staging's ruleset
    document = documents.environment_ruleset(staging)
    # When it is serialised as SDKs receive it, and read back
    # Then nothing is lost (only JSON types inside)
    assert json.loads(json.dumps(document)) == document


def test_environment_ruleset__archived_flag__left_out(
    boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout and banner-text, and banner-text archived
    services.flag_archive(flag=string_flag, actor=None)
    # When staging's ruleset is built
    document = documents.environment_ruleset(staging)
    # Then only new-checkout is in it
    assert list(document["flags"]) == ["new-checkout"]


def test_environment_ruleset__other_projects_and_environments__left_out(
    boolean_flag: Flag, beta_testers: Segment, staging: Environment
) -> None:
    # Given a second project with a flag and a segment, and new-checkout on in development only
    other = services.project_create(key="other", name="Other")
    services.flag_create(project=other, key="elsewhere", name="Elsewhere")
    services.segment_create(project=other, key="elsewhere-people", name="Elsewhere people")
    development = boolean_flag.states.get(environment__key="development")
    services.flag_toggle(state=development, enabled=True, actor=None)
    # When staging's ruleset is built
    document = documents.environment_ruleset(staging)
    # Then it holds demo's flag as staging has it, and demo's segment only
    assert list(document["flags"]) == ["new-checkout"]
    assert document["flags"]["new-checkout"]["enabled"] is False
    assert list(document["segments"]) == ["beta-testers"]


def test_environment_ruleset__no_flags__valid_empty_document(project: Project) -> None:
    # Given project demo without flags or segments
    staging = project.environments.get(key="staging")
    # When staging's ruleset is built
    document = documents.environment_ruleset(staging)
    # Then it is a valid, empty document
    assert document == {
        "format": 1,
        "project": "demo",
        "environment": "staging",
        "version": 1,
        "segments": {},
        "flags": {},
    }
    assert _schema_errors(document) == []


def test_environment_ruleset__version__is_the_environments_ruleset_version(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given staging after a toggle
    services.flag_toggle(
        state=boolean_flag.states.get(environment=staging), enabled=True, actor=None
    )
    # When its ruleset is built
    document = documents.environment_ruleset(staging)
    # Then the document carries the stored version (not a stale in-memory one)
    assert document["version"] == Environment.objects.get(pk=staging.pk).ruleset_version
    assert document["version"] > staging.ruleset_version


# --- A fixed number of queries, whatever the number of flags ---------------------------------


def _populate(project: Project, staging: Environment, count: int) -> None:
    """``count`` flags in staging, each with two rules (conditions, segments), a prerequisite."""
    segments = [
        services.segment_create(
            project=project,
            key=f"segment-{index}",
            name=f"Segment {index}",
            conditions=[{"attribute": "plan", "operator": "in", "values": [f"p{index}"]}],
        )
        for index in range(2)
    ]
    root = services.flag_create(project=project, key="root", name="Root")
    for index in range(count - 1):
        flag = services.flag_create(
            project=project,
            key=f"flag-{index:03}",
            name=f"Flag {index}",
            kind=Flag.Kind.STRING,
            variants=[("a", "A"), ("b", "B")],
        )
        state = flag.states.get(environment=staging)
        services.rule_create(
            state=state,
            serve={"variant": "a"},
            segments=segments,
            conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
        )
        services.rule_create(state=state, serve={"variant": "b"}, rollout=50_000)
        services.prerequisite_add(state=state, parent=root, actor=None)


@pytest.mark.parametrize("count", [3, 12])
def test_environment_ruleset__3_or_12_flags__same_number_of_queries(
    project: Project,
    staging: Environment,
    django_assert_num_queries: DjangoAssertNumQueries,
    count: int,
) -> None:
    # Given staging with 3 (or 12) flags, each with rules, conditions, segments, a prerequisite
    _populate(project, staging, count)
    # When its ruleset is built
    # Then it takes the same 9 queries: environment, states, variants, rules, conditions, rule
    # segments, prerequisites, segments, segment conditions
    with django_assert_num_queries(9):
        document = documents.environment_ruleset(staging)
    assert len(document["flags"]) == count
    assert _schema_errors(document) == []


# --- The pieces written from plain values agree with the models' own methods -----------------


@pytest.mark.parametrize(
    ("operator", "values", "negate", "case_insensitive"),
    [
        ("in", ["DE", "AT"], False, False),
        ("str_contains", ["+test"], True, True),
        ("num_gt", [1, 2.5], False, True),
        ("exists", [], False, False),
        ("not_exists", ["ignored"], True, False),
    ],
)
def test_condition_values_document__any_condition__same_as_as_document(
    operator: str, values: list[Any], negate: bool, case_insensitive: bool
) -> None:
    # Given a condition (unsaved)
    condition = Condition(
        attribute="plan",
        operator=operator,
        values=values,
        negate=negate,
        case_insensitive=case_insensitive,
    )
    # When it is written from its values
    document = documents.condition_values_document(
        "plan", operator, values, negate, case_insensitive
    )
    # Then it is what the model writes, key order included
    assert json.dumps(document) == json.dumps(condition.as_document())


@pytest.mark.parametrize(
    ("bucket_by", "expected"),
    [
        ("targetingKey", None),
        ("targetingKey, ", None),
        (" , ", None),
        ("", None),
        ("accountId", "accountId"),
        (" accountId ", "accountId"),
        ("accountId, targetingKey", ["accountId", "targetingKey"]),
        (" companyId , , targetingKey ", ["companyId", "targetingKey"]),
    ],
)
def test_bucket_by_document__stored_spellings__as_rule_bucket_attributes_says(
    bucket_by: str, expected: str | list[str] | None
) -> None:
    # Given a rule's stored bucket-by
    attributes = Rule(bucket_by=bucket_by).bucket_attributes()
    # When its document member is written
    # Then it is left out for the default (or nothing), a name for one, a list for more
    assert documents.bucket_by_document(bucket_by) == expected
    if expected is not None:
        assert attributes == ([expected] if isinstance(expected, str) else expected)
