"""History in the admin: who changed what, in words, and reverts that go through services."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState, Rule

from .test_admin_helpers import messages_of


def _history_url(state: FlagState) -> str:
    return f"/admin/flags/flagstate/{state.pk}/history/"


def _revert_data(state: FlagState, historical: Any) -> dict[str, Any]:
    """What simple-history's revert form posts for a historical flag state."""
    data = {
        "off_variant": str(historical.off_variant_id),
        "default_serve_mode": "variant",
        "default_serve_variant": historical.default_serve["variant"],
        "version": str(historical.version),
        "_save": "Revert",
    }
    if historical.enabled:
        data["enabled"] = "on"
    return data


def test_history__toggled_by_an_editor__changes_in_words_with_their_name(
    client: Client, editor: User, viewer: User, string_flag: Flag, staging: Environment
) -> None:
    # Given banner-text turned on in staging by the editor, then given a split
    state = string_flag.states.get(environment=staging)
    state = services.flag_toggle(state=state, enabled=True, actor=editor)
    services.flag_state_update(
        state=state,
        actor=editor,
        default_serve={
            "split": [{"variant": "sale", "weight": 50000}, {"variant": "new", "weight": 50000}]
        },
    )
    client.force_login(viewer)

    # When the viewer opens the state's history
    response = client.get(_history_url(state))

    # Then each version names the editor and says what changed, in words
    records = list(response.context["page_obj"])
    assert [record.history_user for record in records] == [editor, editor, None]
    assert records[0].history_delta_changes == [
        {"field": "Default serve", "old": "none", "new": "sale 50%, new 50%"},
        {"field": "Version", "old": "2", "new": "3"},
    ]
    assert records[1].history_delta_changes == [
        {"field": "Enabled", "old": "off", "new": "on"},
        {"field": "Version", "old": "1", "new": "2"},
    ]
    assert "editor" in response.content.decode()


def test_revert__flag_state__through_flag_state_update_version_moves(
    client: Client, release_manager: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given new-checkout turned on in production, and the version after that
    state = boolean_flag.states.get(environment=production)
    original = state.history.earliest()
    services.flag_toggle(state=state, enabled=True, actor=None)
    version = Environment.objects.get(pk=production.pk).ruleset_version
    client.force_login(release_manager)

    # When the release manager reverts to the first version (off)
    response = client.post(
        f"{_history_url(state)}{original.history_id}/", _revert_data(state, original)
    )

    # Then the flag is off again, recorded as theirs, and SDKs learn of it (version moved)
    assert response.status_code == 302
    saved = FlagState.objects.get(pk=state.pk)
    assert (saved.enabled, saved.version) == (False, 3)
    assert saved.history.latest().history_user == release_manager
    assert Environment.objects.get(pk=production.pk).ruleset_version == version + 1


def test_revert__viewer_posts__403(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a toggled flag and a viewer (who sees the history but may not revert)
    state = boolean_flag.states.get(environment=staging)
    original = state.history.earliest()
    services.flag_toggle(state=state, enabled=True, actor=None)
    client.force_login(viewer)

    # When the viewer opens the old version, then posts the revert anyway
    shown = client.get(f"{_history_url(state)}{original.history_id}/")
    posted = client.post(
        f"{_history_url(state)}{original.history_id}/", _revert_data(state, original)
    )

    # Then the page offers no revert, the post is forbidden, and the flag stays on
    assert shown.context["revert_disabled"] is True
    assert posted.status_code == 403
    assert FlagState.objects.get(pk=state.pk).enabled is True


def test_revert__editor_in_production__403(
    client: Client, editor: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given new-checkout on in production
    state = boolean_flag.states.get(environment=production)
    original = state.history.earliest()
    services.flag_toggle(state=state, enabled=True, actor=None)
    client.force_login(editor)

    # When an editor posts a revert there
    response = client.post(
        f"{_history_url(state)}{original.history_id}/", _revert_data(state, original)
    )

    # Then it is forbidden and production stays on
    assert response.status_code == 403
    assert FlagState.objects.get(pk=state.pk).enabled is True


def test_revert__rule__serve_restored_through_rule_update_version_moves(
    client: Client, editor: User, string_flag: Flag, staging: Environment
) -> None:
    # Given a rule whose serve was changed
    rule = services.rule_create(
        state=string_flag.states.get(environment=staging),
        serve={"variant": "sale"},
        description="Sale for all",
    )
    original = rule.history.earliest()
    services.rule_update(rule=rule, actor=None, serve={"variant": "new"})
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    client.force_login(editor)

    # When the editor reverts to the first version
    response = client.post(
        f"/admin/flags/rule/{rule.pk}/history/{original.history_id}/",
        {
            "description": "Sale for all",
            "rollout": "",
            "bucket_by": "targetingKey",
            "serve_mode": "variant",
            "serve_variant": "sale",
            "_save": "Revert",
        },
    )

    # Then the rule serves "sale" again, and the version moved
    assert response.status_code == 302
    assert Rule.objects.get(pk=rule.pk).serve == {"variant": "sale"}
    assert Rule.objects.get(pk=rule.pk).history.latest().history_user == editor
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 1


def test_revert__refused_by_the_service__message_not_500(
    client: Client, release_manager: User, string_flag: Flag, staging: Environment
) -> None:
    # Given a state whose old default serve names a variant since deleted
    state = string_flag.states.get(environment=staging)
    services.variant_create(flag=string_flag, key="gone", value="Bye", actor=None)
    state = services.flag_state_update(state=state, actor=None, default_serve={"variant": "gone"})
    with_gone = state.history.latest()
    state = services.flag_state_update(state=state, actor=None, default_serve={"variant": "sale"})
    services.variant_delete(variant=string_flag.variants.get(key="gone"), actor=None)
    client.force_login(release_manager)

    # When that version is reverted to (posting the vanished variant)
    response = client.post(
        f"{_history_url(state)}{with_gone.history_id}/", _revert_data(state, with_gone)
    )

    # Then the form explains instead of failing, and nothing changed
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "default_serve": ["Choose the variant to serve."]
    }
    assert FlagState.objects.get(pk=state.pk).default_serve == {"variant": "sale"}
    assert messages_of(response) == []


def test_revert__flag_salt__through_flag_update_every_version_moves(
    client: Client, release_manager: User, boolean_flag: Flag
) -> None:
    # Given a flag whose salt was changed (which reshuffles users everywhere)
    original = boolean_flag.history.earliest()
    services.flag_update(flag=boolean_flag, actor=None, salt="reshuffled")
    before = dict(Environment.objects.values_list("key", "ruleset_version"))
    client.force_login(release_manager)

    # When the release manager reverts to the first version
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
    after = dict(Environment.objects.values_list("key", "ruleset_version"))
    assert {key: after[key] - before[key] for key in before} == {
        "development": 1,
        "staging": 1,
        "production": 1,
    }
