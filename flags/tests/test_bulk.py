"""flags_bulk_create: many flags at once, validated by the engine, with history, all or nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from flags import documents, services
from flags.models import Environment, Flag, FlagState, Project, Variant
from flags.services import FlagSpec
from flagship_sdk.engine import Ruleset


def versions(project: Project) -> dict[str, int]:
    return dict(project.environments.values_list("key", "ruleset_version"))


def counts() -> tuple[int, ...]:
    return (
        Flag.objects.count(),
        Variant.objects.count(),
        FlagState.objects.count(),
        Flag.history.count(),
        Variant.history.count(),
        FlagState.history.count(),
    )


SPECS = [
    FlagSpec(key="bulk-bool", name="Bulk boolean", enabled=True, default_variant="on"),
    FlagSpec(key="bulk-off", name="Bulk boolean, off"),
    FlagSpec(
        key="bulk-string",
        name="Bulk string",
        kind=Flag.Kind.STRING,
        variants=[("a", "A"), ("b", "B")],
        enabled=True,
        default_variant="b",
    ),
    FlagSpec(key="bulk-number", name="Bulk number", kind=Flag.Kind.NUMBER, variants=[("n", 1.5)]),
    FlagSpec(
        key="bulk-json",
        name="Bulk JSON",
        kind=Flag.Kind.JSON,
        variants=[("cfg", {"limit": 3})],
        lifecycle=Flag.Lifecycle.PERMANENT,
        enabled=True,
    ),
]


def test_flags_bulk_create__valid_specs__flags_variants_and_a_state_per_environment(
    project: Project, production: Environment
) -> None:
    # Given a project with three environments
    # When five flags of every kind are created in bulk
    created = services.flags_bulk_create(project=project, specs=SPECS, actor=None)

    # Then each exists with its variants and one state per environment, as specified
    assert [flag.key for flag in created] == [spec.key for spec in SPECS]
    assert all(flag.pk for flag in created)
    assert Flag.objects.filter(project=project).count() == 5
    assert FlagState.objects.filter(flag__in=created).count() == 15
    assert Variant.objects.filter(flag__in=created).count() == 2 + 2 + 2 + 1 + 1
    state = FlagState.objects.get(flag__key="bulk-string", environment=production)
    assert (state.enabled, state.off_variant.key, state.default_serve) == (
        True,
        "a",
        {"variant": "b"},
    )
    off = FlagState.objects.get(flag__key="bulk-off", environment=production)
    assert (off.enabled, off.off_variant.key, off.default_serve) == (
        False,
        "off",
        {"variant": "off"},
    )
    assert Flag.objects.get(key="bulk-json").lifecycle == Flag.Lifecycle.PERMANENT

    # And SDKs receive them: the environment's ruleset compiles strictly and evaluates them
    ruleset = Ruleset.from_dict(documents.environment_ruleset(production), strict=True)
    assert ruleset.evaluate("bulk-bool", {"targetingKey": "u"}).value is True
    assert ruleset.evaluate("bulk-string", {"targetingKey": "u"}).value == "B"
    assert ruleset.evaluate("bulk-json", {"targetingKey": "u"}).value == {"limit": 3}
    assert ruleset.evaluate("bulk-number", {}).reason == "DISABLED"


def test_flags_bulk_create__written__history_rows_with_the_actor(
    project: Project, editor: User
) -> None:
    # When an editor creates flags in bulk
    created = services.flags_bulk_create(project=project, specs=SPECS[:2], actor=editor)

    # Then every flag, variant and state has one "created" history row naming the editor
    flag_history = Flag.history.filter(id__in=[flag.pk for flag in created])
    assert flag_history.count() == 2
    assert {(row.history_type, row.history_user_id) for row in flag_history} == {("+", editor.pk)}
    assert Variant.history.filter(flag_id__in=[flag.pk for flag in created]).count() == 4
    state_history = FlagState.history.filter(flag_id__in=[flag.pk for flag in created])
    assert state_history.count() == 6
    assert {row.history_user_id for row in state_history} == {editor.pk}


def test_flags_bulk_create__several_batches__each_environment_bumped_once(project: Project) -> None:
    # Given the environments' ruleset versions
    before = versions(project)
    calls: list[int] = []

    # When five flags are written in batches of two
    services.flags_bulk_create(
        project=project, specs=SPECS, actor=None, batch_size=2, progress=calls.append
    )

    # Then every environment moved exactly one version, and progress counted every flag
    assert versions(project) == {key: version + 1 for key, version in before.items()}
    assert calls == [2, 2, 1]


def test_flags_bulk_create__no_specs__nothing_written_nor_bumped(project: Project) -> None:
    before = versions(project)

    assert services.flags_bulk_create(project=project, specs=[], actor=None) == []

    assert versions(project) == before


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            FlagSpec(key="bad", name="Bad", enabled=True, default_variant="maybe"),
            "maybe",
            id="default variant that does not exist",
        ),
        pytest.param(
            FlagSpec(key="bad", name="Bad", kind=Flag.Kind.NUMBER, variants=[("n", "ten")]),
            "bad",
            id="value not of the flag's kind",
        ),
        pytest.param(FlagSpec(key="has space", name="Bad"), "has space", id="key not URL-safe"),
        pytest.param(FlagSpec(key="bad", name=""), "bad", id="no name"),
        pytest.param(
            FlagSpec(key="bad", name="Bad", kind="colour", variants=[("red", "#f00")]),
            "bad",
            id="unknown kind",
        ),
        pytest.param(
            FlagSpec(key="bad", name="Bad", variants=[("yes", True), ("no", False)]),
            "exactly the variants on",
            id="boolean with other variants",
        ),
        pytest.param(
            FlagSpec(key="bad", name="Bad", kind=Flag.Kind.STRING),
            "at least one variant",
            id="no variants",
        ),
        pytest.param(
            FlagSpec(
                key="bad", name="Bad", kind=Flag.Kind.STRING, variants=[("a", "1"), ("a", "2")]
            ),
            "distinct",
            id="duplicate variant keys",
        ),
        pytest.param(
            FlagSpec(key="bad", name="Bad", kind=Flag.Kind.STRING, variants=[("a b", "1")]),
            "bad",
            id="variant key not URL-safe",
        ),
        pytest.param(FlagSpec(key="bulk-bool", name="Again"), "already exists", id="duplicate key"),
    ],
)
def test_flags_bulk_create__one_invalid_spec__nothing_written(
    project: Project, spec: FlagSpec, message: str
) -> None:
    # Given valid specs in earlier batches, and one invalid spec last
    before_counts, before_versions = counts(), versions(project)

    # When they are created in batches of one
    with pytest.raises(ValidationError) as raised:
        services.flags_bulk_create(project=project, specs=[*SPECS, spec], actor=None, batch_size=1)

    # Then the error names the problem, and no batch was kept
    assert message in " ".join(raised.value.messages)
    assert counts() == before_counts
    assert versions(project) == before_versions


def test_flags_bulk_create__key_already_in_the_project__refused(project: Project) -> None:
    # Given a flag created the ordinary way
    services.flag_create(project=project, key="taken", name="Taken")
    before = counts()

    # When a bulk create includes its key
    with pytest.raises(ValidationError, match="already exists"):
        services.flags_bulk_create(
            project=project, specs=[*SPECS, FlagSpec(key="taken", name="Again")], actor=None
        )

    # Then nothing was written
    assert counts() == before
