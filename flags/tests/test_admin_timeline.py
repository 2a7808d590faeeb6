"""The flag's timeline (every change of the flag, its states, rules, conditions, prerequisites and
segments, in words, filterable) and reverting an environment to a moment of it (a preview of the
whole difference, then one change through the services, itself on the timeline).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from flags import services
from flags.history.recording import reason
from flags.models import Environment, Flag, FlagState, Rule, Segment

from .admin_pages import attributes, find_all, find_one, messages_of, page, text
from .html_forms import FORM_CONTENT_TYPE, encoded, forms_of, submission

DE = {"attribute": "country", "operator": "in", "values": ["DE"]}


def _timeline(flag: Flag, **filters: Any) -> str:
    url = reverse("admin:flags_flag_history", args=[flag.pk])
    query = "&".join(f"{name}={value}" for name, value in filters.items())
    return f"{url}?{query}" if query else url


def _rows(response: Any) -> list[dict[str, str]]:
    """Each timeline row's cells, as text."""
    found = []
    for row, _ in find_all(page(response), data_testid="history-row"):
        cells = {
            name: text(find_one(row, data_testid=f"history-{name}")[0])
            for name in ("who", "what", "reason", "changes")
        }
        found.append(cells)
    return found


@pytest.fixture
def changed(
    boolean_flag: Flag,
    staging: Environment,
    production: Environment,
    beta_testers: Segment,
    editor: User,
    release_manager: User,
) -> dict[str, Any]:
    """new-checkout: staging toggled and targeted by the editor, production by the release
    manager with a reason, and the segment its rule uses edited.
    """
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=editor)
    rule = services.rule_create(
        state=state,
        serve={"variant": "on"},
        conditions=[DE],
        segments=[beta_testers],
        rollout=30000,
        description="Germans",
        actor=editor,
    )
    services.segment_update(
        segment=beta_testers,
        actor=editor,
        conditions=[{"attribute": "email", "operator": "str_ends_with", "values": ["@acme.org"]}],
    )
    with reason("Launch day"):
        services.flag_toggle(
            state=boolean_flag.states.get(environment=production),
            enabled=True,
            actor=release_manager,
        )
    return {"state": state, "rule": rule}


def test_timeline__every_kind_of_change__newest_first_in_words(
    client: Client, viewer: User, boolean_flag: Flag, changed: dict[str, Any]
) -> None:
    # Given the changes above, and a viewer
    client.force_login(viewer)
    # When the flag's timeline is opened
    rows = _rows(client.get(_timeline(boolean_flag)))
    # Then the production toggle comes first, with its person and reason; the rule, its
    # condition and the segment's new condition are there in the forms' words; no "None"
    assert rows[0] == {
        "who": "release",
        "what": "changed new-checkout in Production",
        "reason": "Launch day",
        "changes": "Enabled: off → on",
    }
    whats = [row["what"] for row in rows]
    assert "created Rule “Germans” in Staging · new-checkout" in whats
    assert "created Condition of rule “Germans” in Staging · new-checkout" in whats
    assert "created Condition of segment Beta testers" in whats
    rule = next(
        row for row in rows if row["what"] == "created Rule “Germans” in Staging · new-checkout"
    )
    assert "Rollout: — → 30 %" in rule["changes"]
    assert "None" not in " ".join(" ".join(row.values()) for row in rows)


def test_timeline__filtered_by_environment_and_person(
    client: Client,
    viewer: User,
    boolean_flag: Flag,
    production: Environment,
    changed: dict[str, Any],
    editor: User,
) -> None:
    client.force_login(viewer)
    in_production = _rows(client.get(_timeline(boolean_flag, environment=production.pk)))
    by_editor = _rows(client.get(_timeline(boolean_flag, user=editor.pk)))
    assert [row["what"] for row in in_production] == [
        "changed new-checkout in Production",
        "created new-checkout in Production",
    ]
    assert {row["who"] for row in by_editor} == {"editor"}


def test_timeline__who__linked_for_administrators_only(
    client: Client, viewer: User, administrator: User, boolean_flag: Flag, changed: dict[str, Any]
) -> None:
    client.force_login(viewer)
    as_viewer = page(client.get(_timeline(boolean_flag)))
    client.force_login(administrator)
    as_administrator = page(client.get(_timeline(boolean_flag)))
    assert find_all(as_viewer, data_testid="history-user-link") == []
    links = find_all(as_administrator, data_testid="history-user-link")
    assert links != []
    assert all(
        (attributes(link)["href"] or "").startswith("/admin/accounts/user/") for link, _ in links
    )


