"""The toggle contract of the flag list, and the toggle view behind it, role by role."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState, Project

from .admin_pages import attributes, find_all, find_one, messages_of, nearest, page, text
from .html_forms import FORM_CONTENT_TYPE, encoded, forms_of, submission

LIST = "/admin/flags/flag/"


def _toggle_url(flag: Flag, environment: Environment) -> str:
    return reverse("admin:flags_flag_toggle", args=[flag.pk, environment.pk])


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.get(flag=flag, environment=environment)


def _confirm_form(response: Any) -> str:
    """The confirmation page's form (the only one besides the log-out form)."""
    forms = [name for name in forms_of(response.content.decode()) if name != "logout-form"]
    assert len(forms) == 1, forms
    return forms[0]


def test_flag_list__editor__unprotected_cell_is_a_one_click_post_form(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given an editor and new-checkout off in staging
    client.force_login(editor)

    # When the list is shown (with a filter in its query string)
    root = page(client.get(LIST, {"q": "new"}))

    # Then the staging cell is a submit button in its own POST form to the toggle URL
    button, ancestors = find_one(root, "button", data_testid="toggle-new-checkout-staging")
    assert attributes(button)["type"] == "submit"
    assert attributes(button)["aria-pressed"] == "false"
    assert text(button) == "Off"
    form = nearest(ancestors, "form")
    assert form is not None
    assert attributes(form)["method"] == "post"
    assert attributes(form)["action"] == (
        f"{_toggle_url(boolean_flag, staging)}?_changelist_filters=q%3Dnew"
    )
    hidden = {
        attributes(field)["name"]: attributes(field)["value"]
        for field, _ in find_all(form, "input", type="hidden")
    }
    assert hidden["enabled"] == "true"
    assert hidden["csrfmiddlewaretoken"]
    # and no form around it but its own (forms cannot nest)
    assert [element.name for element in ancestors].count("form") == 1


def test_flag_list__editor__protected_cell_is_a_read_only_badge(
    client: Client, editor: User, boolean_flag: Flag
) -> None:
    # Given an editor (no release-manager permission)
    client.force_login(editor)

    # When the list is shown
    root = page(client.get(LIST))

    # Then production shows a badge and no control
    badge, _ = find_one(root, "span", data_testid="state-new-checkout-production")
    assert text(badge) == "Off"
    assert find_all(root, data_testid="toggle-new-checkout-production") == []


def test_flag_list__release_manager__protected_cell_links_to_the_confirmation(
    client: Client, release_manager: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given new-checkout on in production
    services.flag_toggle(state=_state(boolean_flag, production), enabled=True, actor=None)
    client.force_login(release_manager)

    # When the list is shown
    root = page(client.get(LIST))

    # Then production's cell is a link (GET) to the toggle URL, pressed, reading "On"
    link, ancestors = find_one(root, data_testid="toggle-new-checkout-production")
    assert link.name == "a"
    assert attributes(link)["href"] == _toggle_url(boolean_flag, production)
    assert attributes(link)["aria-pressed"] == "true"
    assert text(link) == "On"
    assert nearest(ancestors, "form") is None


def test_flag_list__viewer__badges_only(client: Client, viewer: User, boolean_flag: Flag) -> None:
    # Given a viewer
    client.force_login(viewer)

    # When the list is shown
    root = page(client.get(LIST))

    # Then every environment shows a badge and there is no control at all
    badges = [
        text(element)
        for key in ("development", "staging", "production")
        for element, _ in find_all(root, "span", data_testid=f"state-new-checkout-{key}")
    ]
    assert badges == ["Off", "Off", "Off"]
    assert [
        e for e, _ in find_all(root) if (attributes(e).get("data-testid") or "")[:7] == "toggle-"
    ] == []


def test_toggle__editor_posts_in_staging__on_with_history_user_version_and_filters_kept(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given an editor and the environment's current ruleset version
    client.force_login(editor)
    before = Environment.objects.get(pk=staging.pk).ruleset_version

    # When the staging button is clicked on a filtered list
    response = client.post(
        f"{_toggle_url(boolean_flag, staging)}?_changelist_filters=q%3Dnew%26archived%3Dno",
        {"enabled": "true"},
    )

    # Then the state is on, history names the editor, the version moved, and the list keeps its
    # filters with a message naming flag and environment
    state = _state(boolean_flag, staging)
    assert state.enabled is True
    latest = state.history.latest()
    assert (latest.enabled, latest.history_user) == (True, editor)
    assert Environment.objects.get(pk=staging.pk).ruleset_version == before + 1
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?q=new&archived=no"
    assert messages_of(response) == ["Turned new-checkout on in Staging."]


def test_toggle__lower_case_key__message_shows_the_key_exactly(
    client: Client, editor: User, project: Project, staging: Environment
) -> None:
    # Given a flag whose key starts with a lower-case letter, off in staging
    flag = services.flag_create(project=project, key="dark-mode", name="Dark mode")
    client.force_login(editor)

    # When an editor turns it on and the flag list shows the message
    response = client.post(_toggle_url(flag, staging), {"enabled": "true"}, follow=True)

    # Then the message, as rendered (the admin capitalises a message's first letter), names the
    # key exactly as typed
    messages = [text(item) for item, _ in find_all(page(response), "li", **{"class": "success"})]
    assert messages == ["Turned dark-mode on in Staging."]


def test_toggle__get_in_unprotected_environment__405(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given an editor
    client.force_login(editor)

    # When the toggle URL of an unprotected environment is fetched with GET, or PUT
    get = client.get(_toggle_url(boolean_flag, staging))
    put = client.put(_toggle_url(boolean_flag, staging))

    # Then both are refused as methods, and nothing changed
    assert (get.status_code, put.status_code) == (405, 405)
    assert _state(boolean_flag, staging).enabled is False


def test_toggle__viewer_posts__403_and_nothing_changes(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a viewer
    client.force_login(viewer)

    # When they post a toggle
    response = client.post(_toggle_url(boolean_flag, staging), {"enabled": "true"})

    # Then it is forbidden and the flag stays off
    assert response.status_code == 403
    assert _state(boolean_flag, staging).enabled is False


def test_toggle__editor_posts_in_production__403(
    client: Client, editor: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given an editor
    client.force_login(editor)

    # When they post a toggle in the protected environment, or ask for its confirmation page
    posted = client.post(_toggle_url(boolean_flag, production), {"enabled": "true"})
    asked = client.get(_toggle_url(boolean_flag, production))

    # Then both are forbidden and the flag stays off
    assert (posted.status_code, asked.status_code) == (403, 403)
    assert _state(boolean_flag, production).enabled is False


def test_toggle__release_manager_in_production__confirmation_then_on(
    client: Client, release_manager: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given a release manager
    client.force_login(release_manager)
    url = f"{_toggle_url(boolean_flag, production)}?_changelist_filters=q%3Dnew"

    # When they follow the production link
    confirmation = client.get(url)

    # Then a confirmation page asks, with a confirm button posting back and a way out
    assert confirmation.status_code == 200
    root = page(confirmation)
    assert text(find_one(root, "h1")[0]) == "Turn new-checkout on in Production?"
    button, ancestors = find_one(root, "button", data_testid="confirm-toggle")
    assert attributes(button)["type"] == "submit"
    form = nearest(ancestors, "form")
    assert form is not None
    assert attributes(form)["method"] == "post"
    assert attributes(form)["action"] == url
    assert attributes(find_one(form, "input", name="enabled")[0])["value"] == "true"
    cancel, _ = find_one(root, "a", data_testid="cancel-toggle")
    assert attributes(cancel)["href"] == f"{LIST}?q=new"
    assert _state(boolean_flag, production).enabled is False

    # When they confirm (the page's form, as a browser sends it)
    entries = submission(confirmation.content.decode(), _confirm_form(confirmation))
    done = client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then the flag is on in production, recorded as theirs
    state = _state(boolean_flag, production)
    assert state.enabled is True
    assert state.history.latest().history_user == release_manager
    assert done["Location"] == f"{LIST}?q=new"
    assert messages_of(done) == ["Turned new-checkout on in Production."]


def test_toggle__confirmed_after_someone_else_changed_it__stale_message_and_unchanged(
    client: Client, release_manager: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given a confirmation page loaded at version 1, then a change by someone else
    client.force_login(release_manager)
    url = _toggle_url(boolean_flag, production)
    services.flag_toggle(state=_state(boolean_flag, production), enabled=True, actor=None)
    services.flag_toggle(state=_state(boolean_flag, production), enabled=False, actor=None)

    # When the stale confirmation is submitted
    response = client.post(url, {"enabled": "true", "version": "1", "confirmed": "yes"})

    # Then nothing changes and the person is told to reload
    assert response.status_code == 302
    assert _state(boolean_flag, production).enabled is False
    assert messages_of(response) == [
        "Not turned on: someone changed new-checkout in production since you loaded it "
        "(version 1, now 3); reload and try again."
    ]


def test_toggle__enabled_missing__400(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given an editor
    client.force_login(editor)

    # When a toggle is posted without a new value
    response = client.post(_toggle_url(boolean_flag, staging), {"enabled": "yes"})

    # Then it is a bad request
    assert response.status_code == 400
    assert _state(boolean_flag, staging).enabled is False
