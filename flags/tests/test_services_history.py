"""Every service records who changed what, and moves exactly the affected environments' ruleset
version; concurrency, protected environments and references refuse a change without writing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from flags import services
from flags.errors import InUseError, PermissionDeniedError, StaleVersionError
from flags.models import (
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

from .footprint import footprint

ON_IN_DE = {"attribute": "country", "operator": "in", "values": ["DE"]}


def _versions(project: Project) -> dict[str, int]:
    """Each environment's ruleset version, by key."""
    return dict(project.environments.values_list("key", "ruleset_version"))


def _grown(before: dict[str, int], project: Project) -> dict[str, int]:
    """How much each environment's version grew since ``before``."""
    return {key: version - before[key] for key, version in _versions(project).items()}


def _state(flag: Flag, environment_key: str) -> FlagState:
    return flag.states.select_related("environment").get(environment__key=environment_key)


def _last_history(model: Any, pk: int) -> Any:
    return model.history.filter(id=pk).order_by("-history_date", "-history_id").first()


# --- Toggle ----------------------------------------------------------------------------------


def test_flag_toggle__editor_in_staging__records_editor_and_bumps_staging_only(
    boolean_flag: Flag, editor: User
) -> None:
    # Given new-checkout, off everywhere
    project = boolean_flag.project
    state = _state(boolean_flag, "staging")
    before = _versions(project)
    # When an editor switches it on in staging
    toggled = services.flag_toggle(state=state, enabled=True, actor=editor)
    # Then it is on there, its state's version grew, the history names the editor,
    # and only staging's ruleset version moved
    assert FlagState.objects.get(pk=state.pk).enabled is True
    assert toggled.version == state.version + 1
    latest = _last_history(FlagState, state.pk)
    assert (latest.history_type, latest.enabled, latest.history_user) == ("~", True, editor)
    assert _grown(before, project) == {"development": 0, "staging": 1, "production": 0}


def test_flag_toggle__already_in_that_position__writes_nothing(
    boolean_flag: Flag, editor: User
) -> None:
    # Given new-checkout, off in staging
    state = _state(boolean_flag, "staging")
    before = footprint()
    # When it is switched off again
    services.flag_toggle(state=state, enabled=False, actor=editor)
    # Then nothing is written: no history row, no version bump
    assert footprint() == before


def test_flag_toggle__stale_expected_version__raises_and_changes_nothing(
    boolean_flag: Flag, editor: User
) -> None:
    # Given a person loaded new-checkout's staging state at version 1, then someone toggled it
    state = _state(boolean_flag, "staging")
    loaded_version = state.version
    services.flag_toggle(state=state, enabled=True, actor=None)
    before = footprint()
    # When the person switches it off, saying they saw version 1
    with pytest.raises(StaleVersionError) as caught:
        services.flag_toggle(
            state=state, enabled=False, actor=editor, expected_version=loaded_version
        )
    # Then the change is refused with the stale_version code, and nothing changed
    assert caught.value.code == "stale_version"
    assert caught.value.message == (
        "Someone changed new-checkout in staging since you loaded it (version 1, now 2); "
        "reload and try again."
    )
    assert footprint() == before
    assert FlagState.objects.get(pk=state.pk).enabled is True


def test_flag_toggle__current_expected_version__succeeds(boolean_flag: Flag, editor: User) -> None:
    # Given new-checkout's staging state at version 1
    state = _state(boolean_flag, "staging")
    # When an editor switches it on, saying they saw version 1
    services.flag_toggle(state=state, enabled=True, actor=editor, expected_version=1)
    # Then it is on, at version 2
    assert FlagState.objects.filter(pk=state.pk).values_list("enabled", "version").get() == (
        True,
        2,
    )


def test_flag_toggle__editor_in_protected_production__permission_denied_and_nothing_written(
    boolean_flag: Flag, editor: User
) -> None:
    # Given new-checkout in protected production
    state = _state(boolean_flag, "production")
    before = footprint()
    # When an editor switches it on
    with pytest.raises(PermissionDeniedError) as caught:
        services.flag_toggle(state=state, enabled=True, actor=editor)
    # Then it is refused in words, and nothing was written
    assert caught.value.code == "permission_denied"
    assert caught.value.message == (
        "Production is protected: only release managers may change flags there."
    )
    assert footprint() == before


