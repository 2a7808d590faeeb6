"""Bulk actions of the flag list (through services, object by object), and no bulk delete."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin import helpers
from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState

from .admin_pages import find_all, find_one, messages_of, page, text
from .footprint import footprint
from .html_forms import FORM_CONTENT_TYPE, encoded, forms_of, submission

LIST = "/admin/flags/flag/"


def _action(name: str, flags: list[Flag], environment: Environment | None = None) -> dict[str, Any]:
    return {
        "action": name,
        "index": "0",
        "select_across": "0",
        "environment": str(environment.pk) if environment is not None else "",
        helpers.ACTION_CHECKBOX_NAME: [str(flag.pk) for flag in flags],
    }


def _form_id(response: Any) -> str:
    """The confirmation page's one form (the page has no other)."""
    forms = [name for name in forms_of(response.content.decode()) if name != "logout-form"]
    assert len(forms) == 1, forms
    return forms[0]


def test_bulk_archive__release_manager__each_flag_archived_with_history(
    client: Client, release_manager: User, boolean_flag: Flag, string_flag: Flag
) -> None:
    # Given a release manager selecting two flags
    client.force_login(release_manager)

    # When they run "Archive"
    response = client.post(LIST, _action("archive_flags", [boolean_flag, string_flag]))

    # Then both are archived, each with a history row naming them
    assert response.status_code == 302
    assert set(Flag.objects.filter(project__system=False).values_list("key", "archived")) == {
        ("new-checkout", True),
        ("banner-text", True),
    }
    for flag in (boolean_flag, string_flag):
        latest = Flag.objects.get(pk=flag.pk).history.latest()
        assert (latest.archived, latest.history_user) == (True, release_manager)
    assert messages_of(response) == ["Archived banner-text, new-checkout."]


def test_bulk_archive__parent_only__skipped_with_the_services_reason(
    client: Client, release_manager: User, boolean_flag: Flag, string_flag: Flag
) -> None:
    # Given banner-text depending on new-checkout
    services.prerequisite_add(
        state=string_flag.states.get(environment__key="staging"), parent=boolean_flag, actor=None
    )
    client.force_login(release_manager)

    # When only the parent is archived
    response = client.post(LIST, _action("archive_flags", [boolean_flag]))

    # Then it is skipped, with the reason, and stays live
    assert Flag.objects.get(pk=boolean_flag.pk).archived is False
    assert messages_of(response) == [
        "Skipped new-checkout: new-checkout is a prerequisite of banner-text; remove that first."
    ]


def test_bulk_unarchive__archived_flags__back_with_history(
    client: Client, release_manager: User, boolean_flag: Flag, string_flag: Flag
) -> None:
    # Given an archived flag and a live one
    services.flag_archive(flag=boolean_flag, actor=None)
    client.force_login(release_manager)

    # When both are unarchived
    response = client.post(
        f"{LIST}?archived=all", _action("unarchive_flags", [boolean_flag, string_flag])
    )

    # Then the archived one is back, and the live one is reported as skipped
    assert Flag.objects.get(pk=boolean_flag.pk).archived is False
    assert Flag.objects.get(pk=boolean_flag.pk).history.latest().history_user == release_manager
    assert messages_of(response) == [
        "Unarchived new-checkout.",
        "Skipped banner-text: not archived.",
    ]


