"""The domain model's guarantees: database constraints, a state per flag and environment, keys.

Constraint tests write rows straight through the ORM (no ``full_clean``), so what refuses a bad row
is the database itself, whatever code path tries to write it. Each refusal sits next to an accepted
boundary row, so the test proves the constraint and not some other column's ``NOT NULL``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import RestrictedError

from flags import services
from flags.models import (
    Condition,
    Environment,
    Flag,
    FlagState,
    Prerequisite,
    Project,
    Rule,
    Segment,
    Tag,
    Variant,
)

KEY_MESSAGE = "Use only letters, digits, dots, dashes and underscores (no spaces)."


def _refused(error: IntegrityError, *, constraint: str, columns: str) -> bool:
    """Whether an IntegrityError names the constraint (PostgreSQL) or its columns (SQLite).

    PostgreSQL names every constraint; SQLite names check constraints but reports unique ones by
    their columns (``UNIQUE constraint failed: flags_flag.project_id, flags_flag.key``).
    """
    text = str(error)
    if connection.vendor == "postgresql" or "CHECK" in text:
        return f'"{constraint}"' in text or text.endswith(f": {constraint}")
    return text == f"UNIQUE constraint failed: {columns}"


def _insert_flag(project: Project, **fields: Any) -> Flag:
    values: dict[str, Any] = {"key": "fine", "name": "Fine", **fields}
    with transaction.atomic():
        return Flag.objects.create(project=project, **values)


# --- Unique keys -----------------------------------------------------------------------------


def test_flag_key__twice_in_one_project__database_refuses(boolean_flag: Flag) -> None:
    # Given a flag new-checkout in project demo
    # When a second row with the same key is written to the same project
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Flag.objects.create(project=boolean_flag.project, key="new-checkout", name="Again")
    # Then the unique constraint refuses it
    assert _refused(
        caught.value,
        constraint="flag_key_unique_per_project",
        columns="flags_flag.project_id, flags_flag.key",
    )


def test_flag_key__same_key_in_another_project__is_accepted(boolean_flag: Flag) -> None:
    # Given a flag new-checkout in project demo, and another project
    other = services.project_create(key="other", name="Other")
    # When the other project gets a flag with the same key
    flag = _insert_flag(other, key="new-checkout")
    # Then both exist: keys are unique per project only
    assert Flag.objects.filter(key="new-checkout").count() == 2
    assert flag.project == other


def test_environment_key__twice_in_one_project__database_refuses(project: Project) -> None:
    # Given project demo with its staging environment
    # When a second staging is written to it
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Environment.objects.create(project=project, key="staging", name="Staging 2")
    # Then the unique constraint refuses it
    assert _refused(
        caught.value,
        constraint="environment_key_unique_per_project",
        columns="flags_environment.project_id, flags_environment.key",
    )


def test_segment_key__twice_in_one_project__database_refuses(beta_testers: Segment) -> None:
    # Given segment beta-testers
    # When a second row with the same key is written to the same project
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Segment.objects.create(project=beta_testers.project, key="beta-testers", name="Again")
    # Then the unique constraint refuses it
    assert _refused(
        caught.value,
        constraint="segment_key_unique_per_project",
        columns="flags_segment.project_id, flags_segment.key",
    )


def test_variant_key__twice_in_one_flag__database_refuses(string_flag: Flag) -> None:
    # Given flag banner-text with a variant "sale"
    # When a second variant "sale" is written to it
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Variant.objects.create(flag=string_flag, key="sale", value="Again", order=9)
    # Then the unique constraint refuses it
    assert _refused(
        caught.value,
        constraint="variant_key_unique_per_flag",
        columns="flags_variant.flag_id, flags_variant.key",
    )


def test_flag_state__second_state_for_one_environment__database_refuses(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout's state in staging
    state = boolean_flag.states.get(environment=staging)
    # When a second state for the same flag and environment is written
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        FlagState.objects.create(
            flag=boolean_flag,
            environment=staging,
            off_variant=state.off_variant,
            default_serve={"variant": "off"},
        )
    # Then the unique constraint refuses it
    assert _refused(
        caught.value,
        constraint="flag_state_unique_per_environment",
        columns="flags_flagstate.flag_id, flags_flagstate.environment_id",
    )


def test_prerequisite__same_parent_twice__database_refuses(
    boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout in staging requires banner-text once
    state = boolean_flag.states.get(environment=staging)
    services.prerequisite_add(state=state, parent=string_flag, actor=None)
    # When the same parent is written a second time
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Prerequisite.objects.create(state=state, flag=string_flag, order=5)
    # Then the unique constraint refuses it
    assert _refused(
        caught.value,
        constraint="prerequisite_unique_parent",
        columns="flags_prerequisite.state_id, flags_prerequisite.flag_id",
    )


def test_project_key__twice__database_refuses(project: Project) -> None:
    # Given project demo
    # When a second project with key demo is written
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Project.objects.create(key="demo", name="Demo again")
    # Then the unique column refuses it (Django names this index itself)
    text = str(caught.value)
    assert "flags_project_key" in text or text == "UNIQUE constraint failed: flags_project.key"


def test_tag_name__same_name_in_other_case__database_refuses(db: None) -> None:
    # Given a tag "Checkout"
    Tag.objects.create(name="Checkout")
    # When a tag "checkout" is written
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Tag.objects.create(name="checkout")
    # Then the case-insensitive unique constraint refuses it
    text = str(caught.value)
    assert '"tag_name_unique_case_insensitive"' in text or text.startswith(
        "UNIQUE constraint failed: index 'tag_name_unique_case_insensitive'"
    )


# --- Check constraints -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["new checkout", "new/checkout", "ümlaut", ""])
def test_flag_key__not_url_safe__database_refuses(project: Project, key: str) -> None:
    # Given project demo
    # When a flag whose key is not URL-safe is written around validation
    with pytest.raises(IntegrityError) as caught:
        _insert_flag(project, key=key)
    # Then the key-format check refuses it
    assert _refused(caught.value, constraint="flag_key_format", columns="")


def test_flag_key__every_allowed_character__database_accepts(project: Project) -> None:
    # Given project demo
    # When a flag uses every kind of allowed character
    flag = _insert_flag(project, key="Az09._-")
    # Then it is stored
    assert Flag.objects.get(pk=flag.pk).key == "Az09._-"


def test_environment_key__with_space__database_refuses(project: Project) -> None:
    # Given project demo
    # When an environment whose key has a space is written around validation
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Environment.objects.create(project=project, key="pre prod", name="Pre-production")
    # Then the key-format check refuses it
    assert _refused(caught.value, constraint="environment_key_format", columns="")


def test_flag_kind__unknown__database_refuses(project: Project) -> None:
    # Given project demo
    # When a flag of kind "yaml" is written around validation
    with pytest.raises(IntegrityError) as caught:
        _insert_flag(project, kind="yaml")
    # Then the kind check refuses it
    assert _refused(caught.value, constraint="flag_kind_valid", columns="")


@pytest.mark.parametrize("kind", ["boolean", "string", "number", "json"])
def test_flag_kind__each_known_kind__database_accepts(project: Project, kind: str) -> None:
    # Given project demo
    # When a flag of a known kind is written
    flag = _insert_flag(project, key=f"k-{kind}", kind=kind)
    # Then it is stored
    assert Flag.objects.get(pk=flag.pk).kind == kind


def _insert_rule(state: FlagState, rollout: int | None) -> Rule:
    with transaction.atomic():
        return Rule.objects.create(state=state, rollout=rollout, serve={"variant": "on"})


def test_rule_rollout__above_100_percent__database_refuses(
    boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout's state in staging
    state = boolean_flag.states.get(environment=staging)
    # When a rule with rollout 100001 (100.001 %) is written around validation
    with pytest.raises(IntegrityError) as caught:
        _insert_rule(state, 100_001)
    # Then the rollout check refuses it
    assert _refused(caught.value, constraint="rule_rollout_at_most_100_percent", columns="")


@pytest.mark.parametrize("rollout", [None, 0, 100_000])
def test_rule_rollout__none_or_within_bounds__database_accepts(
    boolean_flag: Flag, staging: Environment, rollout: int | None
) -> None:
    # Given new-checkout's state in staging
    state = boolean_flag.states.get(environment=staging)
    # When a rule with an empty, zero or full rollout is written
    rule = _insert_rule(state, rollout)
    # Then it is stored
    assert Rule.objects.get(pk=rule.pk).rollout == rollout


def _condition(**owner: Any) -> Condition:
    return Condition(attribute="country", operator="in", values=["DE"], **owner)


@pytest.fixture
def rule(boolean_flag: Flag, staging: Environment) -> Rule:
    """A rule of new-checkout in staging, serving on to everyone."""
    state = boolean_flag.states.get(environment=staging)
    return services.rule_create(state=state, serve={"variant": "on"})


def test_condition__owned_by_rule_and_segment__database_refuses(
    rule: Rule, beta_testers: Segment
) -> None:
    # Given a rule and a segment
    # When a condition belonging to both is written
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        _condition(rule=rule, segment=beta_testers).save()
    # Then the ownership check refuses it
    assert _refused(caught.value, constraint="condition_belongs_to_rule_or_segment", columns="")


def test_condition__owned_by_neither__database_refuses(db: None) -> None:
    # Given nothing
    # When a condition with neither a rule nor a segment is written
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        _condition().save()
    # Then the ownership check refuses it
    assert _refused(caught.value, constraint="condition_belongs_to_rule_or_segment", columns="")


def test_condition__owned_by_exactly_one__database_accepts(
    rule: Rule, beta_testers: Segment
) -> None:
    # Given a rule and a segment
    # When one condition belongs to the rule and another to the segment
    with transaction.atomic():
        _condition(rule=rule).save()
        _condition(segment=beta_testers).save()
    # Then both are stored (plus the segment's own condition)
    assert Condition.objects.filter(rule=rule).count() == 1
    assert Condition.objects.filter(segment=beta_testers).count() == 2


def test_condition_operator__unknown__database_refuses(rule: Rule) -> None:
    # Given a rule
    # When a condition with operator "like" is written around validation
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Condition.objects.create(rule=rule, attribute="email", operator="like", values=["%a%"])
    # Then the operator check refuses it
    assert _refused(caught.value, constraint="condition_operator_valid", columns="")


def test_off_variant__still_referenced__database_refuses_deleting_it(
    boolean_flag: Flag,
) -> None:
    # Given new-checkout, whose states fall back on its "off" variant
    off = boolean_flag.variants.get(key="off")
    # When the variant is deleted around the services
    with pytest.raises(RestrictedError) as caught, transaction.atomic():
        off.delete()
    # Then the restricting foreign key refuses it, naming the three states (a flag deleted with
    # its states and variants is not refused: RESTRICT, unlike PROTECT, allows that cascade)
    assert len(caught.value.restricted_objects) == 3


# --- A state for every flag and environment --------------------------------------------------


def _pairs(project: Project) -> set[tuple[str, str]]:
    return set(
        FlagState.objects.filter(flag__project=project).values_list("flag__key", "environment__key")
    )


def test_flag_state__flag_created_after_environments__exists_in_each(
    project: Project,
) -> None:
    # Given project demo with development, staging and production
    # When a flag is created
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    # Then it has one switched-off state per environment, serving its off variant
    assert _pairs(project) == {
        ("new-checkout", "development"),
        ("new-checkout", "staging"),
        ("new-checkout", "production"),
    }
    assert list(flag.states.values_list("enabled", "off_variant__key", "default_serve")) == [
        (False, "off", {"variant": "off"}),
        (False, "off", {"variant": "off"}),
        (False, "off", {"variant": "off"}),
    ]


def test_flag_state__environment_created_after_flags__exists_for_each(
    boolean_flag: Flag, string_flag: Flag
) -> None:
    # Given project demo with two flags
    project = boolean_flag.project
    # When an environment is added
    services.environment_create(project=project, key="qa", name="QA", actor=None)
    # Then both flags have a switched-off state there too
    qa = set(
        FlagState.objects.filter(environment__key="qa").values_list(
            "flag__key", "enabled", "off_variant__key"
        )
    )
    assert qa == {("new-checkout", False, "off"), ("banner-text", False, "none")}
    assert len(_pairs(project)) == 8


def test_flag_state__other_project_environment_created__gets_no_state(
    boolean_flag: Flag,
) -> None:
    # Given project demo with a flag, and a second project
    other = services.project_create(key="other", name="Other", environments=())
    # When the second project gets an environment
    services.environment_create(project=other, key="live", name="Live", actor=None)
    # Then demo's flag gets no state in it
    assert not FlagState.objects.filter(environment__project=other).exists()
    assert boolean_flag.states.count() == 3


# --- Keys as people type them ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["new checkout", "new-checkout ", "new\tcheckout"])
def test_flag_key__with_whitespace__refused_with_a_human_message(
    project: Project, key: str
) -> None:
    # Given project demo
    # When a flag key with whitespace is entered
    with pytest.raises(ValidationError) as caught:
        services.flag_create(project=project, key=key, name="New checkout")
    # Then the key field says which characters are allowed, and nothing else is reported
    assert caught.value.message_dict == {"key": [KEY_MESSAGE]}
    assert not Flag.objects.filter(project=project).exists()


def test_flag_key__trailing_newline__refused_with_a_human_message(project: Project) -> None:
    # Given project demo
    # When a key ends with a newline (a regex "$" would let it through)
    with pytest.raises(ValidationError) as caught:
        services.flag_create(project=project, key="new-checkout\n", name="New checkout")
    # Then the key field refuses it
    assert caught.value.message_dict == {"key": [KEY_MESSAGE]}


@pytest.mark.parametrize(
    ("create", "field"),
    [
        (lambda p: services.environment_create(project=p, key="pre prod", name="Pre"), "key"),
        (lambda p: services.segment_create(project=p, key="beta testers", name="Beta"), "key"),
        (lambda p: services.project_create(key="my project", name="Mine"), "key"),
    ],
    ids=["environment", "segment", "project"],
)
def test_other_keys__with_space__refused_with_a_human_message(
    project: Project, create: Any, field: str
) -> None:
    # Given project demo
    # When an environment, segment or project key with a space is entered
    with pytest.raises(ValidationError) as caught:
        create(project)
    # Then its key field says which characters are allowed
    assert caught.value.message_dict == {field: [KEY_MESSAGE]}


def test_variant_key__with_space__refused_with_a_human_message(string_flag: Flag) -> None:
    # Given flag banner-text
    # When a variant key with a space is entered
    with pytest.raises(ValidationError) as caught:
        services.variant_create(flag=string_flag, key="big sale", value="Sale!", actor=None)
    # Then the key field says which characters are allowed
    assert caught.value.message_dict == {"key": [KEY_MESSAGE]}


def test_environment_color__not_hex__refused_next_to_the_field(project: Project) -> None:
    # Given project demo
    # When an environment colour that is not #rrggbb is entered
    with pytest.raises(ValidationError) as caught:
        services.environment_create(project=project, key="qa", name="QA", color="red")
    # Then the colour field gives an example
    assert caught.value.message_dict == {"color": ["Use a colour such as #22c55e."]}


# --- Presentation ----------------------------------------------------------------------------


def test_str__each_model__reads_as_people_name_it(
    boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given a flag with a rule on a segment and a condition, in staging
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state,
        serve={
            "split": [{"variant": "on", "weight": 25_000}, {"variant": "off", "weight": 75_000}]
        },
        segments=[beta_testers],
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE", "FR"]}],
        description="Germans and French",
    )
    condition = rule.conditions.get()
    # When they are shown
    # Then each reads as a person would say it
    assert str(boolean_flag) == "new-checkout"
    assert str(staging) == "demo/staging"
    assert str(state) == "new-checkout in staging"
    assert str(rule) == "Germans and French"
    assert rule.serve_display() == "on 25 %, off 75 %"
    assert str(condition) == "country is one of DE, FR"
    assert state.default_serve_display() == "off"
    assert str(beta_testers) == "Beta testers"


def test_variant_clean_fields__null_value__refused_next_to_value(string_flag: Flag) -> None:
    # Given an unsaved variant with a JSON null value (bulk creation checks fields only)
    variant = Variant(flag=string_flag, key="nothing", value=None, order=9)
    # When its fields are checked
    with pytest.raises(ValidationError) as caught:
        variant.clean_fields(exclude=["flag"])
    # Then the value is refused in words (the column would refuse it with an IntegrityError)
    assert caught.value.message_dict == {"value": ["Enter a value (null is not supported)."]}


def test_variant_clean_fields__empty_string__accepted(string_flag: Flag) -> None:
    # Given an unsaved variant of a string flag with the empty string as its value
    variant = Variant(flag=string_flag, key="blank", value="", order=9)
    # When it is fully checked
    variant.full_clean()
    # Then nothing is refused (an empty text is a value like any other)
    assert variant.value == ""