def test_flag_toggle__release_manager_in_protected_production__succeeds_with_history(
    boolean_flag: Flag, release_manager: User
) -> None:
    # Given new-checkout in protected production
    project = boolean_flag.project
    state = _state(boolean_flag, "production")
    before = _versions(project)
    # When a release manager switches it on
    services.flag_toggle(state=state, enabled=True, actor=release_manager)
    # Then it is on, recorded as theirs, and production's version moved
    assert FlagState.objects.get(pk=state.pk).enabled is True
    assert _last_history(FlagState, state.pk).history_user == release_manager
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 1}


def test_flag_toggle__system_in_protected_production__succeeds_without_a_user(
    boolean_flag: Flag,
) -> None:
    # Given new-checkout in protected production
    state = _state(boolean_flag, "production")
    # When the system (a command, actor None) switches it on
    services.flag_toggle(state=state, enabled=True, actor=None)
    # Then it is on, and the history row has no user
    assert FlagState.objects.get(pk=state.pk).enabled is True
    latest = _last_history(FlagState, state.pk)
    assert (latest.enabled, latest.history_user) == (True, None)


def test_flag_toggle__administrator_without_release_group__permission_denied(
    boolean_flag: Flag, db: None
) -> None:
    # Given a staff user with no role at all
    from accounts.tests.factories import make_user  # noqa: PLC0415  # only this test needs it

    nobody = make_user(username="nobody")
    # When they switch new-checkout on in production
    # Then it is refused (the permission, not staff status, decides)
    with pytest.raises(PermissionDeniedError):
        services.flag_toggle(state=_state(boolean_flag, "production"), enabled=True, actor=nobody)


# --- Targeting -------------------------------------------------------------------------------


def test_rule_create__editor_in_staging__history_for_rule_and_conditions_and_staging_bumped(
    boolean_flag: Flag, editor: User
) -> None:
    # Given new-checkout in staging
    project = boolean_flag.project
    state = _state(boolean_flag, "staging")
    before = _versions(project)
    # When an editor adds a rule for Germany
    rule = services.rule_create(
        state=state, serve={"variant": "on"}, conditions=[ON_IN_DE], actor=editor
    )
    # Then the rule and its condition are recorded as the editor's, the state's version grew,
    # and only staging moved
    assert list(rule.history.values_list("history_type", "history_user")) == [("+", editor.pk)]
    condition = rule.conditions.get()
    assert list(condition.history.values_list("history_type", "history_user")) == [("+", editor.pk)]
    assert FlagState.objects.get(pk=state.pk).version == state.version + 1
    assert _grown(before, project) == {"development": 0, "staging": 1, "production": 0}


def test_rule_update_and_delete__editor__recorded_and_bump_staging_each_time(
    boolean_flag: Flag, editor: User
) -> None:
    # Given a rule of new-checkout in staging
    project = boolean_flag.project
    rule = services.rule_create(state=_state(boolean_flag, "staging"), serve={"variant": "on"})
    before = _versions(project)
    # When an editor gives it a rollout, then deletes it
    services.rule_update(rule=rule, rollout=25_000, actor=editor)
    services.rule_delete(rule=Rule.objects.get(pk=rule.pk), actor=editor)
    # Then both changes are recorded as the editor's, and staging moved twice
    assert list(
        Rule.history.filter(id=rule.pk)
        .order_by("history_date", "history_id")
        .values_list("history_type", "rollout", "history_user")
    ) == [("+", None, None), ("~", 25_000, editor.pk), ("-", 25_000, editor.pk)]
    assert _grown(before, project) == {"development": 0, "staging": 2, "production": 0}


def test_rule_create__editor_in_protected_production__permission_denied(
    boolean_flag: Flag, editor: User
) -> None:
    # Given new-checkout in protected production
    before = footprint()
    # When an editor adds a rule there
    with pytest.raises(PermissionDeniedError):
        services.rule_create(
            state=_state(boolean_flag, "production"), serve={"variant": "on"}, actor=editor
        )
    # Then nothing was written
    assert footprint() == before