def test_flag_page__latest_changes_and_a_link_to_the_whole_timeline(
    client: Client, viewer: User, boolean_flag: Flag, changed: dict[str, Any]
) -> None:
    client.force_login(viewer)
    response = client.get(reverse("admin:flags_flag_change", args=[boolean_flag.pk]))
    assert _rows(response)[0]["reason"] == "Launch day"
    link, _ = find_one(page(response), data_testid="timeline-link")
    assert attributes(link)["href"] == _timeline(boolean_flag)


def test_state_history_button__opens_the_flags_timeline_in_that_environment(
    client: Client, viewer: User, changed: dict[str, Any]
) -> None:
    state = changed["state"]
    client.force_login(viewer)
    response = client.get(reverse("admin:flags_flagstate_history", args=[state.pk]))
    assert response["Location"] == _timeline(state.flag, environment=state.environment_id)


# --- Revert ------------------------------------------------------------------------------------


def _revert_link(client: Client, flag: Flag, what: str) -> str:
    """The revert link of the newest timeline row whose "what" is ``what``."""
    rows = find_all(page(client.get(_timeline(flag))), data_testid="history-row")
    row = next(r for r, _ in rows if text(find_one(r, data_testid="history-what")[0]) == what)
    link, _ = find_one(row, data_testid="revert-link")
    return str(attributes(link)["href"])


def _only_form(response: Any) -> str:
    forms = [name for name in forms_of(response.content.decode()) if name != "logout-form"]
    assert len(forms) == 1, forms
    return forms[0]