def test_bulk_turn_on__editor_in_staging__each_through_flag_toggle(
    client: Client, editor: User, boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given an editor and staging's version
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    client.force_login(editor)

    # When they turn both flags on in staging
    response = client.post(LIST, _action("turn_on", [boolean_flag, string_flag], staging))

    # Then both are on, each with a history row naming the editor, and the version moved twice
    states = FlagState.objects.filter(environment=staging)
    assert {state.flag.key: state.enabled for state in states} == {
        "new-checkout": True,
        "banner-text": True,
    }
    for state in states:
        assert state.history.latest().history_user == editor
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 2
    assert messages_of(response) == ["Turned on in Staging: banner-text, new-checkout."]


def test_bulk_turn_on__editor_in_production__refused_before_anything_and_why(
    client: Client, editor: User, boolean_flag: Flag, string_flag: Flag, production: Environment
) -> None:
    # Given an editor (no release-manager permission)
    client.force_login(editor)
    before = footprint()

    # When they turn flags on in production, confirming as the page would
    response = client.post(
        LIST, {**_action("turn_on", [boolean_flag, string_flag], production), "confirmed": "yes"}
    )

    # Then nothing at all is written, and they are told why, once
    assert footprint() == before
    assert messages_of(response) == [
        "Nothing changed: Production is protected, and only release managers may change flags "
        "there."
    ]


def test_bulk_turn_off__protected__confirmation_page_then_reason_recorded_on_each_flag(
    client: Client,
    release_manager: User,
    boolean_flag: Flag,
    string_flag: Flag,
    production: Environment,
) -> None:
    # Given both flags on in production, and a project that requires reasons there
    for flag in (boolean_flag, string_flag):
        services.flag_toggle(
            state=flag.states.get(environment=production), enabled=True, actor=None
        )
    services.project_update(project=production.project, actor=None, reason_required=True)
    client.force_login(release_manager)

    # When the release manager runs "turn off" in production
    asked = client.post(LIST, _action("turn_off", [boolean_flag, string_flag], production))

    # Then a confirmation page lists the flags, asks for a reason, and nothing changed yet
    listed = find_one(page(asked), "ul", data_testid="bulk-flags")[0]
    assert [text(item) for item, _ in find_all(listed, "li")] == [
        "banner-text — Banner text",
        "new-checkout — New checkout",
    ]
    assert FlagState.objects.filter(environment=production, enabled=True).count() == 2
    form_id = _form_id(asked)

    # When they confirm without a reason
    entries = submission(asked.content.decode(), form_id)
    missing = client.post(LIST, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then the page asks again for the reason, and still nothing changed
    assert find_all(page(missing), data_testid="reason-error") != []
    assert FlagState.objects.filter(environment=production, enabled=True).count() == 2

    # When they confirm with a reason
    entries = [
        (name, "Payment incident" if name == "reason" else value)
        for name, value in submission(missing.content.decode(), form_id)
    ]
    done = client.post(LIST, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then both are off, each history row names them and the reason
    assert done.status_code == 302
    for flag in (boolean_flag, string_flag):
        state = flag.states.get(environment=production)
        assert state.enabled is False
        last = state.history.latest()
        assert (last.history_user, last.history_change_reason) == (
            release_manager,
            "Payment incident",
        )


def test_bulk_turn_off__flag_required_by_another__confirmation_names_the_dependent(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given express-checkout requiring new-checkout in staging, new-checkout on there
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    express = services.flag_create(project=staging.project, key="express", name="Express")
    services.prerequisite_add(
        state=express.states.get(environment=staging), parent=boolean_flag, actor=None
    )
    client.force_login(editor)

    # When the editor turns new-checkout off in (unprotected) staging
    asked = client.post(LIST, _action("turn_off", [boolean_flag], staging))

    # Then they are asked first, with the dependent named, and nothing changed yet
    dependents = find_all(page(asked), data_testid="dependent")
    assert [text(element) for element, _ in dependents] == ["express"]
    assert FlagState.objects.get(pk=state.pk).enabled is True

    # When they confirm
    entries = submission(asked.content.decode(), _form_id(asked))
    client.post(LIST, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then it is off
    assert FlagState.objects.get(pk=state.pk).enabled is False


def test_bulk_turn_off__already_off_or_other_projects_environment__skipped_and_why(
    client: Client, release_manager: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout on in staging, quiet off, and an environment of another project
    services.flag_toggle(
        state=boolean_flag.states.get(environment=staging), enabled=True, actor=None
    )
    quiet = services.flag_create(project=staging.project, key="quiet", name="Quiet")
    other = services.project_create(key="other", name="Other")
    elsewhere = other.environments.get(key="development")
    client.force_login(release_manager)

    # When both are turned off in the other project's environment, then in staging
    foreign = client.post(LIST, _action("turn_off", [boolean_flag, quiet], elsewhere))
    foreign_messages = messages_of(foreign)
    client.get(LIST)  # shows (and so consumes) those messages
    response = client.post(LIST, _action("turn_off", [boolean_flag, quiet], staging))

    # Then only new-checkout changed; every skip is reported with its reason
    assert foreign_messages == [
        "Skipped new-checkout: not a flag of Other.",
        "Skipped quiet: not a flag of Other.",
    ]
    assert messages_of(response) == [
        "Turned off in Staging: new-checkout.",
        "Skipped quiet: already off in Staging.",
    ]
    assert boolean_flag.states.get(environment=staging).enabled is False


def test_bulk_turn_on__no_environment_chosen__error_and_nothing_changes(
    client: Client, editor: User, boolean_flag: Flag
) -> None:
    # Given an editor
    client.force_login(editor)

    # When they run "turn on" without choosing an environment
    response = client.post(LIST, _action("turn_on", [boolean_flag]))

    # Then they are asked to choose one
    assert messages_of(response) == [
        "Choose the environment to turn the flags on in, then run the action again."
    ]
    assert not FlagState.objects.filter(enabled=True, flag__project__system=False).exists()


def test_actions__viewer__none_offered(client: Client, viewer: User, boolean_flag: Flag) -> None:
    # Given a viewer
    client.force_login(viewer)

    # When the flag list is shown
    response = client.get(LIST)

    # Then no action is offered (each needs a change permission)
    assert response.context["action_form"] is None


@pytest.mark.parametrize(
    "model",
    ["flag", "flagstate", "rule", "segment", "project", "environment"],
)
def test_actions__models_whose_deletion_has_side_effects__no_delete_selected(
    client: Client, administrator: User, boolean_flag: Flag, model: str
) -> None:
    # Given an administrator (who has every delete permission)
    client.force_login(administrator)

    # When the model's list is shown
    response = client.get(f"/admin/flags/{model}/")

    # Then "delete selected" is not among the actions
    form = response.context["action_form"]
    choices = [name for name, _ in form.fields["action"].choices] if form is not None else []
    assert "delete_selected" not in choices


def test_actions__tags__delete_selected_kept_and_goes_one_by_one(
    client: Client, administrator: User
) -> None:
    # Given two tags
    tags = [services.tag_create(name=name) for name in ("a", "b")]
    client.force_login(administrator)

    # When both are deleted with "delete selected"
    response = client.post(
        "/admin/flags/tag/",
        {
            "action": "delete_selected",
            "post": "yes",
            helpers.ACTION_CHECKBOX_NAME: [str(tag.pk) for tag in tags],
        },
    )

    # Then each deletion is in history with the administrator
    assert response.status_code == 302
    for tag in tags:
        deleted = type(tag).history.filter(id=tag.pk).latest()
        assert (deleted.history_type, deleted.history_user) == ("-", administrator)