def test_segment_update__conditions_changed__bumps_every_environment_of_its_project_once(
    boolean_flag: Flag, beta_testers: Segment, release_manager: User
) -> None:
    # Given beta-testers used by new-checkout's rules in staging and production (not development)
    project = boolean_flag.project
    for environment_key in ("staging", "production"):
        services.rule_create(
            state=_state(boolean_flag, environment_key),
            serve={"variant": "on"},
            segments=[beta_testers],
        )
    before = _versions(project)
    # When a release manager changes the segment's conditions
    services.segment_update(
        segment=beta_testers,
        actor=release_manager,
        conditions=[{"attribute": "email", "operator": "str_ends_with", "values": ["@corp.com"]}],
    )
    # Then every environment moved once: each document lists the project's segments, used there
    # (staging, production) or not (development); and the new condition is theirs
    assert _grown(before, project) == {"development": 1, "staging": 1, "production": 1}
    condition = beta_testers.conditions.get()
    assert _last_history(type(condition), condition.pk).history_user == release_manager


def test_segment_update__used_in_production_by_editor__permission_denied(
    boolean_flag: Flag, beta_testers: Segment, editor: User
) -> None:
    # Given beta-testers used by a rule in protected production
    services.rule_create(
        state=_state(boolean_flag, "production"), serve={"variant": "on"}, segments=[beta_testers]
    )
    before = footprint()
    # When an editor changes its conditions (which would change production)
    with pytest.raises(PermissionDeniedError):
        services.segment_update(
            segment=beta_testers,
            actor=editor,
            conditions=[{"attribute": "plan", "operator": "in", "values": ["pro"]}],
        )
    # Then nothing was written
    assert footprint() == before


def test_segment_update__renamed_only__bumps_nothing(
    boolean_flag: Flag, beta_testers: Segment, editor: User
) -> None:
    # Given beta-testers used in staging
    project = boolean_flag.project
    services.rule_create(
        state=_state(boolean_flag, "staging"), serve={"variant": "on"}, segments=[beta_testers]
    )
    before = _versions(project)
    # When an editor renames it
    services.segment_update(segment=beta_testers, actor=editor, name="Beta people")
    # Then the name changed with the editor's history row, and no ruleset moved
    assert _last_history(Segment, beta_testers.pk).history_user == editor
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 0}


def test_condition_save__rule_condition_by_editor__bumps_its_environment(
    boolean_flag: Flag, editor: User
) -> None:
    # Given a rule for Germany in staging
    project = boolean_flag.project
    rule = services.rule_create(
        state=_state(boolean_flag, "staging"), serve={"variant": "on"}, conditions=[ON_IN_DE]
    )
    before = _versions(project)
    condition = rule.conditions.get()
    # When an editor widens it to France through the admin's inline form
    condition.values = ["DE", "FR"]
    services.condition_save(condition=condition, actor=editor)
    # Then staging moved, recorded as the editor's
    assert _grown(before, project) == {"development": 0, "staging": 1, "production": 0}
    assert _last_history(type(condition), condition.pk).history_user == editor


def test_prerequisite_add__staging__bumps_staging_only(
    boolean_flag: Flag, string_flag: Flag, editor: User
) -> None:
    # Given new-checkout and banner-text
    project = boolean_flag.project
    before = _versions(project)
    # When an editor makes banner-text a prerequisite of new-checkout in staging
    prerequisite = services.prerequisite_add(
        state=_state(boolean_flag, "staging"), parent=string_flag, actor=editor
    )
    # Then staging moved, recorded as the editor's
    assert _grown(before, project) == {"development": 0, "staging": 1, "production": 0}
    assert _last_history(type(prerequisite), prerequisite.pk).history_user == editor


# --- Flags and variants ----------------------------------------------------------------------


def test_flag_create__editor__bumps_every_environment_with_history(
    project: Project, editor: User
) -> None:
    # Given project demo
    before = _versions(project)
    # When an editor creates a flag
    flag = services.flag_create(project=project, key="new-checkout", name="N", actor=editor)
    # Then every environment moved (the flag appears in every ruleset), recorded as theirs
    assert _grown(before, project) == {"development": 1, "staging": 1, "production": 1}
    assert _last_history(Flag, flag.pk).history_user == editor
    assert set(
        FlagState.history.filter(flag_id=flag.pk).values_list("history_user", flat=True)
    ) == {editor.pk}


def test_flag_update__salt_changed__bumps_every_environment(
    boolean_flag: Flag, release_manager: User
) -> None:
    # Given new-checkout
    project = boolean_flag.project
    before = _versions(project)
    # When a release manager changes its salt (reshuffling every rollout)
    services.flag_update(flag=boolean_flag, actor=release_manager, salt="reshuffle-1")
    # Then every environment moved, recorded as theirs
    assert _grown(before, project) == {"development": 1, "staging": 1, "production": 1}
    latest = _last_history(Flag, boolean_flag.pk)
    assert (latest.salt, latest.history_user) == ("reshuffle-1", release_manager)