def test_revert__preview_then_confirmed__rules_back_in_one_version_and_on_the_timeline(
    client: Client,
    editor: User,
    boolean_flag: Flag,
    staging: Environment,
    changed: dict[str, Any],
) -> None:
    # Given the moment the staging rule was created, then the rule deleted and staging off
    state: FlagState = changed["state"]
    client.force_login(editor)
    link = _revert_link(client, boolean_flag, "created Rule “Germans” in Staging · new-checkout")
    services.rule_delete(rule=changed["rule"], actor=editor)
    services.flag_toggle(state=FlagState.objects.get(pk=state.pk), enabled=False, actor=editor)
    version = Environment.objects.get(pk=staging.pk).ruleset_version

    # When the editor opens the revert
    preview = client.get(link)

    # Then the preview shows the whole difference, and nothing changed yet
    root = page(preview)
    assert attributes(find_one(root, data_testid="cell-enabled-after")[0])["data-differs"] == "true"
    assert "30 %" in text(find_one(root, data_testid="cell-rule-1-after")[0])
    assert text(find_one(root, data_testid="cell-rule-1-now")[0]) == "— (changes)"
    assert not state.rules.exists()

    # When they confirm, with a reason
    entries = [
        (name, "The rule was deleted by mistake" if name == "reason" else value)
        for name, value in submission(preview.content.decode(), _only_form(preview))
    ]
    done = client.post(link, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then staging is on with the rule (conditions, segment, 30 %) back, one version later,
    # and the revert heads the timeline with its reason
    assert done.status_code == 302
    state = FlagState.objects.get(pk=state.pk)
    assert state.enabled is True
    rule = state.rules.get()
    assert (rule.description, rule.rollout) == ("Germans", 30000)
    assert [c.values for c in rule.conditions.all()] == [["DE"]]
    assert list(rule.segments.values_list("key", flat=True)) == ["beta-testers"]
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 1
    assert _rows(client.get(_timeline(boolean_flag)))[0]["reason"] == (
        "The rule was deleted by mistake"
    )
    assert messages_of(done)[0].startswith("Reverted new-checkout in Staging to ")


def test_revert__changed_since_the_preview__refused_and_nothing_written(
    client: Client, editor: User, boolean_flag: Flag, changed: dict[str, Any]
) -> None:
    state: FlagState = changed["state"]
    client.force_login(editor)
    link = _revert_link(client, boolean_flag, "changed new-checkout in Staging")
    preview = client.get(link)
    services.rule_create(state=state, serve={"variant": "off"}, description="Meanwhile")
    entries = submission(preview.content.decode(), _only_form(preview))
    refused = client.post(link, encoded(entries), content_type=FORM_CONTENT_TYPE)
    assert refused.status_code == 200
    assert text(find_one(page(refused), data_testid="revert-problem")[0]).startswith(
        "Not reverted: Someone changed new-checkout in staging since you loaded it"
    )
    assert state.rules.filter(description="Meanwhile").exists()


def test_revert__editor_in_production__no_link_and_403(
    client: Client,
    editor: User,
    boolean_flag: Flag,
    production: Environment,
    changed: dict[str, Any],
) -> None:
    client.force_login(editor)
    rows = find_all(page(client.get(_timeline(boolean_flag))), data_testid="history-row")
    assert find_all(rows[0][0], data_testid="revert-link") == []  # the production toggle
    state = boolean_flag.states.get(environment=production)
    history_id = FlagState.history.filter(id=state.pk).earliest().history_id
    url = reverse("admin:flags_flagstate_revert", args=[state.pk])
    assert client.get(f"{url}?at=flagstate:{history_id}").status_code == 403
    assert client.post(f"{url}?at=flagstate:{history_id}", {}).status_code == 403


def test_revert__viewer__403(client: Client, viewer: User, changed: dict[str, Any]) -> None:
    state: FlagState = changed["state"]
    client.force_login(viewer)
    history_id = FlagState.history.filter(id=state.pk).earliest().history_id
    url = reverse("admin:flags_flagstate_revert", args=[state.pk])
    assert client.post(f"{url}?at=flagstate:{history_id}", {}).status_code == 403


def test_revert__protected_project_requiring_reasons__asks_for_one(
    client: Client,
    release_manager: User,
    boolean_flag: Flag,
    production: Environment,
    changed: dict[str, Any],
) -> None:
    services.project_update(project=production.project, actor=None, reason_required=True)
    client.force_login(release_manager)
    link = _revert_link(client, boolean_flag, "created new-checkout in Production")
    preview = client.get(link)
    refused = client.post(
        link,
        encoded(submission(preview.content.decode(), _only_form(preview))),
        content_type=FORM_CONTENT_TYPE,
    )
    assert text(find_one(page(refused), data_testid="revert-problem")[0]) == (
        "Give a reason: changes in Production are recorded with why."
    )
    assert boolean_flag.states.get(environment=production).enabled is True


def test_revert__old_simple_history_urls__lead_to_the_preview(
    client: Client, editor: User, changed: dict[str, Any]
) -> None:
    state: FlagState = changed["state"]
    client.force_login(editor)
    history_id = FlagState.history.filter(id=state.pk).earliest().history_id
    response = client.get(f"/admin/flags/flagstate/{state.pk}/history/{history_id}/")
    url = reverse("admin:flags_flagstate_revert", args=[state.pk])
    assert response["Location"] == f"{url}?at=flagstate:{history_id}"


def test_revert__flag_salt__through_flag_update_every_version_moves(
    client: Client, release_manager: User, boolean_flag: Flag
) -> None:
    # Given a flag whose salt was changed (which reshuffles users everywhere)
    original = boolean_flag.history.earliest()
    services.flag_update(flag=boolean_flag, actor=None, salt="reshuffled")
    environments = Environment.objects.filter(project=boolean_flag.project)
    before = dict(environments.values_list("key", "ruleset_version"))
    client.force_login(release_manager)

    # When the release manager reverts the flag itself to its first version
    response = client.post(
        f"/admin/flags/flag/{boolean_flag.pk}/history/{original.history_id}/",
        {
            "name": "New checkout",
            "description": "",
            "lifecycle": "release",
            "salt": "",
            "_save": "Revert",
        },
    )

    # Then the salt is back, and every environment's version moved (flag_update saw the change)
    assert response.status_code == 302
    assert Flag.objects.get(pk=boolean_flag.pk).salt == ""
    after = dict(environments.values_list("key", "ruleset_version"))
    assert {key: after[key] - before[key] for key in before} == {
        "development": 1,
        "staging": 1,
        "production": 1,
    }


def test_rule_history_urls__lead_to_the_timeline_and_the_environment_revert(
    client: Client, editor: User, changed: dict[str, Any]
) -> None:
    # Given a rule and one of its versions
    rule = changed["rule"]
    state: FlagState = changed["state"]
    version = Rule.history.filter(id=rule.pk).earliest().history_id
    client.force_login(editor)
    # When its history and simple-history's revert page of that version are opened
    listed = client.get(f"/admin/flags/rule/{rule.pk}/history/")
    reverted = client.post(f"/admin/flags/rule/{rule.pk}/history/{version}/", {"_save": "1"})
    # Then they lead to the flag's timeline and to the previewed revert: nothing is saved
    assert listed["Location"] == _timeline(state.flag, environment=state.environment_id)
    url = reverse("admin:flags_flagstate_revert", args=[state.pk])
    assert reverted["Location"] == f"{url}?at=rule:{version}"
