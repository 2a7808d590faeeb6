"""Change requests in the admin: every page that changes a flag in a gated environment proposes
instead, and the change request's page reviews, applies, rebases and withdraws it. Each test posts
what the rendered page sends and reads the database afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from flags import services
from flags.history import as_of
from flags.models import (
    ChangeRequest,
    ChangeRequestReview,
    Environment,
    Flag,
    FlagState,
    Rule,
    ScheduledChange,
)

from .admin_pages import find_all, find_one, messages_of, page, text
from .html_forms import FORM_CONTENT_TYPE, encoded, forms_of, submission

FORM = "flagstate_form"
Status = ChangeRequest.Status


@pytest.fixture
def gated(production: Environment) -> Environment:
    """Production taking change requests: one approval, authors may not approve their own."""
    services.environment_update(environment=production, actor=None, required_approvals=1)
    production.refresh_from_db()
    return production


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.select_related("flag", "environment").get(
        flag=flag, environment=environment
    )


def _state_url(state: FlagState, query: str = "") -> str:
    return reverse("admin:flags_flagstate_change", args=[state.pk]) + query


def _cr_url(change_request: ChangeRequest, action: str | None = None) -> str:
    if action is None:
        return reverse("admin:flags_changerequest_change", args=[change_request.pk])
    return reverse("admin:flags_changerequest_decide", args=[change_request.pk, action])


def _post_page(
    client: Client,
    shown: Any,
    form_id: str,
    changes: dict[str, str | list[str]],
    *,
    button: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> Any:
    """Send a rendered form as a browser does after ``changes`` (an empty list unticks)."""
    entries = submission(shown.content.decode(), form_id, button)
    for name, wanted in changes.items():
        entries = [(n, v) for n, v in entries if n != name]
        entries += [(name, item) for item in ([wanted] if isinstance(wanted, str) else wanted)]
    entries += list(extra)
    query = shown.request.get("QUERY_STRING", "")
    return client.post(
        shown.request["PATH_INFO"] + (f"?{query}" if query else ""),
        encoded(entries),
        content_type=FORM_CONTENT_TYPE,
    )


def _only_change_request() -> ChangeRequest:
    [change_request] = ChangeRequest.objects.all()
    return change_request


def _proposed(change_request: ChangeRequest) -> as_of.StateConfig:
    [item] = change_request.proposed_states.all()
    return as_of.StateConfig.from_json(item.proposed)


def _propose_switch_on(flag: Flag, environment: Environment, author: User) -> ChangeRequest:
    """What the state page makes of "switch on, serve on": a change request by ``author``."""
    with services.proposing(environment=environment, actor=author, title="Launch") as result:
        services.flag_state_update(
            state=_state(flag, environment),
            actor=author,
            enabled=True,
            default_serve={"variant": "on"},
        )
    assert result.change_request is not None
    return result.change_request


def test_environment_admin__approvals_are_editable(
    client: Client, administrator: User, production: Environment
) -> None:
    # Given an administrator on production's page
    client.force_login(administrator)
    url = reverse("admin:flags_environment_change", args=[production.pk])
    shown = client.get(url)
    # When they require two approvals and let authors approve their own changes
    done = _post_page(
        client,
        shown,
        "environment_form",
        {"required_approvals": "2", "allow_self_approval": "on"},
    )
    # Then both are stored, and production takes change requests
    assert done.status_code == 302
    production.refresh_from_db()
    assert (production.required_approvals, production.allow_self_approval) == (2, True)
    assert production.needs_change_requests


def test_environment_admin__approvals_on_unprotected__refused_next_to_the_field(
    client: Client, administrator: User, staging: Environment
) -> None:
    # Given an administrator on staging's page (not protected)
    client.force_login(administrator)
    shown = client.get(reverse("admin:flags_environment_change", args=[staging.pk]))
    # When they require an approval there
    refused = _post_page(client, shown, "environment_form", {"required_approvals": "1"})
    # Then the page says why, and nothing is stored
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["required_approvals"]
    staging.refresh_from_db()
    assert staging.required_approvals == 0


def test_state_page__editor_in_gated_production__proposes_and_writes_nothing(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given an editor on new-checkout's page in gated production (off, version known)
    state = _state(boolean_flag, gated)
    version = state.version
    client.force_login(editor)
    shown = client.get(_state_url(state))
    assert shown.status_code == 200
    root = page(shown)
    find_one(root, data_testid="change-request-banner")
    find_one(root, "input", data_testid="change-request-title")
    # When they switch it on, serve "on" to everyone, with a title and a reason
    done = _post_page(
        client,
        shown,
        FORM,
        {
            "enabled": "on",
            "default_serve_variant": "on",
            "change_request_title": "Launch new checkout",
            "reason": "Marketing wants it live",
        },
        button="_save",
    )
    # Then they land on the new change request, told it needs one approval
    change_request = _only_change_request()
    assert done.status_code == 302
    assert done["Location"] == _cr_url(change_request)
    assert messages_of(done) == [
        f"Proposed as change request #{change_request.pk}: needs 1 approval."
    ]
    # And the flag state is exactly as it was
    stored = _state(boolean_flag, gated)
    assert (stored.enabled, stored.version, stored.default_serve) == (
        False,
        version,
        {"variant": "off"},
    )
    # And the change request holds the proposal, by the editor, with the reason as description
    assert (change_request.title, change_request.description, change_request.author) == (
        "Launch new checkout",
        "Marketing wants it live",
        editor,
    )
    assert change_request.status == Status.OPEN
    [item] = change_request.proposed_states.all()
    assert (item.state_id, item.base_version) == (state.pk, version)
    proposed = _proposed(change_request)
    assert (proposed.enabled, proposed.default_serve) == (True, {"variant": "on"})


def test_state_page__nothing_changed__no_change_request(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given an editor on the gated page
    state = _state(boolean_flag, gated)
    client.force_login(editor)
    shown = client.get(_state_url(state))
    # When they save it unchanged
    done = _post_page(client, shown, FORM, {}, button="_save")
    # Then nothing is proposed and they are told so
    assert done.status_code == 302
    assert done["Location"] == _state_url(state)
    assert messages_of(done) == ["Nothing changed: there is nothing to propose."]
    assert not ChangeRequest.objects.exists()


def test_state_page__default_title(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given the gated page, whose title field is prefilled
    state = _state(boolean_flag, gated)
    client.force_login(editor)
    shown = client.get(_state_url(state))
    [(field, _)] = find_all(page(shown), "input", data_testid="change-request-title")
    assert dict(field.attributes)["value"] == "Change new-checkout in Production"
    # When the editor switches the flag on and sends the page as shown
    _post_page(client, shown, FORM, {"enabled": "on"}, button="_save")
    # Then the change request has that title
    assert _only_change_request().title == "Change new-checkout in Production"


def test_rules_panel__add_and_delete_in_gated_production__proposed_not_written(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given a rule already in gated production (set by the system)
    state = _state(boolean_flag, gated)
    kept = services.rule_create(
        state=state, serve={"variant": "on"}, description="Beta", actor=None
    )
    state.refresh_from_db()
    version = state.version
    client.force_login(editor)
    # When an editor adds a rule with a condition through the panel
    shown = client.get(_state_url(state, "?insert=0"))
    added = _post_page(
        client,
        shown,
        FORM,
        {
            "rule-description": "Austria",
            "rule-conditions-0-attribute": "country",
            "rule-conditions-0-operator": "in",
            "rule-conditions-0-values": "AT",
        },
        button="_rule_save",
    )
    # Then a change request holds both rules, the new one first; the stored rules are untouched
    first = ChangeRequest.objects.get()
    assert added["Location"] == _cr_url(first)
    rules = _proposed(first).rules
    assert [rule.description for rule in rules] == ["Austria", "Beta"]
    assert [(c.attribute, list(c.values)) for c in rules[0].conditions] == [("country", ["AT"])]
    assert list(Rule.objects.filter(state=state).values_list("description", flat=True)) == ["Beta"]
    # When the editor deletes the existing rule with its button
    deleted = _post_page(
        client,
        client.get(_state_url(state)),
        FORM,
        {},
        extra=[("_rule_action", f"delete:{kept.pk}")],
    )
    # Then a second change request proposes no rule; the rule is still there, version unchanged
    second = ChangeRequest.objects.exclude(pk=first.pk).get()
    assert deleted["Location"] == _cr_url(second)
    assert _proposed(second).rules == ()
    assert Rule.objects.filter(pk=kept.pk).exists()
    assert _state(boolean_flag, gated).version == version


def test_toggle__gated__confirmation_asks_a_title_and_proposes(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given an editor asking to turn new-checkout on in gated production
    client.force_login(editor)
    url = reverse("admin:flags_flag_toggle", args=[boolean_flag.pk, gated.pk])
    shown = client.get(url)
    # Then the confirmation page asks for a title, prefilled
    assert shown.status_code == 200
    [(field, _)] = find_all(page(shown), "input", data_testid="change-request-title")
    assert dict(field.attributes)["value"] == "Switch on new-checkout in Production"
    # When they confirm with a reason
    [form_id] = [name for name in forms_of(shown.content.decode()) if name != "logout-form"]
    entries = submission(shown.content.decode(), form_id)
    entries = [(n, v) for n, v in entries if n != "reason"] + [("reason", "Go live")]
    done = client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)
    # Then a change request is proposed and the flag is still off
    change_request = _only_change_request()
    assert done["Location"] == _cr_url(change_request)
    assert change_request.title == "Switch on new-checkout in Production"
    assert change_request.description == "Go live"
    assert _proposed(change_request).enabled is True
    assert not _state(boolean_flag, gated).enabled


def test_promotion_into_gated__proposed(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment, staging: Environment
) -> None:
    # Given new-checkout serving "on" in staging, off-serving in gated production
    services.flag_state_update(
        state=_state(boolean_flag, staging), actor=None, default_serve={"variant": "on"}
    )
    state = _state(boolean_flag, gated)
    client.force_login(editor)
    url = reverse("admin:flags_flagstate_promote", args=[state.pk])
    shown = client.get(url, {"source": "staging"})
    assert shown.status_code == 200
    find_one(page(shown), data_testid="change-request-banner")
    # When the editor confirms the promotion
    done = client.post(
        f"{url}?source=staging",
        {"version": str(state.version), "reason": "", "change_request_title": ""},
    )
    # Then a promotion change request is proposed and production is unchanged
    change_request = _only_change_request()
    assert done["Location"] == _cr_url(change_request)
    assert change_request.kind == ChangeRequest.Kind.PROMOTION
    assert change_request.title == "Promote new-checkout from Staging to Production"
    assert _proposed(change_request).default_serve == {"variant": "on"}
    assert _state(boolean_flag, gated).default_serve == {"variant": "off"}


def test_schedule_into_gated__proposed_not_scheduled(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given an editor scheduling new-checkout on in gated production
    state = _state(boolean_flag, gated)
    client.force_login(editor)
    when = timezone.localtime(timezone.now() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    done = client.post(
        reverse("admin:flags_scheduledchange_add"),
        {"state": str(state.pk), "steps": f"{when} on", "note": "Launch day", "title": ""},
    )
    # Then a schedule change request is proposed, and nothing is scheduled yet
    change_request = _only_change_request()
    assert done.status_code == 302
    assert done["Location"] == _cr_url(change_request)
    assert change_request.kind == ChangeRequest.Kind.SCHEDULE
    assert change_request.schedule is not None
    assert change_request.schedule["steps"][0]["action"] == "enable"
    assert not ScheduledChange.objects.exists()
    # And its page shows the step
    steps = page(client.get(_cr_url(change_request)))
    [(listed, _)] = find_all(steps, "ol", data_testid="schedule-steps")
    assert "switch on" in text(listed)


def test_review__approve_with_comment_then_apply(
    client: Client,
    editor: User,
    release_manager: User,
    boolean_flag: Flag,
    gated: Environment,
) -> None:
    # Given an editor's change request switching new-checkout on
    change_request = _propose_switch_on(boolean_flag, gated, editor)
    version = _state(boolean_flag, gated).version
    # When a release manager opens it
    client.force_login(release_manager)
    shown = client.get(_cr_url(change_request))
    # Then it shows the diff (off before, on proposed) and Approve, Reject, not Apply yet
    root = page(shown)
    find_one(root, data_testid="diff-new-checkout")
    assert text(find_one(root, data_testid="value-enabled-base")[0]) == "Off"
    assert text(find_one(root, data_testid="value-enabled-proposed")[0]) == "On"
    assert find_all(root, "button", data_testid="approve")
    assert find_all(root, "button", data_testid="reject")
    assert not find_all(root, "button", data_testid="apply")
    # When they approve with a comment
    approved = client.post(_cr_url(change_request, "approve"), {"comment": "Looks right"})
    # Then the review is stored with its comment, and the flag is still off
    assert approved["Location"] == _cr_url(change_request)
    review = ChangeRequestReview.objects.get(change_request=change_request)
    assert (review.reviewer, review.decision, review.comment) == (
        release_manager,
        ChangeRequestReview.Decision.APPROVED,
        "Looks right",
    )
    assert not _state(boolean_flag, gated).enabled
    # And the page now offers Apply and lists the review
    root = page(client.get(_cr_url(change_request)))
    assert find_all(root, "button", data_testid="apply")
    assert "Looks right" in text(find_one(root, data_testid="reviews")[0])
    # When they apply it
    applied = client.post(_cr_url(change_request, "apply"))
    # Then the state is on, serving "on", one version later, and the change request applied
    assert messages_of(applied) == [f"Applied change request #{change_request.pk}."]
    stored = _state(boolean_flag, gated)
    assert (stored.enabled, stored.default_serve, stored.version) == (
        True,
        {"variant": "on"},
        version + 1,
    )
    change_request.refresh_from_db()
    assert (change_request.status, change_request.closed_by) == (Status.APPLIED, release_manager)


def test_review__reject_with_comment_closes_it(
    client: Client, editor: User, release_manager: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given an editor's change request
    change_request = _propose_switch_on(boolean_flag, gated, editor)
    client.force_login(release_manager)
    # When a release manager rejects it with a comment
    client.post(_cr_url(change_request, "reject"), {"comment": "Not this week"})
    # Then it is rejected, the comment kept, and nothing applied
    change_request.refresh_from_db()
    assert change_request.status == Status.REJECTED
    assert change_request.reviews.get().comment == "Not this week"
    assert not _state(boolean_flag, gated).enabled


def test_editor__no_approve_button__and_posting_approve_is_refused(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given the editor's own change request
    change_request = _propose_switch_on(boolean_flag, gated, editor)
    client.force_login(editor)
    # When they open it
    root = page(client.get(_cr_url(change_request)))
    # Then they see Withdraw but neither Approve, Reject nor Apply
    assert not find_all(root, "button", data_testid="approve")
    assert not find_all(root, "button", data_testid="reject")
    assert not find_all(root, "button", data_testid="apply")
    assert find_all(root, "button", data_testid="withdraw")
    # When they post "approve" anyway
    refused = client.post(_cr_url(change_request, "approve"), {"comment": "Me"})
    # Then it is refused with the service's words, and no review is stored
    assert refused.status_code == 302
    assert messages_of(refused) == ["Only release managers may review change requests."]
    assert not ChangeRequestReview.objects.exists()
    # And applying without approval is refused too
    not_approved = client.post(_cr_url(change_request, "apply"))
    assert "approvals" in messages_of(not_approved)[-1]
    assert not _state(boolean_flag, gated).enabled


def test_viewer__cannot_propose_or_decide(
    client: Client, viewer: User, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given a change request and a viewer
    change_request = _propose_switch_on(boolean_flag, gated, editor)
    client.force_login(viewer)
    # Then the viewer reads it but gets no button, and the toggle is forbidden
    root = page(client.get(_cr_url(change_request)))
    assert not find_all(root, "button", data_testid="withdraw")
    url = reverse("admin:flags_flag_toggle", args=[boolean_flag.pk, gated.pk])
    assert client.get(url).status_code == 403
    refused = client.post(_cr_url(change_request, "withdraw"))
    assert messages_of(refused) == ["Only its author may withdraw a change request."]
    change_request.refresh_from_db()
    assert change_request.status == Status.OPEN


def test_apply__state_moved_since__refused_with_a_message_then_rebased(
    client: Client, editor: User, release_manager: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given an approved change request, then the state changed by the system meanwhile
    change_request = _propose_switch_on(boolean_flag, gated, editor)
    services.change_request_approve(change_request=change_request, actor=release_manager)
    services.flag_state_update(
        state=_state(boolean_flag, gated), actor=None, off_variant=None, default_serve=None
    )
    services.rule_create(
        state=_state(boolean_flag, gated), serve={"variant": "on"}, description="QA", actor=None
    )
    moved = _state(boolean_flag, gated)
    client.force_login(release_manager)
    # When the page is opened
    root = page(client.get(_cr_url(change_request)))
    # Then it warns that the state changed since, shows it now, and offers Rebase, not Apply
    assert "changed since — rebase" in text(find_one(root, data_testid="moved-new-checkout")[0])
    find_one(root, data_testid="value-enabled-now")
    assert find_all(root, "button", data_testid="rebase")
    assert not find_all(root, "button", data_testid="apply")
    # When "apply" is posted anyway
    refused = client.post(_cr_url(change_request, "apply"))
    # Then it is refused with the conflict's words and nothing is written
    assert "rebase it" in messages_of(refused)[-1]
    after = _state(boolean_flag, gated)
    assert (after.version, after.enabled) == (moved.version, False)
    change_request.refresh_from_db()
    assert change_request.status == Status.OPEN
    # When it is rebased
    rebased = client.post(_cr_url(change_request, "rebase"))
    # Then its base is the state now, the approval cleared, and the rule kept in the proposal
    assert rebased.status_code == 302
    [item] = change_request.proposed_states.all()
    assert item.base_version == moved.version
    assert not change_request.reviews.exists()
    assert [rule.description for rule in _proposed(change_request).rules] == ["QA"]
    # And rebasing again says it is up to date, without a 500
    again = client.post(_cr_url(change_request, "rebase"))
    assert "up to date" in messages_of(again)[-1]


def test_withdraw__by_its_author(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given the editor's change request
    change_request = _propose_switch_on(boolean_flag, gated, editor)
    client.force_login(editor)
    # When they withdraw it
    client.post(_cr_url(change_request, "withdraw"))
    # Then it is withdrawn, and a second withdraw is refused politely
    change_request.refresh_from_db()
    assert change_request.status == Status.WITHDRAWN
    again = client.post(_cr_url(change_request, "withdraw"))
    assert "withdrawn" in messages_of(again)[-1]


def test_decide__get_is_not_allowed(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    change_request = _propose_switch_on(boolean_flag, gated, editor)
    client.force_login(editor)
    assert client.get(_cr_url(change_request, "withdraw")).status_code == 405
    explode = reverse("admin:flags_changerequest_change", args=[change_request.pk]).replace(
        "/change/", "/explode/"
    )
    assert client.post(explode).status_code in (302, 404)  # no such button
    change_request.refresh_from_db()
    assert change_request.status == Status.OPEN


def test_list__approvals_and_filters(
    client: Client,
    editor: User,
    release_manager: User,
    boolean_flag: Flag,
    string_flag: Flag,
    gated: Environment,
) -> None:
    # Given two change requests, one approved once
    first = _propose_switch_on(boolean_flag, gated, editor)
    services.change_request_approve(change_request=first, actor=release_manager)
    with services.proposing(environment=gated, actor=editor, title="Banner") as result:
        services.flag_toggle(state=_state(string_flag, gated), enabled=True, actor=editor)
    second = result.change_request
    assert second is not None
    services.change_request_withdraw(change_request=second, actor=editor)
    client.force_login(editor)
    # When the list is opened, then filtered to open ones
    listed = client.get(reverse("admin:flags_changerequest_changelist"))
    opened = client.get(reverse("admin:flags_changerequest_changelist"), {"status__exact": "open"})
    # Then each row says its approvals, and the filter keeps the open one
    assert listed.status_code == 200
    body = listed.content.decode()
    assert "1 of 1" in body
    assert "0 of 1" in body
    assert list(opened.context["cl"].result_list) == [first]
    # And the flag state's page links to its one pending change request
    state = _state(boolean_flag, gated)
    link, _ = find_one(
        page(client.get(_state_url(state))), "a", data_testid="pending-change-requests"
    )
    assert text(link) == "1 change request pending"
    pending = client.get(dict(link.attributes)["href"] or "")
    assert list(pending.context["cl"].result_list) == [first]
    # And so does the flag's page, next to production
    flag_page = page(client.get(reverse("admin:flags_flag_change", args=[boolean_flag.pk])))
    on_flag_page, _ = find_one(flag_page, "a", data_testid="pending-production")
    assert text(on_flag_page) == "1 change request pending"


def test_unprotected_environment__unchanged_direct_save(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, gated: Environment
) -> None:
    # Given production gated, an editor on staging's page
    state = _state(boolean_flag, staging)
    client.force_login(editor)
    shown = client.get(_state_url(state))
    assert not find_all(page(shown), data_testid="change-request-title")
    # When they switch it on
    _post_page(client, shown, FORM, {"enabled": "on"}, button="_save")
    # Then staging changed directly, and no change request exists
    assert _state(boolean_flag, staging).enabled
    assert not ChangeRequest.objects.exists()


def test_revert_in_gated__proposed(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given new-checkout turned on then off again in gated production (by the system)
    services.flag_toggle(state=_state(boolean_flag, gated), enabled=True, actor=None)
    on = _state(boolean_flag, gated).history.order_by("-history_id").first()
    assert on is not None
    services.flag_toggle(state=_state(boolean_flag, gated), enabled=False, actor=None)
    state = _state(boolean_flag, gated)
    client.force_login(editor)
    url = reverse("admin:flags_flagstate_revert", args=[state.pk])
    query = f"?at=flagstate:{on.history_id}"
    shown = client.get(url + query)
    assert shown.status_code == 200
    find_one(page(shown), "input", data_testid="change-request-title")
    # When the editor confirms the revert to the moment it was on
    done = client.post(url + query, {"version": str(state.version), "reason": "Back on"})
    # Then a change request proposes it on again, and the flag stays off
    change_request = _only_change_request()
    assert done["Location"] == _cr_url(change_request)
    assert change_request.title.startswith("Revert new-checkout in Production to ")
    assert _proposed(change_request).enabled is True
    assert not _state(boolean_flag, gated).enabled


def test_bulk_turn_on_in_gated__one_change_request(
    client: Client, editor: User, boolean_flag: Flag, string_flag: Flag, gated: Environment
) -> None:
    # Given an editor selecting two flags in the list
    client.force_login(editor)
    posted = {
        "action": "turn_on",
        "_selected_action": [str(boolean_flag.pk), str(string_flag.pk)],
        "environment": str(gated.pk),
    }
    # When they run "turn on" in gated production: a confirmation with a title field first
    asked = client.post(reverse("admin:flags_flag_changelist"), posted)
    assert asked.status_code == 200
    [(field, _)] = find_all(page(asked), "input", data_testid="change-request-title")
    assert dict(field.attributes)["value"] == "Switch on 2 flags in Production"
    done = client.post(
        reverse("admin:flags_flag_changelist"),
        {**posted, "confirmed": "yes", "reason": "Launch", "change_request_title": "Launch both"},
    )
    # Then one change request holds both flags, and neither is on
    change_request = _only_change_request()
    assert done["Location"] == _cr_url(change_request)
    assert change_request.title == "Launch both"
    assert change_request.proposed_states.count() == 2
    assert not FlagState.objects.filter(environment=gated, enabled=True).exists()


def test_rule_conditions_edit_in_gated__proposed_with_the_condition_ids(
    client: Client, editor: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given a rule with a country condition in gated production (set by the system)
    state = _state(boolean_flag, gated)
    rule = services.rule_create(
        state=state,
        serve={"variant": "on"},
        description="Germany",
        conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
        actor=None,
    )
    [condition] = rule.conditions.all()
    client.force_login(editor)
    # When an editor opens the rule in place and adds France to the condition
    shown = client.get(_state_url(_state(boolean_flag, gated), f"?rule={rule.pk}"))
    done = _post_page(
        client, shown, FORM, {"rule-conditions-0-values": "DE\r\nFR"}, button="_rule_save"
    )
    # Then the change request proposes the same rule and condition with both countries
    change_request = _only_change_request()
    assert done["Location"] == _cr_url(change_request)
    [proposed_rule] = _proposed(change_request).rules
    [proposed_condition] = proposed_rule.conditions
    assert (proposed_rule.id, proposed_condition.id) == (rule.pk, condition.pk)
    assert list(proposed_condition.values) == ["DE", "FR"]
    # And the stored condition still says DE only
    condition.refresh_from_db()
    assert condition.values == ["DE"]


def test_prerequisite_added_in_gated__proposed_not_stored(
    client: Client, editor: User, boolean_flag: Flag, string_flag: Flag, gated: Environment
) -> None:
    # Given an editor on banner-text's page in gated production
    state = _state(string_flag, gated)
    client.force_login(editor)
    shown = client.get(_state_url(state))
    # When they add new-checkout (on) as a prerequisite
    done = _post_page(
        client,
        shown,
        FORM,
        {
            "prerequisites-TOTAL_FORMS": "1",
            "prerequisites-0-state": str(state.pk),
            "prerequisites-0-flag": str(boolean_flag.pk),
            "prerequisites-0-variants": [f"{boolean_flag.pk}:on"],
        },
        button="_save",
    )
    # Then the change request proposes the prerequisite, and none is stored
    change_request = _only_change_request()
    assert done["Location"] == _cr_url(change_request)
    [(parent_id, variants)] = _proposed(change_request).prerequisites
    assert (parent_id, list(variants)) == (boolean_flag.pk, ["on"])
    assert not state.prerequisites.exists()


def test_rules_panel__move_and_duplicate_in_gated__proposed(
    client: Client, release_manager: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given two rules in gated production, and a release manager (who may not change it directly)
    state = _state(boolean_flag, gated)
    first = services.rule_create(state=state, serve={"variant": "on"}, description="A", actor=None)
    second = services.rule_create(
        state=_state(boolean_flag, gated), serve={"variant": "on"}, description="B", actor=None
    )
    client.force_login(release_manager)
    # When they move rule B up, then duplicate rule A, each with its button
    moved = _post_page(
        client,
        client.get(_state_url(state)),
        FORM,
        {},
        extra=[("_rule_action", f"up:{second.pk}")],
    )
    duplicated = _post_page(
        client,
        client.get(_state_url(state)),
        FORM,
        {},
        extra=[("_rule_action", f"duplicate:{first.pk}")],
    )
    # Then each is a change request of its own, and the stored rules did not move
    up, copy = ChangeRequest.objects.order_by("id")
    assert (moved["Location"], duplicated["Location"]) == (_cr_url(up), _cr_url(copy))
    assert [rule.description for rule in _proposed(up).rules] == ["B", "A"]
    assert [rule.description for rule in _proposed(copy).rules] == ["A", "A (copy)", "B"]
    assert list(
        Rule.objects.filter(state=state).order_by("order").values_list("description", flat=True)
    ) == ["A", "B"]


def test_self_approval__allowed_by_the_environment__author_sees_approve(
    client: Client, release_manager: User, boolean_flag: Flag, gated: Environment
) -> None:
    # Given an environment letting authors approve their own, and a release manager's proposal
    services.environment_update(environment=gated, actor=None, allow_self_approval=True)
    gated.refresh_from_db()
    change_request = _propose_switch_on(boolean_flag, gated, release_manager)
    client.force_login(release_manager)
    # When its author opens it, Approve is there; approving and applying it works
    assert find_all(page(client.get(_cr_url(change_request))), "button", data_testid="approve")
    client.post(_cr_url(change_request, "approve"), {"comment": "Mine, allowed"})
    client.post(_cr_url(change_request, "apply"))
    # Then the flag is on
    assert _state(boolean_flag, gated).enabled
    change_request.refresh_from_db()
    assert change_request.status == Status.APPLIED