def test_flag_update__description_changed__bumps_nothing(boolean_flag: Flag, editor: User) -> None:
    # Given new-checkout
    project = boolean_flag.project
    before = _versions(project)
    # When an editor changes its description
    services.flag_update(flag=boolean_flag, actor=editor, description="The one-page checkout.")
    # Then no ruleset moved, and the change is recorded as the editor's
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 0}
    latest = _last_history(Flag, boolean_flag.pk)
    assert (latest.description, latest.history_user) == ("The one-page checkout.", editor)


def test_flag_update__salt_changed_by_editor__permission_denied(
    boolean_flag: Flag, editor: User
) -> None:
    # Given new-checkout, which has a state in protected production
    before = footprint()
    # When an editor changes its salt (which reshuffles production's rollouts too)
    with pytest.raises(PermissionDeniedError):
        services.flag_update(flag=boolean_flag, actor=editor, salt="reshuffle-1")
    # Then nothing was written
    assert footprint() == before


def test_flag_update__key_or_kind__refused(boolean_flag: Flag, editor: User) -> None:
    # Given new-checkout
    # When someone tries to change its key and kind
    with pytest.raises(ValidationError) as caught:
        services.flag_update(flag=boolean_flag, actor=editor, key="other", kind="string")
    # Then it is refused, naming both
    assert caught.value.messages == ["These fields cannot be changed: key, kind."]
    assert Flag.objects.filter(key="new-checkout").exists()


def test_variant_update__value_changed__bumps_every_environment(
    string_flag: Flag, release_manager: User
) -> None:
    # Given banner-text with variant "sale"
    project = string_flag.project
    sale = string_flag.variants.get(key="sale")
    before = _versions(project)
    # When a release manager changes the text of "sale"
    services.variant_update(variant=sale, value="Spring sale!", actor=release_manager)
    # Then every environment moved, recorded as theirs
    assert _grown(before, project) == {"development": 1, "staging": 1, "production": 1}
    latest = _last_history(Variant, sale.pk)
    assert (latest.value, latest.history_user) == ("Spring sale!", release_manager)


def test_variant_update__name_only__bumps_nothing(string_flag: Flag, editor: User) -> None:
    # Given banner-text with variant "sale"
    project = string_flag.project
    sale = string_flag.variants.get(key="sale")
    before = _versions(project)
    # When an editor renames the variant (a label for people)
    services.variant_update(variant=sale, name="Sale banner", actor=editor)
    # Then no ruleset moved
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 0}
    assert _last_history(Variant, sale.pk).history_user == editor


def test_variant_update__integer_to_equal_float__saved_as_a_change(
    project: Project, release_manager: User
) -> None:
    # Given a number flag whose variant "one" is 1
    flag = services.flag_create(
        project=project, key="ratio", name="Ratio", kind=Flag.Kind.NUMBER, variants=[("one", 1)]
    )
    one = flag.variants.get()
    before = _versions(project)
    # When it becomes 1.0 (equal in Python, a different JSON value for SDKs)
    services.variant_update(variant=one, value=1.0, actor=release_manager)
    # Then the float is stored and every ruleset moved
    stored = Variant.objects.get(pk=one.pk).value
    assert (stored, type(stored)) == (1.0, float)
    assert _grown(before, project) == {"development": 1, "staging": 1, "production": 1}


def test_variant_update__value_changed_by_editor__permission_denied(
    string_flag: Flag, editor: User
) -> None:
    # Given banner-text, whose "sale" production could serve
    sale = string_flag.variants.get(key="sale")
    before = footprint()
    # When an editor changes the value (which changes what production serves)
    with pytest.raises(PermissionDeniedError):
        services.variant_update(variant=sale, value="Everything free!", actor=editor)
    # Then nothing was written
    assert footprint() == before


# --- Archive and delete: refused while in use ------------------------------------------------


