"""The flag list says what each state serves; turning off a flag others require asks first and names
them; a reason is asked for where the project requires one; a control a person may not use looks
disabled and says why.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState

from .admin_pages import attributes, find_all, find_one, messages_of, page, text
from .html_forms import FORM_CONTENT_TYPE, encoded, forms_of, submission

LIST = "/admin/flags/flag/"


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.get(flag=flag, environment=environment)


def _only_form(response: Any) -> str:
    forms = [name for name in forms_of(response.content.decode()) if name != "logout-form"]
    assert len(forms) == 1, forms
    return forms[0]


def _serves(client: Client, flag: str, environment: str) -> tuple[str, str]:
    """The cell's "serves" text and its class."""
    element, _ = find_one(page(client.get(LIST)), data_testid=f"serves-{flag}-{environment}")
    return text(element), attributes(element)["class"] or ""


@pytest.fixture
def express(boolean_flag: Flag, staging: Environment) -> Flag:
    """express-checkout, which requires new-checkout in staging; new-checkout on there."""
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    flag = services.flag_create(project=staging.project, key="express-checkout", name="Express")
    services.prerequisite_add(state=_state(flag, staging), parent=boolean_flag, actor=None)
    return flag


def test_flag_list__on_serving_only_off__warns(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout on in staging, with no rule and the default serve "off"
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    client.force_login(viewer)
    # When the list is shown
    shown, css = _serves(client, "new-checkout", "staging")
    # Then the cell warns that it serves off
    assert shown == "· ⚠ serves off"
    assert "fs-warning" in css


def test_flag_list__rules_rollout_and_splits__said_in_words(
    client: Client, viewer: User, string_flag: Flag, beta_testers: Any
) -> None:
    boolean_flag = services.flag_create(
        project=string_flag.project, key="new-checkout", name="New checkout"
    )
    staging = string_flag.project.environments.get(key="staging")
    # Given new-checkout on with a segment rule then a 30 % catch-all, banner-text split 50/50
    state = _state(boolean_flag, staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(state=state, serve={"variant": "on"}, segments=[beta_testers])
    services.rule_create(state=state, serve={"variant": "on"}, rollout=30000)
    split = {"split": [{"variant": "sale", "weight": 50000}, {"variant": "new", "weight": 50000}]}
    services.flag_state_update(
        state=_state(string_flag, staging), actor=None, enabled=True, default_serve=split
    )
    client.force_login(viewer)
    # When the list is shown
    # Then each cell says what it serves
    assert _serves(client, "new-checkout", "staging")[0] == "· 30 % + 1 rule"
    assert _serves(client, "banner-text", "staging")[0] == "· split 50/50"
    assert find_all(page(client.get(LIST)), data_testid="serves-new-checkout-production") == []


def test_flag_list__editor_in_production__locked_cell_says_release_managers_only(
    client: Client, editor: User, boolean_flag: Flag
) -> None:
    # Given an editor
    client.force_login(editor)
    # When the list is shown
    root = page(client.get(LIST))
    # Then production's cell looks disabled and says why, and so does its column
    cell, _ = find_one(root, data_testid="state-new-checkout-production")
    assert attributes(cell)["aria-disabled"] == "true"
    assert attributes(cell)["title"] == "Release managers only"
    assert "fs-locked" in (attributes(cell)["class"] or "")
    assert text(find_one(root, id="locked-production")[0]) == "Release managers only"
    assert find_all(root, data_testid="read-only-note") == []


def test_flag_list__viewer__told_once_that_changing_needs_the_editor_role(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    client.force_login(viewer)
    root = page(client.get(LIST))
    assert text(find_one(root, data_testid="read-only-note")[0]) == (
        "You can look at every flag here; changing them needs the Editor role."
    )
    cell, _ = find_one(root, data_testid="state-new-checkout-staging")
    assert attributes(cell)["title"] == "Read-only: your role cannot change flags"


def test_toggle__off_while_another_flag_requires_it__confirmation_names_it_then_off(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, express: Flag
) -> None:
    # Given an editor; the list's staging cell for new-checkout is a link, not a one-click form
    client.force_login(editor)
    link, _ = find_one(page(client.get(LIST)), data_testid="toggle-new-checkout-staging")
    assert link.name == "a"
    url = reverse("admin:flags_flag_toggle", args=[boolean_flag.pk, staging.pk])

    # When a one-click "off" is posted anyway (a list loaded before the prerequisite existed)
    asked = client.post(url, {"enabled": "false"})

    # Then the confirmation page names express-checkout, and nothing changed
    assert [text(e) for e, _ in find_all(page(asked), data_testid="dependent")] == [
        "express-checkout"
    ]
    assert _state(boolean_flag, staging).enabled is True

    # When they confirm on that page
    entries = submission(asked.content.decode(), _only_form(asked))
    done = client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then new-checkout is off in staging
    assert _state(boolean_flag, staging).enabled is False
    assert messages_of(done) == ["Turned new-checkout off in Staging."]


def test_toggle__protected_with_reasons_required__asks_again_then_records_the_reason(
    client: Client, release_manager: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given a project requiring reasons in its protected environments
    services.project_update(project=production.project, actor=None, reason_required=True)
    client.force_login(release_manager)
    url = reverse("admin:flags_flag_toggle", args=[boolean_flag.pk, production.pk])
    asked = client.get(url)
    reason_input, _ = find_one(page(asked), "input", name="reason")
    assert "required" in attributes(reason_input)

    # When they confirm with no reason
    entries = submission(asked.content.decode(), _only_form(asked))
    again = client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then they are asked again, and nothing changed
    assert find_all(page(again), data_testid="reason-error") != []
    assert _state(boolean_flag, production).enabled is False

    # When they give one
    entries = [
        (name, "Launch day" if name == "reason" else value)
        for name, value in submission(again.content.decode(), _only_form(again))
    ]
    client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then the flag is on and its history says why
    state = _state(boolean_flag, production)
    assert state.enabled is True
    assert state.history.latest().history_change_reason == "Launch day"


def test_state_page__turning_off_a_required_flag__refused_until_confirmed(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, express: Flag
) -> None:
    # Given an editor on new-checkout's staging page
    client.force_login(editor)
    state = _state(boolean_flag, staging)
    url = reverse("admin:flags_flagstate_change", args=[state.pk])
    shown = client.get(url)
    form_id = "flagstate_form"

    # When they untick "Enabled" and save
    entries = [
        (n, v) for n, v in submission(shown.content.decode(), form_id, "_save") if n != "enabled"
    ]
    refused = client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then the page names express-checkout next to "Enabled", and nothing changed
    errors = refused.context["adminform"].form.errors["enabled"]
    assert errors[0].startswith("express-checkout requires new-checkout in Staging")
    assert _state(boolean_flag, staging).enabled is True

    # When they tick the confirmation too
    confirmed = client.post(
        url, encoded([*entries, ("confirm_off", "on")]), content_type=FORM_CONTENT_TYPE
    )

    # Then it is off
    assert confirmed.status_code == 302
    assert _state(boolean_flag, staging).enabled is False
