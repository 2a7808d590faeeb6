"""History rows in people's words (flags.history.entries): subjects, labels, values, queries."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from accounts.services import api_key_issue
from flags import services
from flags.history import feed
from flags.history.entries import EMPTY, Entry, FieldChange, entries
from flags.history.recording import reason
from flags.models import Environment, Flag, Project, Segment

COUNTRY = {"attribute": "country", "operator": "in", "values": ["DE", "AT"]}


def _of_flag(flag: Flag) -> list[Entry]:
    """Every entry of a flag's scope, newest first."""
    return entries(feed.audit_rows(flag_id=flag.pk))


def _newest(found: list[Entry], model: str, kind: str | None = None) -> Entry:
    return next(e for e in found if e.model == model and (kind is None or e.kind == kind))


def test_entries__toggle_with_reason__enabled_off_to_on_with_who_where_and_why(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout turned on in staging by the editor, with a reason
    state = boolean_flag.states.get(environment=staging)
    with reason("Beta starts today"):
        services.flag_toggle(state=state, enabled=True, actor=editor)

    # When the feed's newest row is described
    entry = entries(feed.audit_rows()[:1])[0]

    # Then it says who, why, what and where, in words
    assert (entry.kind, entry.username, entry.user_id, entry.reason) == (
        "changed",
        "editor",
        editor.pk,
        "Beta starts today",
    )
    assert entry.subject == "new-checkout in Staging"
    assert (entry.flag_id, entry.flag_key) == (boolean_flag.pk, "new-checkout")
    assert (entry.environment_id, entry.environment_name) == (staging.pk, "Staging")
    assert entry.changes == [FieldChange("Enabled", "off", "on")]


def test_entries__change_without_reason__reason_is_none(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a toggle without a reason
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=editor)

    # When described
    entry = entries(feed.audit_rows()[:1])[0]

    # Then there is no reason, not an empty one
    assert entry.reason is None


def test_entries__rule_created__listed_with_the_words_of_the_rule_form(
    editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given a rule created with a condition, a segment and a 30 % rollout
    state = boolean_flag.states.get(environment=staging)
    services.rule_create(
        state=state,
        serve={"variant": "on"},
        description="Beta testers first",
        conditions=[COUNTRY],
        segments=[beta_testers],
        rollout=30_000,
        actor=editor,
    )

    # When the flag's entries are described
    found = _of_flag(boolean_flag)

    # Then the rule reads as created, its segments as a change, its condition as created
    created = _newest(found, "rule", "created")
    assert created.subject == "Rule “Beta testers first” in Staging · new-checkout"
    assert created.changes == [
        FieldChange("Position", EMPTY, "1"),
        FieldChange("Description", EMPTY, "Beta testers first"),
        FieldChange("Rollout", EMPTY, "30 %"),
        FieldChange("Bucket by", EMPTY, "targetingKey"),
        FieldChange("Serve", EMPTY, "on"),
    ]
    segments = _newest(found, "rule", "changed")
    assert segments.changes == [FieldChange("Segments", EMPTY, "Beta testers")]
    condition = _newest(found, "condition", "created")
    assert condition.subject == "Condition of rule “Beta testers first” in Staging · new-checkout"
    assert condition.changes == [
        FieldChange("Attribute", EMPTY, "country"),
        FieldChange("Operator", EMPTY, "is one of"),
        FieldChange("Values", EMPTY, "DE, AT"),
    ]
    assert (condition.flag_key, condition.environment_name) == ("new-checkout", "Staging")


def test_entries__rollout_changed_to_everyone__percent_to_everyone(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a 10 % rule widened to everyone
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(state=state, serve={"variant": "on"}, rollout=10_000, actor=editor)
    services.rule_update(rule=rule, actor=editor, rollout=None)

    # When described
    entry = _newest(_of_flag(boolean_flag), "rule", "changed")

    # Then the rollout reads as the form shows it
    assert entry.subject == "Untitled rule in Staging · new-checkout"
    assert entry.changes == [FieldChange("Rollout", "10 %", "everyone")]


def test_entries__rules_reordered__position_is_one_based(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given two rules, the second moved to the top
    state = boolean_flag.states.get(environment=staging)
    first = services.rule_create(
        state=state, serve={"variant": "on"}, description="First", actor=editor
    )
    second = services.rule_create(
        state=state, serve={"variant": "off"}, description="Second", actor=editor
    )
    state.refresh_from_db()
    services.rules_reorder(state=state, rule_ids=[second.pk, first.pk], actor=editor)

    # When described
    found = _of_flag(boolean_flag)

    # Then each rule's move reads as its 1-based position, nothing else
    moves = {e.subject: e.changes for e in found if e.model == "rule" and e.kind == "changed"}
    assert moves == {
        "Rule “Second” in Staging · new-checkout": [FieldChange("Position", "2", "1")],
        "Rule “First” in Staging · new-checkout": [FieldChange("Position", "1", "2")],
    }


def test_entries__off_variant_and_default_serve__variant_keys_and_split_in_words(
    editor: User, string_flag: Flag, staging: Environment
) -> None:
    # Given banner-text in staging: off variant none → sale, default serve a 50/50 split
    state = string_flag.states.get(environment=staging)
    split = {"split": [{"variant": "sale", "weight": 50_000}, {"variant": "new", "weight": 50_000}]}
    services.flag_state_update(
        state=state,
        actor=editor,
        off_variant=string_flag.variants.get(key="sale"),
        default_serve=split,
    )

    # When described
    entry = entries(feed.audit_rows()[:1])[0]

    # Then the variants are named by key (not id), version and timestamps are left out
    assert entry.subject == "banner-text in Staging"
    assert entry.changes == [
        FieldChange("Off variant", "none", "sale"),
        FieldChange("Default serve", "none", "sale 50 %, new 50 %"),
    ]


def test_entries__condition_edited__operator_label_and_values_joined(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a rule's condition changed from "is one of DE, AT" to "is not one of DE"
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state, serve={"variant": "on"}, conditions=[COUNTRY], actor=editor
    )
    condition = rule.conditions.get()
    condition.operator, condition.values = "not_in", ["DE"]
    services.condition_save(condition=condition, actor=editor)

    # When described
    entry = _newest(_of_flag(boolean_flag), "condition", "changed")

    # Then
    assert entry.subject == "Condition of an untitled rule in Staging · new-checkout"
    assert entry.changes == [
        FieldChange("Operator", "is one of", "is not one of"),
        FieldChange("Values", "DE, AT", "DE"),
    ]


def test_entries__rule_deleted__it_and_its_conditions_still_named_from_history(
    editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a rule with a condition, then deleted (its condition deleted with it)
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state, serve={"variant": "on"}, description="EU", conditions=[COUNTRY], actor=editor
    )
    services.rule_delete(rule=rule, actor=editor)

    # When described
    found = _of_flag(boolean_flag)

    # Then both still name the rule, the flag and the environment, with what they had
    deleted_rule = _newest(found, "rule", "deleted")
    assert deleted_rule.subject == "Rule “EU” in Staging · new-checkout"
    assert FieldChange("Serve", "on", EMPTY) in deleted_rule.changes
    deleted_condition = _newest(found, "condition", "deleted")
    assert deleted_condition.subject == "Condition of rule “EU” in Staging · new-checkout"
    assert (deleted_condition.flag_id, deleted_condition.environment_id) == (
        boolean_flag.pk,
        staging.pk,
    )
    assert FieldChange("Values", "DE, AT", EMPTY) in deleted_condition.changes


def test_entries__variant_revalued__value_as_the_variant_form_shows_it(
    editor: User, string_flag: Flag
) -> None:
    # Given banner-text's sale variant revalued (the system acting: production is protected)
    variant = string_flag.variants.get(key="sale")
    services.variant_update(variant=variant, actor=None, value="Summer sale!")

    # When described
    entry = entries(feed.audit_rows()[:1])[0]

    # Then
    assert entry.subject == "Variant sale of banner-text"
    assert (entry.flag_key, entry.environment_id, entry.username) == ("banner-text", None, None)
    assert entry.changes == [FieldChange("Value", "Winter sale!", "Summer sale!")]


def test_entries__project_objects__subjects_name_their_project(
    administrator: User, project: Project, production: Environment, beta_testers: Segment
) -> None:
    # Given a key issued in production and a segment and an environment renamed
    api_key_issue(
        kind="server", name="checkout-service", environment=production, actor=administrator
    )
    services.segment_update(segment=beta_testers, actor=administrator, name="Beta people")
    services.environment_update(environment=production, actor=administrator, name="Live")

    # When the three newest rows are described
    found = entries(feed.audit_rows()[:3])

    # Then each subject names what it is and where
    assert [(e.subject, e.changes) for e in found] == [
        ("Environment Live (Demo)", [FieldChange("Name", "Production", "Live")]),
        ("Segment Beta people", [FieldChange("Name", "Beta testers", "Beta people")]),
        (
            "API key checkout-service in Live (Demo)",
            [
                FieldChange("Kind", EMPTY, "Server key (may download the ruleset)"),
                FieldChange("Name", EMPTY, "checkout-service"),
            ],
        ),
    ]
    assert found[2].environment_id == production.pk


def test_entries__flag_tagged_and_owned__names_not_ids(
    editor: User, administrator: User, boolean_flag: Flag
) -> None:
    # Given new-checkout tagged and given an owner
    tag = services.tag_create(name="checkout", actor=editor)
    services.flag_update(flag=boolean_flag, actor=editor, tags=[tag], owner=administrator)

    # When its entries are described
    changed = [e for e in _of_flag(boolean_flag) if e.model == "flag" and e.kind == "changed"]

    # Then the owner is a username and the tags are names
    assert [e.changes for e in changed] == [
        [FieldChange("Tags", EMPTY, "checkout")],
        [FieldChange("Owner", EMPTY, "admin")],
    ]


def test_entries__many_kinds_of_rows__never_the_text_none(  # fixtures
    editor: User,
    release_manager: User,
    string_flag: Flag,
    boolean_flag: Flag,
    staging: Environment,
    beta_testers: Segment,
) -> None:
    # Given rules, conditions, prerequisites, serves and deletions
    state = string_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state, serve={"variant": "sale"}, conditions=[COUNTRY], actor=editor
    )
    services.prerequisite_add(state=state, parent=boolean_flag, actor=editor)
    services.rule_update(rule=rule, actor=editor, segments=[beta_testers], rollout=5_000)
    services.rule_delete(rule=rule, actor=editor)

    # When every row is described
    found = entries(feed.audit_rows())

    # Then no word anywhere is "None"
    words = [e.subject for e in found] + [
        text
        for e in found
        for change in e.changes
        for text in (change.label, change.old, change.new)
    ]
    assert [word for word in words if "None" in word] == []
    prerequisite = _newest(found, "prerequisite", "created")
    assert prerequisite.subject == "Prerequisite of banner-text in Staging"
    assert prerequisite.changes == [FieldChange("Parent flag", EMPTY, "new-checkout")]


def _toggles_and_rules(count: int, actor: User, project: Project) -> None:
    """``count`` flags, each toggled and given a rule with a condition in staging."""
    for number in range(count):
        flag = services.flag_create(project=project, key=f"f-{number:02}", name="F", actor=actor)
        state = flag.states.get(environment__key="staging")
        services.flag_toggle(state=state, enabled=True, actor=actor)
        services.rule_create(
            state=state,
            serve={"variant": "on"},
            description=f"Rule {number}",
            conditions=[COUNTRY],
            actor=actor,
        )


@pytest.mark.parametrize("count", [2, 12])
def test_entries__2_or_12_flags_changed__same_number_of_queries(
    count: int, editor: User, project: Project, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    # Given the editor's rows of every model a flag's life writes
    _toggles_and_rules(count, editor, project)
    page: list[dict[str, Any]] = list(feed.audit_rows(user_id=editor.pk)[:50])
    models = {"flag", "variant", "flagstate", "rule", "condition"}
    assert {row["model"] for row in page} == models

    # When / Then: one per model on the page, the rules' segments and the flags' tags, one per
    # kind of object named (rules, states, flags, environments, projects, variants), the people
    with django_assert_num_queries(14):
        found = entries(page)
    assert len(found) == len(page)