def test_flag_archive__prerequisite_of_another_flag__in_use_and_nothing_written(
    boolean_flag: Flag, string_flag: Flag, release_manager: User
) -> None:
    # Given new-checkout requires banner-text in staging
    services.prerequisite_add(state=_state(boolean_flag, "staging"), parent=string_flag, actor=None)
    before = footprint()
    # When banner-text is archived
    with pytest.raises(InUseError) as caught:
        services.flag_archive(flag=string_flag, actor=release_manager)
    # Then it is refused, naming the dependent flag, and nothing was written
    assert caught.value.code == "in_use"
    assert caught.value.message == (
        "banner-text is a prerequisite of new-checkout; remove that first."
    )
    assert footprint() == before


def test_flag_archive__dependent_archived_first__succeeds_and_bumps_everywhere(
    boolean_flag: Flag, string_flag: Flag, release_manager: User
) -> None:
    # Given new-checkout requires banner-text, and new-checkout is archived
    project = boolean_flag.project
    services.prerequisite_add(state=_state(boolean_flag, "staging"), parent=string_flag, actor=None)
    services.flag_archive(flag=boolean_flag, actor=release_manager)
    before = _versions(project)
    # When banner-text is archived
    services.flag_archive(flag=string_flag, actor=release_manager)
    # Then it is archived, recorded, and every ruleset moved
    assert Flag.objects.get(pk=string_flag.pk).archived is True
    assert _last_history(Flag, string_flag.pk).history_user == release_manager
    assert _grown(before, project) == {"development": 1, "staging": 1, "production": 1}


def test_flag_archive__editor__permission_denied(boolean_flag: Flag, editor: User) -> None:
    # Given new-checkout, which has a state in protected production
    before = footprint()
    # When an editor archives it (production's SDKs would stop receiving it)
    with pytest.raises(PermissionDeniedError):
        services.flag_archive(flag=boolean_flag, actor=editor)
    # Then nothing was written
    assert footprint() == before


def test_flag_unarchive__release_manager__back_with_its_states(
    boolean_flag: Flag, release_manager: User
) -> None:
    # Given new-checkout, on in staging, then archived
    services.flag_toggle(state=_state(boolean_flag, "staging"), enabled=True, actor=None)
    services.flag_archive(flag=boolean_flag, actor=None)
    # When a release manager brings it back
    services.flag_unarchive(flag=boolean_flag, actor=release_manager)
    # Then it is live again, still on in staging
    assert Flag.objects.get(pk=boolean_flag.pk).archived is False
    assert _state(boolean_flag, "staging").enabled is True


def test_flag_delete__archived__gone_with_its_states_recorded_and_no_version_moves(
    boolean_flag: Flag, release_manager: User
) -> None:
    # Given new-checkout, archived (SDKs no longer receive it)
    project = boolean_flag.project
    services.flag_archive(flag=boolean_flag, actor=None)
    before = _versions(project)
    pk = boolean_flag.pk
    # When a release manager deletes it
    services.flag_delete(flag=boolean_flag, actor=release_manager)
    # Then it is gone with its states and variants, each deletion recorded as theirs, and no
    # ruleset moved: the flag was in none
    assert not Flag.objects.filter(pk=pk).exists()
    assert not FlagState.objects.filter(flag_id=pk).exists()
    assert not Variant.objects.filter(flag_id=pk).exists()
    latest = _last_history(Flag, pk)
    assert (latest.history_type, latest.history_user) == ("-", release_manager)
    deleted_parts = [
        *FlagState.history.filter(flag_id=pk, history_type="-"),
        *Variant.history.filter(flag_id=pk, history_type="-"),
    ]
    assert [row.history_user for row in deleted_parts] == [release_manager] * 5
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 0}


def test_flag_delete__live__in_use_and_nothing_written(
    boolean_flag: Flag, release_manager: User
) -> None:
    # Given new-checkout, live (SDKs receive it)
    before = footprint()
    # When a release manager deletes it
    with pytest.raises(InUseError) as caught:
        services.flag_delete(flag=boolean_flag, actor=release_manager)
    # Then it is refused, saying to archive it first, and nothing was written
    assert caught.value.message == (
        "new-checkout is live: archive it first, so that SDKs stop receiving it."
    )
    assert footprint() == before


def test_flag_delete__editor__permission_denied(boolean_flag: Flag, editor: User) -> None:
    # Given new-checkout, archived, with a state in protected production
    services.flag_archive(flag=boolean_flag, actor=None)
    before = footprint()
    # When an editor deletes it
    with pytest.raises(PermissionDeniedError) as caught:
        services.flag_delete(flag=boolean_flag, actor=editor)
    # Then it is refused as archiving it would be, and nothing was written
    assert caught.value.message == (
        "Production is protected: only release managers may change flags there."
    )
    assert footprint() == before


