"""Change requests: proposed, reviewed, applied or refused, as stored, audited and announced."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import roles
from accounts.models import User
from accounts.tests.factories import make_user
from flags import services
from flags.errors import (
    ChangeRequestClosedError,
    ChangeRequestConflictError,
    ChangeRequestRequiredError,
    NotApprovedError,
    PermissionDeniedError,
)
from flags.history import as_of
from flags.history.entries import entries
from flags.history.feed import audit_rows
from flags.models import (
    ChangeEvent,
    ChangeRequest,
    ChangeRequestReview,
    Environment,
    Flag,
    FlagState,
    ScheduledChange,
    Segment,
)
from flags.services.change_requests import conflicts, merge
from flags.services.schedules import StepSpec, run_due

Status = ChangeRequest.Status


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.select_related("environment", "flag").get(
        flag=flag, environment=environment
    )


def _require(environment: Environment, approvals: int, *, self_approval: bool = False) -> None:
    services.environment_update(
        environment=environment,
        actor=None,
        required_approvals=approvals,
        allow_self_approval=self_approval,
    )
    environment.refresh_from_db()


@pytest.fixture
def editor(db: None) -> User:
    return make_user(username="eddie", role=roles.EDITOR)


@pytest.fixture
def manager(db: None) -> User:
    return make_user(username="rita", role=roles.RELEASE_MANAGER)


@pytest.fixture
def second_manager(db: None) -> User:
    return make_user(username="sam", role=roles.RELEASE_MANAGER)


@pytest.fixture
def gated(production: Environment) -> Environment:
    """Production taking change requests: one approval, authors may not approve their own."""
    _require(production, 1)
    return production


def _propose_toggle(flag: Flag, environment: Environment, actor: Any, **kwargs: Any) -> Any:
    with services.proposing(environment=environment, actor=actor, title="Launch", **kwargs) as out:
        services.flag_toggle(state=_state(flag, environment), enabled=True, actor=actor)
    return out.change_request


def _after(event: ChangeEvent) -> dict[str, Any]:
    assert isinstance(event.after, dict)
    return event.after


def _kinds(since: int = 0) -> list[str]:
    return [
        event.kind
        for event in ChangeEvent.objects.order_by("occurred_at")[since:]
        if event.kind.startswith("change_request.")
    ]


def test_direct_change__gated_environment__refused_for_everyone_but_the_system(
    boolean_flag: Flag, gated: Environment, editor: User, manager: User
) -> None:
    # Given production taking change requests
    state = _state(boolean_flag, gated)
    # When an editor or even a release manager switches the flag directly
    for person in (editor, manager):
        with pytest.raises(ChangeRequestRequiredError) as refused:
            services.flag_toggle(state=state, enabled=True, actor=person)
        # Then it is refused with its own code, and nothing changed
        assert refused.value.code == "change_request_required"
    assert not _state(boolean_flag, gated).enabled
    # And the system (commands, migrations) still may
    services.flag_toggle(state=state, enabled=True, actor=None)
    assert _state(boolean_flag, gated).enabled


def test_required_approvals__only_on_a_protected_environment(staging: Environment) -> None:
    with pytest.raises(ValidationError) as refused:
        services.environment_update(environment=staging, actor=None, required_approvals=1)
    assert "required_approvals" in refused.value.message_dict
    staging.refresh_from_db()
    assert staging.required_approvals == 0


def test_propose__stores_the_proposal_and_writes_nothing_to_the_flag(
    string_flag: Flag, gated: Environment, editor: User, beta_testers: Segment
) -> None:
    # Given production untouched, at a known version
    state = _state(string_flag, gated)
    gated.refresh_from_db()
    version, ruleset = state.version, gated.ruleset_version
    events = ChangeEvent.objects.count()
    # When an editor proposes a switch, a rule and a default serve in one change request
    with services.proposing(environment=gated, actor=editor, title="Beta banner") as out:
        services.flag_toggle(state=state, enabled=True, actor=editor)
        services.rule_create(
            state=_state(string_flag, gated),
            serve={"variant": "new"},
            segments=[beta_testers],
            actor=editor,
        )
        services.flag_state_update(
            state=_state(string_flag, gated), actor=editor, default_serve={"variant": "sale"}
        )
    change_request = out.change_request
    # Then the flag in production is exactly as it was: version, switch, rules, ruleset version
    stored = _state(string_flag, gated)
    assert (stored.version, stored.enabled, stored.rules.count()) == (version, False, 0)
    gated.refresh_from_db()
    assert gated.ruleset_version == ruleset
    # And one open change request holds the base and the whole proposed configuration
    assert change_request is not None
    change_request = ChangeRequest.objects.get(pk=change_request.pk)
    assert (change_request.status, change_request.author, change_request.title) == (
        Status.OPEN,
        editor,
        "Beta banner",
    )
    [item] = change_request.proposed_states.all()
    assert item.state == state
    assert item.base_version == version
    proposed = as_of.StateConfig.from_json(item.proposed)
    assert proposed.enabled is True
    assert proposed.default_serve == {"variant": "sale"}
    [rule] = proposed.rules
    assert rule.id is None  # created in the rolled-back savepoint: applying creates it anew
    assert rule.segment_ids == (beta_testers.pk,)
    assert as_of.StateConfig.from_json(item.base) == as_of.current(stored)
    # And the only event is change_request.created (the rolled-back toggle announced nothing)
    new = list(ChangeEvent.objects.order_by("occurred_at")[events:])
    assert [event.kind for event in new] == ["change_request.created"]
    assert new[0].flags == ["banner-text"]
    assert _after(new[0])["status"] == "open"
    assert new[0].actor_name == "eddie"
    # And its history has a row for the creation, by the editor
    assert change_request.history.get().history_user == editor


def test_propose__nothing_changed__no_change_request(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    with services.proposing(environment=gated, actor=editor, title="Off again") as out:
        services.flag_toggle(state=_state(boolean_flag, gated), enabled=False, actor=editor)
    assert out.change_request is None
    assert not ChangeRequest.objects.exists()


def test_propose__invalid_change__refused_and_nothing_stored(
    string_flag: Flag, gated: Environment, editor: User
) -> None:
    with (
        pytest.raises(ValidationError),
        services.proposing(environment=gated, actor=editor, title="Broken"),
    ):
        services.flag_state_update(
            state=_state(string_flag, gated), actor=editor, default_serve={"variant": "nope"}
        )
    assert not ChangeRequest.objects.exists()


def test_propose__a_segment_change__refused(
    string_flag: Flag, gated: Environment, editor: User, beta_testers: Segment
) -> None:
    # A segment serves every environment: a change request holds flag states only
    with (
        pytest.raises(ValidationError) as refused,
        services.proposing(environment=gated, actor=editor, title="Segment"),
    ):
        services.segment_update(segment=beta_testers, actor=editor, name="Beta people")
    assert refused.value.code == "outside_environment"
    assert Segment.objects.get(pk=beta_testers.pk).name == "Beta testers"


def test_propose__ungated_environment__refused(
    boolean_flag: Flag, staging: Environment, editor: User
) -> None:
    with pytest.raises(ValidationError) as refused:
        _propose_toggle(boolean_flag, staging, editor)
    assert refused.value.code == "no_change_requests"


def test_propose__viewer__refused(boolean_flag: Flag, gated: Environment) -> None:
    viewer = make_user(role=roles.VIEWER)
    with pytest.raises(PermissionDeniedError):
        _propose_toggle(boolean_flag, gated, viewer)


def test_apply__approved__restores_the_proposal_audited_and_announced(
    string_flag: Flag, gated: Environment, editor: User, manager: User, beta_testers: Segment
) -> None:
    # Given an editor's proposal: on, with a rule for beta testers
    state = _state(string_flag, gated)
    with services.proposing(environment=gated, actor=editor, title="Beta banner") as out:
        services.flag_toggle(state=state, enabled=True, actor=editor)
        services.rule_create(
            state=_state(string_flag, gated),
            serve={"variant": "new"},
            segments=[beta_testers],
            description="Beta",
            actor=editor,
        )
    change_request = out.change_request
    assert change_request is not None
    events = ChangeEvent.objects.count()
    # When it lacks its approval, applying is refused
    with pytest.raises(NotApprovedError) as refused:
        services.change_request_apply(change_request=change_request, actor=editor)
    assert refused.value.code == "not_approved"
    # When a release manager approves with a comment, and the author applies it
    services.change_request_approve(change_request=change_request, actor=manager, comment="LGTM")
    services.change_request_apply(change_request=change_request, actor=editor)
    # Then production serves the proposal, in one version
    stored = _state(string_flag, gated)
    assert stored.enabled
    assert stored.version == state.version + 1
    [rule] = stored.rules.all()
    assert (rule.description, list(rule.segments.all())) == ("Beta", [beta_testers])
    # And the change request is applied, by the editor, with the manager's review kept
    change_request.refresh_from_db()
    assert (change_request.status, change_request.closed_by) == (Status.APPLIED, editor)
    review = ChangeRequestReview.objects.get(change_request=change_request)
    assert (review.reviewer, review.decision, review.comment) == (manager, "approved", "LGTM")
    # And the state's history says which change request, and who applied it
    text = f"Change request #{change_request.pk}: Beta banner"
    row = stored.history.latest("history_date")
    assert (row.history_user, row.history_change_reason) == (editor, text)
    # And the events: approved, then the targeting change and applied, all with the reason
    new = list(ChangeEvent.objects.order_by("occurred_at")[events:])
    assert [e.kind for e in new] == [
        "change_request.approved",
        "rules.changed",
        "change_request.applied",
    ]
    assert _after(new[0])["comment"] == "LGTM"
    assert _after(new[0])["approvals"] == 1
    assert new[0].actor_name == "rita"
    assert new[1].reason == text
    assert _after(new[2])["status"] == "applied"
    # And the history of the change request has a row per step
    assert change_request.history.count() == 2  # created, applied
    assert review.history.get().history_user == manager
    # And applying again is refused: it is closed
    with pytest.raises(ChangeRequestClosedError):
        services.change_request_apply(change_request=change_request, actor=editor)


def test_approvals__two_required__count_distinct_reviewers(
    boolean_flag: Flag, production: Environment, editor: User, manager: User, second_manager: User
) -> None:
    _require(production, 2)
    change_request = _propose_toggle(boolean_flag, production, editor)
    services.change_request_approve(change_request=change_request, actor=manager)
    # Approving twice still counts one reviewer
    services.change_request_approve(change_request=change_request, actor=manager, comment="again")
    with pytest.raises(NotApprovedError) as refused:
        services.change_request_apply(change_request=change_request, actor=manager)
    assert "1 of the 2" in refused.value.message
    services.change_request_approve(change_request=change_request, actor=second_manager)
    services.change_request_apply(change_request=change_request, actor=manager)
    assert _state(boolean_flag, production).enabled


def test_self_approval__refused_unless_the_environment_allows_it(
    boolean_flag: Flag, production: Environment, manager: User
) -> None:
    # Given a release manager's own proposal where authors may not approve
    _require(production, 1)
    change_request = _propose_toggle(boolean_flag, production, manager)
    # Then they cannot approve it, nor apply it alone
    with pytest.raises(PermissionDeniedError):
        services.change_request_approve(change_request=change_request, actor=manager)
    with pytest.raises(NotApprovedError):
        services.change_request_apply(change_request=change_request, actor=manager)
    # When the environment allows self-approval, their approval counts
    _require(production, 1, self_approval=True)
    services.change_request_approve(change_request=change_request, actor=manager)
    services.change_request_apply(change_request=change_request, actor=manager)
    assert _state(boolean_flag, production).enabled


def test_self_approval__disallowed_later__an_earlier_self_approval_stops_counting(
    boolean_flag: Flag, production: Environment, manager: User
) -> None:
    _require(production, 1, self_approval=True)
    change_request = _propose_toggle(boolean_flag, production, manager)
    services.change_request_approve(change_request=change_request, actor=manager)
    _require(production, 1, self_approval=False)
    change_request.refresh_from_db()
    with pytest.raises(NotApprovedError):
        services.change_request_apply(change_request=change_request, actor=manager)


def test_review__editor__refused(boolean_flag: Flag, gated: Environment, editor: User) -> None:
    other = make_user(role=roles.EDITOR)
    change_request = _propose_toggle(boolean_flag, gated, editor)
    with pytest.raises(PermissionDeniedError):
        services.change_request_approve(change_request=change_request, actor=other)
    with pytest.raises(PermissionDeniedError):
        services.change_request_reject(change_request=change_request, actor=other)
    # Nor may another editor apply it (only the author or a reviewer)
    with pytest.raises(PermissionDeniedError):
        services.change_request_apply(change_request=change_request, actor=other)


def test_reject__closes_it__never_applies(
    boolean_flag: Flag, gated: Environment, editor: User, manager: User, second_manager: User
) -> None:
    change_request = _propose_toggle(boolean_flag, gated, editor)
    since = ChangeEvent.objects.count()
    services.change_request_approve(change_request=change_request, actor=second_manager)
    services.change_request_reject(
        change_request=change_request, actor=manager, comment="Not before the sale"
    )
    change_request.refresh_from_db()
    assert (change_request.status, change_request.closed_by) == (Status.REJECTED, manager)
    with pytest.raises(ChangeRequestClosedError) as refused:
        services.change_request_apply(change_request=change_request, actor=editor)
    assert refused.value.code == "change_request_closed"
    with pytest.raises(ChangeRequestClosedError):
        services.change_request_approve(change_request=change_request, actor=second_manager)
    assert not _state(boolean_flag, gated).enabled
    assert _kinds(since) == ["change_request.approved", "change_request.rejected"]
    rejected = ChangeEvent.objects.get(kind="change_request.rejected")
    assert _after(rejected)["comment"] == "Not before the sale"
    assert rejected.actor_name == "rita"
    review = ChangeRequestReview.objects.get(change_request=change_request, reviewer=manager)
    assert (review.decision, review.comment) == ("rejected", "Not before the sale")


def test_withdraw__author_only(
    boolean_flag: Flag, gated: Environment, editor: User, manager: User
) -> None:
    change_request = _propose_toggle(boolean_flag, gated, editor)
    with pytest.raises(PermissionDeniedError):
        services.change_request_withdraw(change_request=change_request, actor=manager)
    services.change_request_withdraw(change_request=change_request, actor=editor)
    change_request.refresh_from_db()
    assert change_request.status == Status.WITHDRAWN
    assert ChangeEvent.objects.filter(kind="change_request.withdrawn").count() == 1


def test_apply__stale_base__conflict_nothing_written_then_rebase_and_apply(
    string_flag: Flag, gated: Environment, editor: User, manager: User, second_manager: User
) -> None:
    # Given an approved proposal to serve "sale" by default
    state = _state(string_flag, gated)
    with services.proposing(environment=gated, actor=editor, title="Sale") as out:
        services.flag_state_update(state=state, actor=editor, default_serve={"variant": "sale"})
    change_request = out.change_request
    assert change_request is not None
    services.change_request_approve(change_request=change_request, actor=manager)
    # And, meanwhile, the system switched the flag on (the state moved on)
    services.flag_toggle(state=_state(string_flag, gated), enabled=True, actor=None)
    moved = _state(string_flag, gated)
    assert [c.flag for c in conflicts(change_request)] == ["banner-text"]
    # When it is applied
    with pytest.raises(ChangeRequestConflictError) as refused:
        services.change_request_apply(change_request=change_request, actor=editor)
    # Then it is refused as a conflict, and nothing was written
    assert refused.value.code == "change_request_conflict"
    after = _state(string_flag, gated)
    assert (after.version, after.default_serve) == (moved.version, {"variant": "none"})
    change_request.refresh_from_db()
    assert change_request.status == Status.OPEN
    # When the author rebases it
    since = ChangeEvent.objects.count()
    services.change_request_rebase(change_request=change_request, actor=editor)
    # Then its base is the current state, the proposal keeps the switch made meanwhile, and the
    # approval is cleared (the reviewers approved another diff)
    [item] = change_request.proposed_states.all()
    assert item.base_version == moved.version
    proposed = as_of.StateConfig.from_json(item.proposed)
    assert (proposed.enabled, proposed.default_serve) == (True, {"variant": "sale"})
    assert not change_request.reviews.exists()
    rebased = ChangeEvent.objects.order_by("occurred_at")[since:][0]
    assert rebased.kind == "change_request.rebased"
    assert _after(rebased)["overridden"] == {}
    assert _after(rebased)["approvals_cleared"] == 1
    with pytest.raises(NotApprovedError):
        services.change_request_apply(change_request=change_request, actor=editor)
    # When approved again, it applies on top of the change made meanwhile
    services.change_request_approve(change_request=change_request, actor=second_manager)
    services.change_request_apply(change_request=change_request, actor=editor)
    final = _state(string_flag, gated)
    assert (final.enabled, final.default_serve) == (True, {"variant": "sale"})
    assert final.version == moved.version + 1


def test_rebase__up_to_date__refused(boolean_flag: Flag, gated: Environment, editor: User) -> None:
    change_request = _propose_toggle(boolean_flag, gated, editor)
    with pytest.raises(ValidationError) as refused:
        services.change_request_rebase(change_request=change_request, actor=editor)
    assert refused.value.code == "up_to_date"


def test_merge__parts_both_changed__proposal_wins_and_is_reported() -> None:
    def config(**kwargs: Any) -> as_of.StateConfig:
        values: dict[str, Any] = {
            "enabled": False,
            "off_variant_id": 1,
            "default_serve": {"variant": "a"},
            "rules": (),
            "prerequisites": (),
        }
        return as_of.StateConfig(**{**values, **kwargs})

    base = config()
    proposed = config(enabled=True, default_serve={"variant": "b"})
    current = config(default_serve={"variant": "c"}, off_variant_id=2)
    merged, overridden = merge(base, proposed, current)
    assert merged == config(enabled=True, default_serve={"variant": "b"}, off_variant_id=2)
    assert overridden == ["default_serve"]


def test_promotion__into_gated_environment__becomes_a_change_request(
    string_flag: Flag,
    staging: Environment,
    gated: Environment,
    editor: User,
    manager: User,
    beta_testers: Segment,
) -> None:
    # Given staging's targeting
    staged = _state(string_flag, staging)
    services.flag_toggle(state=staged, enabled=True, actor=None)
    services.rule_create(state=staged, serve={"variant": "new"}, segments=[beta_testers])
    # When promoting directly into gated production, it is refused
    with pytest.raises(ChangeRequestRequiredError):
        services.flags_promote(flags=[string_flag], source=staging, target=gated, actor=editor)
    # When the editor proposes the promotion
    change_request = services.promotion_propose(
        flags=[string_flag], source=staging, target=gated, actor=editor
    )
    # Then it is a change request of the promotion kind; production is untouched
    assert change_request is not None
    assert change_request.kind == ChangeRequest.Kind.PROMOTION
    assert change_request.title == "Promote banner-text"
    assert _state(string_flag, gated).rules.count() == 0
    # When approved and applied, production serves staging's rules (the switch stays off)
    services.change_request_approve(change_request=change_request, actor=manager)
    services.change_request_apply(change_request=change_request, actor=manager)
    promoted = _state(string_flag, gated)
    assert not promoted.enabled
    [rule] = promoted.rules.all()
    assert list(rule.segments.all()) == [beta_testers]
    # And promoting again proposes nothing
    assert (
        services.promotion_propose(flags=[string_flag], source=staging, target=gated, actor=editor)
        is None
    )


def test_schedule__gated_environment__needs_an_approved_change_request(
    boolean_flag: Flag, gated: Environment, editor: User, manager: User
) -> None:
    state = _state(boolean_flag, gated)
    now = timezone.now()
    steps = [StepSpec(now + timedelta(hours=1), "enable")]
    # Scheduling directly is refused, even for a release manager
    with pytest.raises(ChangeRequestRequiredError):
        services.schedule_create(state=state, steps=steps, actor=manager)
    # Proposed, it waits for approval: no schedule exists yet
    change_request = services.schedule_propose(
        state=state, steps=steps, actor=editor, note="Launch at ten"
    )
    assert change_request.kind == ChangeRequest.Kind.SCHEDULE
    assert not ScheduledChange.objects.exists()
    # Approved and applied: the schedule exists, by the editor, tied to the change request
    services.change_request_approve(change_request=change_request, actor=manager)
    services.change_request_apply(change_request=change_request, actor=editor)
    schedule = ScheduledChange.objects.get()
    assert (schedule.created_by, schedule.change_request, schedule.note) == (
        editor,
        change_request,
        "Launch at ten",
    )
    # And the worker runs its step as the editor, though editors cannot change production
    assert run_due(now=now + timedelta(hours=1, seconds=1)) == 1
    assert _state(boolean_flag, gated).enabled
    assert schedule.steps.get().status == "done"


def test_schedule__made_before_change_requests__its_step_fails_unapproved(
    boolean_flag: Flag, production: Environment, manager: User
) -> None:
    state = _state(boolean_flag, production)
    now = timezone.now()
    services.schedule_create(
        state=state, steps=[StepSpec(now + timedelta(minutes=5), "enable")], actor=manager
    )
    _require(production, 1)
    run_due(now=now + timedelta(minutes=6))
    step = ScheduledChange.objects.get().steps.get()
    assert step.status == "failed"
    assert "change requests" in step.error
    assert not _state(boolean_flag, production).enabled


def test_audit_feed__every_step_of_a_change_request__in_the_project_and_environment(
    boolean_flag: Flag, gated: Environment, editor: User, manager: User
) -> None:
    # Given a change request proposed, approved with a comment and applied
    change_request = _propose_toggle(boolean_flag, gated, editor)
    services.change_request_approve(change_request=change_request, actor=manager, comment="Go")
    services.change_request_apply(change_request=change_request, actor=manager)
    # When the audit feed of the project, and of production, is read
    for project_id, environment_id in ((gated.project_id, None), (None, gated.pk)):
        found = entries(audit_rows(project_id=project_id, environment_id=environment_id))
        # Then it shows the creation, the review and the application, by whom, where
        mine = [
            (entry.model, entry.kind, entry.username, entry.environment_name)
            for entry in found
            if entry.model.startswith("changerequest")
        ]
        assert mine == [
            ("changerequest", "changed", "rita", "Production"),
            ("changerequestreview", "created", "rita", "Production"),
            ("changerequest", "created", "eddie", "Production"),
        ]
        subjects = {entry.subject for entry in found if entry.model.startswith("change")}
        assert subjects == {
            f"Change request #{change_request.pk} “Launch” in Production",
            f"Review of change request #{change_request.pk} “Launch”",
        }
        # And the flag's own change says which change request it came from
        toggled = next(entry for entry in found if entry.model == "flagstate")
        assert toggled.reason == f"Change request #{change_request.pk}: Launch"
        assert toggled.username == "rita"


def test_export_import__approvals_travel__a_person_cannot_import_into_a_gated_environment(
    boolean_flag: Flag, gated: Environment, manager: User
) -> None:
    # Given an export of the project, with production taking one approval
    document = services.project_export(gated.project)
    [exported] = [e for e in document["environments"] if e["key"] == "production"]
    assert (exported["required_approvals"], exported["allow_self_approval"]) == (1, False)
    # When a release manager imports it with the flag switched on in production
    document["flags"][0]["states"]["production"]["enabled"] = True
    with pytest.raises(ChangeRequestRequiredError):
        services.project_import(document, actor=manager)
    # Then nothing changed: the flag stays off (change requests hold flag states, not imports)
    assert not _state(boolean_flag, gated).enabled
    # And the system (``manage.py import_flags``) imports it, approvals included
    _require(gated, 0)
    services.project_import(document, actor=None)
    gated.refresh_from_db()
    assert gated.required_approvals == 1
    assert _state(boolean_flag, gated).enabled


def test_apply__its_flag_deleted_since__refused_as_gone(
    boolean_flag: Flag, gated: Environment, editor: User, manager: User
) -> None:
    change_request = _propose_toggle(boolean_flag, gated, editor)
    services.change_request_approve(change_request=change_request, actor=manager)
    services.flag_archive(flag=boolean_flag, actor=None)
    services.flag_delete(flag=Flag.objects.get(pk=boolean_flag.pk), actor=None)
    with pytest.raises(ValidationError) as refused:
        services.change_request_apply(change_request=change_request, actor=manager)
    assert refused.value.code == "gone"
    change_request.refresh_from_db()
    assert change_request.status == Status.OPEN
