"""Change requests through the management API: writes into a gated environment, then review.

Each test reads the database after the calls: what the client is told must be what is stored.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from accounts import roles
from accounts.models import User
from accounts.tests.factories import PASSWORD, make_user
from flags import services
from flags.models import (
    ChangeRequest,
    ChangeRequestReview,
    Environment,
    Flag,
    FlagState,
    ScheduledChange,
    Segment,
)

PROJECT = "/api/v1/projects/demo"
STATE = f"{PROJECT}/flags/new-checkout/environments/production/"
BANNER = f"{PROJECT}/flags/banner-text/environments/production/"
LIST = f"{PROJECT}/change-requests/"
Status = ChangeRequest.Status


def signed_in(user: User) -> APIClient:
    """A client with ``user``'s session."""
    client = APIClient()
    client.login(username=user.username, password=PASSWORD)
    return client


def state_of(flag: Flag, environment: Environment) -> FlagState:
    """The stored state of ``flag`` in ``environment``."""
    return FlagState.objects.get(flag=flag, environment=environment)


def require(environment: Environment, approvals: int, *, self_approval: bool = False) -> None:
    """Make ``environment`` take change requests needing ``approvals``."""
    services.environment_update(
        environment=environment,
        actor=None,
        required_approvals=approvals,
        allow_self_approval=self_approval,
    )
    environment.refresh_from_db()


def url(change_request_id: int, action: str = "") -> str:
    """The change request's URL (or one of its actions')."""
    return f"{LIST}{change_request_id}/" + (f"{action}/" if action else "")


@pytest.fixture
def gated(production: Environment) -> Environment:
    """Production taking change requests: one approval; authors may not approve their own."""
    require(production, 1)
    return production


@pytest.fixture
def second_manager(db: None) -> User:
    """Another release manager (a second reviewer)."""
    return make_user(username="sam", role=roles.RELEASE_MANAGER)


def propose_toggle(client: APIClient, **body: Any) -> dict[str, Any]:
    """Switch new-checkout on in production as ``client``: the change request's body."""
    response = client.post(f"{STATE}toggle/", {"enabled": True, **body}, format="json")
    assert response.status_code == 202, response.content
    result: dict[str, Any] = response.json()
    return result