def test_flag_delete__prerequisite_of_a_live_flag__in_use_and_nothing_written(
    boolean_flag: Flag, string_flag: Flag, release_manager: User
) -> None:
    # Given banner-text archived while new-checkout, live, came to require it in staging (what an
    # archive racing prerequisite_add can leave; the services refuse to make it one at a time)
    services.flag_archive(flag=string_flag, actor=None)
    Prerequisite.objects.create(state=_state(boolean_flag, "staging"), flag=string_flag)
    before = footprint()
    # When banner-text is deleted (the prerequisite would go with it, unannounced)
    with pytest.raises(InUseError) as caught:
        services.flag_delete(flag=string_flag, actor=release_manager)
    # Then it is refused, naming the dependent flag, and nothing was written
    assert caught.value.message == (
        "banner-text is a prerequisite of new-checkout; remove that first."
    )
    assert footprint() == before


def test_segment_delete__used_by_a_rule__in_use_and_nothing_written(
    boolean_flag: Flag, beta_testers: Segment, editor: User
) -> None:
    # Given beta-testers used by a rule in staging
    services.rule_create(
        state=_state(boolean_flag, "staging"), serve={"variant": "on"}, segments=[beta_testers]
    )
    before = footprint()
    # When an editor deletes it
    with pytest.raises(InUseError) as caught:
        services.segment_delete(segment=beta_testers, actor=editor)
    # Then it is refused, naming where it is used, and nothing was written
    assert caught.value.message == (
        "Segment beta-testers is used by new-checkout in staging; remove it there first."
    )
    assert footprint() == before


def test_segment_delete__unused__deleted_with_history(beta_testers: Segment, editor: User) -> None:
    # Given beta-testers, used by no rule
    pk = beta_testers.pk
    # When an editor deletes it
    services.segment_delete(segment=beta_testers, actor=editor)
    # Then it is gone, and the deletion is recorded as the editor's
    assert not Segment.objects.filter(pk=pk).exists()
    latest = _last_history(Segment, pk)
    assert (latest.history_type, latest.history_user) == ("-", editor)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        pytest.param(
            lambda flag, state: services.rule_create(state=state, serve={"variant": "sale"}),
            "sale is served in demo/staging; change that first.",
            id="rule serve",
        ),
        pytest.param(
            lambda flag, state: services.flag_state_update(
                state=state,
                actor=None,
                default_serve={
                    "split": [
                        {"variant": "none", "weight": 50_000},
                        {"variant": "sale", "weight": 50_000},
                    ]
                },
            ),
            "sale is served in demo/staging; change that first.",
            id="default split",
        ),
        pytest.param(
            lambda flag, state: services.flag_state_update(
                state=state, actor=None, off_variant=flag.variants.get(key="sale")
            ),
            "sale is served in demo/staging; change that first.",
            id="off variant",
        ),
        pytest.param(
            lambda flag, state: services.prerequisite_add(
                state=FlagState.objects.get(
                    flag__key="new-checkout", environment=state.environment
                ),
                parent=flag,
                variants=["sale"],
                actor=None,
            ),
            "sale is named by a prerequisite of new-checkout.",
            id="prerequisite",
        ),
    ],
)
def test_variant_delete__still_used__in_use_and_nothing_written(
    string_flag: Flag,
    boolean_flag: Flag,
    editor: User,
    setup: Callable[[Flag, FlagState], object],
    expected: str,
) -> None:
    # Given banner-text's "sale" served, fallen back on, or required somewhere in staging
    setup(string_flag, _state(string_flag, "staging"))
    before = footprint()
    # When an editor deletes "sale"
    with pytest.raises(InUseError) as caught:
        services.variant_delete(variant=string_flag.variants.get(key="sale"), actor=editor)
    # Then it is refused, saying where it is used, and nothing was written
    assert caught.value.message == expected
    assert footprint() == before


def test_variant_delete__unused__deleted_with_history(string_flag: Flag, editor: User) -> None:
    # Given banner-text's "sale", used nowhere
    sale = string_flag.variants.get(key="sale")
    pk = sale.pk
    # When an editor deletes it
    services.variant_delete(variant=sale, actor=editor)
    # Then it is gone, recorded as theirs
    assert list(string_flag.variants.values_list("key", flat=True)) == ["none", "new"]
    latest = _last_history(Variant, pk)
    assert (latest.history_type, latest.history_user) == ("-", editor)


def test_variant_delete__boolean_flag__in_use(boolean_flag: Flag, editor: User) -> None:
    # Given boolean new-checkout
    # When its "on" variant is deleted
    with pytest.raises(InUseError) as caught:
        services.variant_delete(variant=boolean_flag.variants.get(key="on"), actor=editor)
    # Then it is refused
    assert caught.value.message == "The variants of a boolean flag cannot be removed."


# --- Tags ------------------------------------------------------------------------------------


def test_tag_update__renamed_and_recoloured__recorded_and_no_version_moves(
    project: Project, editor: User
) -> None:
    # Given tag checkout
    tag = services.tag_create(name="checkout")
    before = _versions(project)
    # When an editor renames and recolours it
    services.tag_update(tag=tag, actor=editor, name="Checkout", color="#22C55E")
    # Then the row holds the new name and colour (in lower case), the change is recorded as
    # theirs, and no ruleset moved (tags are for people)
    stored = Tag.objects.get(pk=tag.pk)
    assert (stored.name, stored.color) == ("Checkout", "#22c55e")
    latest = _last_history(Tag, tag.pk)
    assert (latest.history_type, latest.name, latest.history_user) == ("~", "Checkout", editor)
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 0}


def test_tag_update__unchanged__writes_nothing(project: Project, editor: User) -> None:
    # Given tag checkout
    tag = services.tag_create(name="checkout")
    before = footprint()
    # When it is saved with the name it has
    services.tag_update(tag=tag, actor=editor, name="checkout")
    # Then nothing is written
    assert footprint() == before


def test_tag_update__name_of_another_tag_in_other_case__refused_next_to_name(
    project: Project, editor: User
) -> None:
    # Given tags checkout and growth
    services.tag_create(name="checkout")
    growth = services.tag_create(name="growth")
    # When growth is renamed Checkout
    with pytest.raises(ValidationError) as caught:
        services.tag_update(tag=growth, actor=editor, name="Checkout")
    # Then it is refused next to the name, and growth keeps its name
    assert caught.value.message_dict == {
        "name": ["A tag Checkout already exists (tag names ignore case)."]
    }
    assert Tag.objects.get(pk=growth.pk).name == "growth"


def test_tag_delete__carried_by_a_flag__gone_recorded_and_no_version_moves(
    boolean_flag: Flag, editor: User
) -> None:
    # Given new-checkout tagged checkout
    project = boolean_flag.project
    tag = services.tag_create(name="checkout")
    services.flag_update(flag=boolean_flag, actor=None, tags=[tag])
    before = _versions(project)
    pk = tag.pk
    # When an editor deletes the tag
    services.tag_delete(tag=tag, actor=editor)
    # Then it is gone, the flag no longer carries it, the deletion is recorded as theirs, and no
    # ruleset moved
    assert not Tag.objects.filter(pk=pk).exists()
    assert list(Flag.objects.get(pk=boolean_flag.pk).tags.all()) == []
    latest = _last_history(Tag, pk)
    assert (latest.history_type, latest.history_user) == ("-", editor)
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 0}


# --- Environments ----------------------------------------------------------------------------


def test_environment_create__new_environment__bumps_only_itself(
    boolean_flag: Flag, administrator: User
) -> None:
    # Given project demo with a flag
    project = boolean_flag.project
    before = _versions(project)
    # When an administrator adds environment qa
    services.environment_create(project=project, key="qa", name="QA", actor=administrator)
    # Then qa starts at version 1 and the others did not move
    after = _versions(project)
    assert after == {**before, "qa": 1}
    assert _last_history(Environment, project.environments.get(key="qa").pk).history_user == (
        administrator
    )


def test_environment_and_project_update__renamed__recorded_and_bump_nothing(
    project: Project, administrator: User
) -> None:
    # Given project demo
    before = _versions(project)
    staging = project.environments.get(key="staging")
    # When an administrator renames the project and recolours staging
    services.project_update(project=project, actor=administrator, name="Demo shop")
    services.environment_update(environment=staging, actor=administrator, color="#123456")
    # Then both are recorded as theirs, and no ruleset moved (names are for people)
    assert _last_history(Project, project.pk).history_user == administrator
    latest = _last_history(Environment, staging.pk)
    assert (latest.color, latest.history_user) == ("#123456", administrator)
    assert _grown(before, project) == {"development": 0, "staging": 0, "production": 0}