def test_patch__gated_production__202_change_request_stored_state_unchanged(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    # Given production taking change requests, the flag off at version 1
    before = state_of(boolean_flag, gated)
    # When an editor patches it, with a title and a description
    response = signed_in(editor).patch(
        STATE,
        {
            "enabled": True,
            "change_request": {"title": "Launch checkout", "description": "FS-12"},
        },
        format="json",
        HTTP_IF_MATCH=f'"{before.version}"',
    )
    # Then 202 with the change request, and where it lives
    assert response.status_code == 202, response.content
    body = response.json()
    change_request = ChangeRequest.objects.get()
    assert response["Location"] == url(change_request.pk)
    assert (body["id"], body["status"], body["kind"], body["title"]) == (
        change_request.pk,
        "open",
        "state",
        "Launch checkout",
    )
    assert (body["author"], body["environment"], body["flags"]) == (
        "editor",
        "production",
        ["new-checkout"],
    )
    assert (body["approvals"], body["required_approvals"], body["conflicts"]) == (0, 1, [])
    [item] = body["items"]
    assert (item["flag"], item["base_version"], item["version"], item["conflict"]) == (
        "new-checkout",
        1,
        1,
        False,
    )
    assert (item["base"]["enabled"], item["proposed"]["enabled"], item["now"]) == (
        False,
        True,
        None,
    )
    # And it is stored as told, authored by the editor
    assert (change_request.title, change_request.description, change_request.author) == (
        "Launch checkout",
        "FS-12",
        editor,
    )
    assert change_request.status == Status.OPEN
    assert change_request.proposed_states.get().base_version == 1
    # And the flag in production is unchanged
    after = state_of(boolean_flag, gated)
    assert (after.enabled, after.version) == (False, before.version)


def test_patch__gated_production__stale_if_match_is_still_412_and_nothing_stored(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    # When an editor patches with an ETag that is not the state's
    response = signed_in(editor).patch(STATE, {"enabled": True}, format="json", HTTP_IF_MATCH='"7"')
    # Then 412 as for a direct write, and no change request
    assert response.status_code == 412
    assert response.json()["code"] == "stale_version"
    assert not ChangeRequest.objects.exists()


def test_put__gated_production__invalid_body_400_and_nothing_stored(
    string_flag: Flag, gated: Environment, editor: User
) -> None:
    # When an editor proposes a default serve of a variant the flag does not have
    response = signed_in(editor).put(
        BANNER,
        {"enabled": True, "off_variant": "none", "default_serve": {"variant": "nope"}},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    # Then it is refused as the direct write would be, and nothing is stored
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert not ChangeRequest.objects.exists()


def test_toggle__gated_production__202_change_request_default_title(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    # When an editor switches the flag on in production, with no title
    body = propose_toggle(signed_in(editor))
    # Then the change request has the default title and the flag is still off
    change_request = ChangeRequest.objects.get(pk=body["id"])
    assert change_request.title == "Change new-checkout"
    assert body["title"] == "Change new-checkout"
    assert not state_of(boolean_flag, gated).enabled


def test_toggle__gated_production__nothing_changed__200_state_no_change_request(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    # When an editor switches the flag off where it is off already
    response = signed_in(editor).post(f"{STATE}toggle/", {"enabled": False}, format="json")
    # Then 200 with the state, as today, and no change request
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is False
    assert response["ETag"] == '"1"'
    assert not ChangeRequest.objects.exists()


def test_toggle__ungated_staging__change_request_text_ignored_written_directly(
    boolean_flag: Flag, staging: Environment, editor: User
) -> None:
    # When an editor toggles in staging (no change requests there), with a title
    response = signed_in(editor).post(
        f"{PROJECT}/flags/new-checkout/environments/staging/toggle/",
        {"enabled": True, "change_request": {"title": "Ignored"}},
        format="json",
    )
    # Then it is written directly
    assert response.status_code == 200, response.content
    assert state_of(boolean_flag, staging).enabled
    assert not ChangeRequest.objects.exists()


def test_change_request_text__unknown_field__400(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    response = signed_in(editor).post(
        f"{STATE}toggle/",
        {"enabled": True, "change_request": {"titel": "Typo"}},
        format="json",
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("change_request.titel", "unknown_field")
    assert not ChangeRequest.objects.exists()


def test_approve_then_apply__state_changes_etag_moves(
    boolean_flag: Flag, gated: Environment, editor: User, release_manager: User
) -> None:
    # Given an editor's proposal to switch the flag on
    author = signed_in(editor)
    proposed = propose_toggle(author)
    before = author.get(STATE)
    assert before["ETag"] == '"1"'
    # When a release manager approves it with a comment
    approved = signed_in(release_manager).post(
        url(proposed["id"], "approve"), {"comment": "Go"}, format="json"
    )
    # Then 200 with the review shown, and it is stored
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["approvals"] == 1
    [review] = body["reviews"]
    assert (review["reviewer"], review["decision"], review["comment"]) == (
        "release",
        "approved",
        "Go",
    )
    stored = ChangeRequestReview.objects.get()
    assert (stored.reviewer, stored.decision, stored.comment) == (release_manager, "approved", "Go")
    # When the editor applies it
    applied = author.post(url(proposed["id"], "apply"))
    # Then it is applied, and production serves it with a new version
    assert applied.status_code == 200, applied.content
    assert (applied.json()["status"], applied.json()["closed_by"]) == ("applied", "editor")
    change_request = ChangeRequest.objects.get(pk=proposed["id"])
    assert (change_request.status, change_request.closed_by) == (Status.APPLIED, editor)
    state = state_of(boolean_flag, gated)
    assert (state.enabled, state.version) == (True, 2)
    after = author.get(STATE)
    assert (after["ETag"], after.json()["enabled"]) == ('"2"', True)
    # And applying again is refused: it is closed
    again = author.post(url(proposed["id"], "apply"))
    assert again.status_code == 409
    assert again.json()["code"] == "change_request_closed"


def test_apply__without_approval__409_not_approved(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    author = signed_in(editor)
    proposed = propose_toggle(author)
    response = author.post(url(proposed["id"], "apply"))
    assert response.status_code == 409
    assert response.json()["code"] == "not_approved"
    assert response["Content-Type"] == "application/problem+json"
    assert ChangeRequest.objects.get().status == Status.OPEN
    assert not state_of(boolean_flag, gated).enabled


def test_self_approval__refused_403_unless_the_environment_allows_it(
    boolean_flag: Flag, gated: Environment, release_manager: User
) -> None:
    # Given a release manager's own proposal where authors may not approve
    client = signed_in(release_manager)
    proposed = propose_toggle(client)
    # When they approve it themselves
    refused = client.post(url(proposed["id"], "approve"), {}, format="json")
    # Then 403 and no review is stored
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert not ChangeRequestReview.objects.exists()
    # When the environment allows self-approval
    require(gated, 1, self_approval=True)
    approved = client.post(url(proposed["id"], "approve"), {}, format="json")
    # Then their approval counts and they may apply it
    assert approved.status_code == 200, approved.content
    assert (approved.json()["approvals"], approved.json()["allow_self_approval"]) == (1, True)
    assert client.post(url(proposed["id"], "apply")).status_code == 200
    assert state_of(boolean_flag, gated).enabled


def test_two_required_approvals__applies_after_the_second_reviewer(
    boolean_flag: Flag,
    production: Environment,
    editor: User,
    release_manager: User,
    second_manager: User,
) -> None:
    # Given production needing two approvals
    require(production, 2)
    author = signed_in(editor)
    proposed = propose_toggle(author)
    assert proposed["required_approvals"] == 2
    # When one reviewer approved, applying is refused
    signed_in(release_manager).post(url(proposed["id"], "approve"), {}, format="json")
    refused = author.post(url(proposed["id"], "apply"))
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_approved"
    assert "1 of the 2" in refused.json()["detail"]
    # When the second approves, it applies
    second = signed_in(second_manager).post(url(proposed["id"], "approve"), {}, format="json")
    assert second.json()["approvals"] == 2
    assert author.post(url(proposed["id"], "apply")).status_code == 200
    assert state_of(boolean_flag, production).enabled


def test_reject__closed__apply_is_409(
    boolean_flag: Flag, gated: Environment, editor: User, release_manager: User
) -> None:
    author = signed_in(editor)
    proposed = propose_toggle(author)
    # When a release manager rejects it with a comment
    rejected = signed_in(release_manager).post(
        url(proposed["id"], "reject"), {"comment": "Not before the sale"}, format="json"
    )
    # Then it is rejected, closed by them, with the comment stored
    assert rejected.status_code == 200, rejected.content
    assert rejected.json()["status"] == "rejected"
    change_request = ChangeRequest.objects.get()
    assert (change_request.status, change_request.closed_by) == (Status.REJECTED, release_manager)
    assert ChangeRequestReview.objects.get().comment == "Not before the sale"
    # And applying it is refused as closed; the flag stays off
    applied = author.post(url(proposed["id"], "apply"))
    assert applied.status_code == 409
    assert applied.json()["code"] == "change_request_closed"
    assert not state_of(boolean_flag, gated).enabled


def test_stale_base__409_conflict_then_rebase_clears_approvals_approve_apply(
    string_flag: Flag,
    gated: Environment,
    editor: User,
    release_manager: User,
    second_manager: User,
) -> None:
    # Given an approved proposal to serve "sale" by default
    author = signed_in(editor)
    response = author.patch(
        BANNER, {"default_serve": {"variant": "sale"}}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 202, response.content
    proposed = response.json()
    signed_in(release_manager).post(url(proposed["id"], "approve"), {}, format="json")
    # And the system switched the flag on meanwhile (version 2)
    services.flag_toggle(state=state_of(string_flag, gated), enabled=True, actor=None)
    # When it is read, the conflict shows
    detail = author.get(url(proposed["id"])).json()
    assert detail["conflicts"] == [{"flag": "banner-text", "base_version": 1, "version": 2}]
    [item] = detail["items"]
    assert (item["conflict"], item["now"]["enabled"]) == (True, True)
    # When the editor applies it
    applied = author.post(url(proposed["id"], "apply"))
    # Then 409 change_request_conflict naming the flag, and nothing was written
    assert applied.status_code == 409
    problem = applied.json()
    assert problem["code"] == "change_request_conflict"
    assert problem["conflicts"] == [{"flag": "banner-text", "base_version": 1, "version": 2}]
    assert "banner-text" in problem["detail"]
    state = state_of(string_flag, gated)
    assert (state.version, state.default_serve) == (2, {"variant": "none"})
    assert ChangeRequest.objects.get().status == Status.OPEN
    # When the editor rebases it
    rebased = author.post(url(proposed["id"], "rebase"))
    # Then its base is the current version and the approval is cleared
    assert rebased.status_code == 200, rebased.content
    assert (rebased.json()["approvals"], rebased.json()["reviews"]) == (0, [])
    assert rebased.json()["conflicts"] == []
    assert ChangeRequest.objects.get().proposed_states.get().base_version == 2
    assert not ChangeRequestReview.objects.exists()
    # And rebasing again has nothing to do: 400 up_to_date
    again = author.post(url(proposed["id"], "rebase"))
    assert again.status_code == 400
    assert again.json()["code"] == "invalid"
    assert [error["code"] for error in again.json()["errors"]] == ["up_to_date"]
    # When another reviewer approves and the editor applies it
    signed_in(second_manager).post(url(proposed["id"], "approve"), {}, format="json")
    assert author.post(url(proposed["id"], "apply")).status_code == 200
    # Then production serves the proposal on top of the change made meanwhile
    final = state_of(string_flag, gated)
    assert (final.enabled, final.default_serve, final.version) == (True, {"variant": "sale"}, 3)


def test_viewer__cannot_propose_approve_or_apply_but_reads(
    boolean_flag: Flag, gated: Environment, editor: User, viewer: User
) -> None:
    proposed = propose_toggle(signed_in(editor))
    client = signed_in(viewer)
    # A viewer cannot propose
    toggled = client.post(f"{STATE}toggle/", {"enabled": True}, format="json")
    assert toggled.status_code == 403
    assert toggled.json()["code"] == "permission_denied"
    # Nor review, apply, rebase or withdraw
    for action in ("approve", "reject", "apply", "rebase", "withdraw"):
        response = client.post(url(proposed["id"], action), {}, format="json")
        assert response.status_code == 403, action
        assert response.json()["code"] == "permission_denied"
    # But reads the list and the detail
    assert client.get(LIST).json()["count"] == 1
    assert client.get(url(proposed["id"])).status_code == 200
    assert ChangeRequest.objects.count() == 1
    assert not ChangeRequestReview.objects.exists()
    assert ChangeRequest.objects.get().status == Status.OPEN


def test_editor__cannot_review_nor_apply_anothers(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    proposed = propose_toggle(signed_in(editor))
    other = signed_in(make_user(username="olga", role=roles.EDITOR))
    assert other.post(url(proposed["id"], "approve"), {}, format="json").status_code == 403
    applied = other.post(url(proposed["id"], "apply"))
    assert applied.status_code == 403
    assert applied.json()["code"] == "permission_denied"
    withdrawn = other.post(url(proposed["id"], "withdraw"))
    assert withdrawn.status_code == 403
    assert ChangeRequest.objects.get().status == Status.OPEN


def test_withdraw__by_the_author__closed(
    boolean_flag: Flag, gated: Environment, editor: User, release_manager: User
) -> None:
    proposed = propose_toggle(signed_in(editor))
    # A reviewer may not withdraw it
    assert signed_in(release_manager).post(url(proposed["id"], "withdraw")).status_code == 403
    # Its author may
    response = signed_in(editor).post(url(proposed["id"], "withdraw"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "withdrawn"
    change_request = ChangeRequest.objects.get()
    assert (change_request.status, change_request.closed_by) == (Status.WITHDRAWN, editor)
    assert change_request.closed_at is not None


def test_promote__into_gated_production__202_promotion_change_request(
    string_flag: Flag,
    staging: Environment,
    gated: Environment,
    editor: User,
    beta_testers: Segment,
) -> None:
    # Given staging's targeting: a rule for beta testers
    services.rule_create(
        state=state_of(string_flag, staging), serve={"variant": "new"}, segments=[beta_testers]
    )
    client = signed_in(editor)
    payload = {"source": "staging", "target": "production", "flags": ["banner-text"]}
    # When an editor previews, the dry run is unchanged (200, nothing stored)
    preview = client.post(f"{PROJECT}/promote/", {**payload, "dry_run": True}, format="json")
    assert preview.status_code == 200
    assert not ChangeRequest.objects.exists()
    # When they promote into production
    response = client.post(
        f"{PROJECT}/promote/",
        {**payload, "change_request": {"title": "Beta banner to production"}},
        format="json",
    )
    # Then a promotion change request, and production untouched
    assert response.status_code == 202, response.content
    change_request = ChangeRequest.objects.get()
    assert response["Location"] == url(change_request.pk)
    assert (change_request.kind, change_request.title) == (
        ChangeRequest.Kind.PROMOTION,
        "Beta banner to production",
    )
    assert change_request.description == "Promoted from Staging."
    assert response.json()["kind"] == "promotion"
    assert state_of(string_flag, gated).rules.count() == 0


def test_schedule__into_gated_production__202_schedule_change_request(
    boolean_flag: Flag, gated: Environment, editor: User, release_manager: User
) -> None:
    # When an editor schedules switching the flag on in production
    steps = [{"at": "2030-03-04T09:00:00Z", "action": "enable"}]
    client = signed_in(editor)
    response = client.post(
        f"{STATE}schedules/",
        {"note": "Launch", "steps": steps, "change_request": {"title": "Launch at nine"}},
        format="json",
    )
    # Then a schedule change request with its steps, and no schedule yet
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["kind"], body["title"], body["items"]) == ("schedule", "Launch at nine", [])
    assert body["schedule"]["flag"] == "new-checkout"
    assert body["schedule"]["note"] == "Launch"
    assert [(s["action"], s["percentage"]) for s in body["schedule"]["steps"]] == [("enable", None)]
    change_request = ChangeRequest.objects.get()
    assert (change_request.kind, change_request.description) == ("schedule", "Launch")
    assert not ScheduledChange.objects.exists()
    # When approved and applied, the schedule exists, tied to it
    signed_in(release_manager).post(url(body["id"], "approve"), {}, format="json")
    assert client.post(url(body["id"], "apply")).status_code == 200
    schedule = ScheduledChange.objects.get()
    assert (schedule.change_request, schedule.created_by) == (change_request, editor)
    [listed] = client.get(f"{STATE}schedules/").json()["results"]
    assert (listed["id"], listed["change_request"]) == (schedule.pk, change_request.pk)


def test_schedule__change_request_description__refused_the_note_is_it(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    response = signed_in(editor).post(
        f"{STATE}schedules/",
        {
            "steps": [{"at": "2030-03-04T09:00:00Z", "action": "enable"}],
            "change_request": {"description": "Why"},
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "change_request.description"
    assert not ChangeRequest.objects.exists()


def test_list__filters_by_status_and_environment_paginated(
    boolean_flag: Flag,
    string_flag: Flag,
    gated: Environment,
    editor: User,
    viewer: User,
) -> None:
    # Given two proposals, one withdrawn
    author = signed_in(editor)
    first = propose_toggle(author)
    second = author.post(f"{BANNER}toggle/", {"enabled": True}, format="json").json()
    author.post(url(first["id"], "withdraw"))
    client = signed_in(viewer)
    # When the list is read, newest first, paginated
    everything = client.get(LIST).json()
    assert everything["count"] == 2
    assert [row["id"] for row in everything["results"]] == [second["id"], first["id"]]
    assert everything["results"][0]["flags"] == ["banner-text"]
    assert "items" not in everything["results"][0]
    # Then the filters narrow it
    open_ones = client.get(LIST, {"status": "open"}).json()
    assert [row["id"] for row in open_ones["results"]] == [second["id"]]
    withdrawn = client.get(LIST, {"status": "withdrawn", "environment": "production"}).json()
    assert [row["id"] for row in withdrawn["results"]] == [first["id"]]
    assert client.get(LIST, {"environment": "staging"}).json()["count"] == 0
    assert client.get(LIST, {"status": "", "environment": ""}).json()["count"] == 2
    # And an unknown status is refused
    refused = client.get(LIST, {"status": "merged"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "status"


def test_detail__another_projects_change_request__404(
    boolean_flag: Flag, gated: Environment, editor: User
) -> None:
    proposed = propose_toggle(signed_in(editor))
    services.project_create(key="other", name="Other")
    response = signed_in(editor).get(f"/api/v1/projects/other/change-requests/{proposed['id']}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_environment__administrator_sets_approvals_through_the_api(
    boolean_flag: Flag, production: Environment, staging: Environment, administrator: User
) -> None:
    client = signed_in(administrator)
    # When an administrator requires two approvals on production, authors allowed
    response = client.patch(
        f"{PROJECT}/environments/production/",
        {"required_approvals": 2, "allow_self_approval": True},
        format="json",
    )
    # Then it is stored and shown
    assert response.status_code == 200, response.content
    assert (response.json()["required_approvals"], response.json()["allow_self_approval"]) == (
        2,
        True,
    )
    production.refresh_from_db()
    assert (production.required_approvals, production.allow_self_approval) == (2, True)
    assert production.needs_change_requests
    # And an unprotected environment is refused approvals
    refused = client.patch(
        f"{PROJECT}/environments/staging/", {"required_approvals": 1}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "required_approvals"
    staging.refresh_from_db()
    assert staging.required_approvals == 0
    # And a new protected environment may take change requests from the start
    created = client.post(
        f"{PROJECT}/environments/",
        {"key": "eu", "name": "EU", "protected": True, "required_approvals": 1},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["required_approvals"] == 1
    assert Environment.objects.get(key="eu").needs_change_requests


def test_environment__editor_cannot_change_approvals(production: Environment, editor: User) -> None:
    response = signed_in(editor).patch(
        f"{PROJECT}/environments/production/", {"required_approvals": 1}, format="json"
    )
    assert response.status_code == 403
    production.refresh_from_db()
    assert production.required_approvals == 0


def test_schedule_cancel__someone_elses_in_gated_production__403_change_request_required(
    boolean_flag: Flag, gated: Environment, editor: User, release_manager: User
) -> None:
    # Given a schedule in production, made before it took change requests by a release manager
    require(gated, 0)
    made = signed_in(release_manager).post(
        f"{STATE}schedules/",
        {"steps": [{"at": "2030-03-04T09:00:00Z", "action": "enable"}]},
        format="json",
    )
    assert made.status_code == 201, made.content
    require(gated, 1)
    # When an editor (neither its author nor a reviewer) cancels it
    response = signed_in(editor).delete(f"{STATE}schedules/{made.json()['id']}/")
    # Then 403 with the change-request code, and it stays pending
    assert response.status_code == 403
    assert response.json()["code"] == "change_request_required"
    assert ScheduledChange.objects.get().status == "pending"


def test_list__approvals_as_the_detail_counts_them_in_a_fixed_number_of_queries(
    boolean_flag: Flag,
    string_flag: Flag,
    gated: Environment,
    release_manager: User,
    second_manager: User,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    # Given a release manager's toggle they approved themselves (allowed at the time), approved
    # by another too, then self-approval turned off: only the other's approval counts
    require(gated, 2, self_approval=True)
    author = signed_in(release_manager)
    toggled = propose_toggle(author)
    author.post(url(toggled["id"], "approve"), {}, format="json")
    signed_in(second_manager).post(url(toggled["id"], "approve"), {}, format="json")
    require(gated, 2)
    # And a proposed schedule and a proposed banner change, not reviewed
    author.post(
        f"{STATE}schedules/",
        {"steps": [{"at": "2030-03-04T09:00:00Z", "action": "enable"}]},
        format="json",
    )
    author.post(f"{BANNER}toggle/", {"enabled": True}, format="json")
    # When the list is read
    with django_assert_max_num_queries(10):
        listed = author.get(LIST)
    # Then each row's flags and approvals are what its detail says
    rows = listed.json()["results"]
    assert len(rows) == 3
    for row in rows:
        detail = author.get(url(row["id"])).json()
        assert (row["flags"], row["approvals"]) == (detail["flags"], detail["approvals"])
    assert [(row["flags"], row["approvals"]) for row in rows] == [
        (["banner-text"], 0),
        (["new-checkout"], 0),
        (["new-checkout"], 1),
    ]