# --- Targeting housekeeping ------------------------------------------------------------------


def test_rules_reorder__editor__new_order_recorded_and_staging_bumped(
    boolean_flag: Flag, editor: User
) -> None:
    # Given two rules of new-checkout in staging
    project = boolean_flag.project
    state = _state(boolean_flag, "staging")
    first = services.rule_create(state=state, serve={"variant": "on"}, conditions=[ON_IN_DE])
    second = services.rule_create(state=state, serve={"variant": "off"})
    before = _versions(project)
    # When an editor puts the second first
    services.rules_reorder(state=state, rule_ids=[second.pk, first.pk], actor=editor)
    # Then the order is stored, recorded as theirs, and staging moved once
    assert list(state.rules.order_by("order").values_list("pk", flat=True)) == [
        second.pk,
        first.pk,
    ]
    assert _last_history(Rule, second.pk).history_user == editor
    assert _grown(before, project) == {"development": 0, "staging": 1, "production": 0}


def test_rules_reorder__missing_a_rule__refused_and_nothing_written(
    boolean_flag: Flag, editor: User
) -> None:
    # Given two rules of new-checkout in staging
    state = _state(boolean_flag, "staging")
    first = services.rule_create(state=state, serve={"variant": "on"})
    services.rule_create(state=state, serve={"variant": "off"})
    before = footprint()
    # When an editor reorders naming only one of them
    with pytest.raises(ValidationError) as caught:
        services.rules_reorder(state=state, rule_ids=[first.pk], actor=editor)
    # Then it is refused, and nothing was written
    assert caught.value.messages == ["Give every rule of this flag exactly once."]
    assert footprint() == before


def test_prerequisite_remove__editor__recorded_and_staging_bumped(
    boolean_flag: Flag, string_flag: Flag, editor: User
) -> None:
    # Given new-checkout requires banner-text in staging
    project = boolean_flag.project
    prerequisite = services.prerequisite_add(
        state=_state(boolean_flag, "staging"), parent=string_flag, actor=None
    )
    pk = prerequisite.pk
    before = _versions(project)
    # When an editor removes it
    services.prerequisite_remove(prerequisite=prerequisite, actor=editor)
    # Then it is gone, the deletion is theirs, and staging moved
    latest = _last_history(type(prerequisite), pk)
    assert (latest.history_type, latest.history_user) == ("-", editor)
    assert _grown(before, project) == {"development": 0, "staging": 1, "production": 0}


def test_condition_delete__segment_condition_used_in_production__release_manager_bumps_it(
    boolean_flag: Flag, beta_testers: Segment, release_manager: User, editor: User
) -> None:
    # Given beta-testers (one condition) used by a rule in production
    project = boolean_flag.project
    services.rule_create(
        state=_state(boolean_flag, "production"), serve={"variant": "on"}, segments=[beta_testers]
    )
    condition = beta_testers.conditions.get()
    before = _versions(project)
    # When an editor tries to delete the condition, then a release manager does
    with pytest.raises(PermissionDeniedError):
        services.condition_delete(condition=condition, actor=editor)
    services.condition_delete(condition=condition, actor=release_manager)
    # Then only the release manager's deletion happened, and every environment moved once (each
    # document lists the project's segments)
    assert not beta_testers.conditions.exists()
    assert _grown(before, project) == {"development": 1, "staging": 1, "production": 1}


def test_flag_state_update__default_serve_by_editor__recorded_and_staging_bumped(
    string_flag: Flag, editor: User
) -> None:
    # Given banner-text in staging, serving "none" by default
    project = string_flag.project
    state = _state(string_flag, "staging")
    before = _versions(project)
    # When an editor makes it serve "sale" by default
    services.flag_state_update(state=state, default_serve={"variant": "sale"}, actor=editor)
    # Then the state is recorded as theirs at the next version, and staging moved
    latest = _last_history(FlagState, state.pk)
    assert (latest.default_serve, latest.version, latest.history_user) == (
        {"variant": "sale"},
        state.version + 1,
        editor,
    )
    assert _grown(before, project) == {"development": 0, "staging": 1, "production": 0}
