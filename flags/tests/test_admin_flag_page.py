"""The flag page: creating through flag_create, typed variant values, fixed keys, states."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState, Project

from .admin_pages import attributes, find_all, find_one, messages_of, page, text

ADD = "/admin/flags/flag/add/"


def _change_url(flag: Flag) -> str:
    return f"/admin/flags/flag/{flag.pk}/change/"


def _variants(rows: list[tuple[str, str, str]], initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "variants-TOTAL_FORMS": str(len(rows)),
        "variants-INITIAL_FORMS": str(initial),
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
    }
    for index, (key, name, value) in enumerate(rows):
        data |= {
            f"variants-{index}-key": key,
            f"variants-{index}-name": name,
            f"variants-{index}-value": value,
        }
    return data


def _new_flag(
    project: Project, key: str, kind: str, rows: list[tuple[str, str, str]]
) -> dict[str, Any]:
    return {
        "project": str(project.pk),
        "key": key,
        "name": key.replace("-", " ").capitalize(),
        "kind": kind,
        "description": "",
        "lifecycle": "release",
        "salt": "",
        **_variants(rows),
    }


def _change_data(flag: Flag, **changes: str) -> dict[str, Any]:
    variants = list(flag.variants.order_by("order"))
    data: dict[str, Any] = {
        "name": flag.name,
        "description": flag.description,
        "lifecycle": flag.lifecycle,
        "salt": flag.salt,
        "variants-TOTAL_FORMS": str(len(variants)),
        "variants-INITIAL_FORMS": str(len(variants)),
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
    }
    for index, variant in enumerate(variants):
        data[f"variants-{index}-id"] = str(variant.pk)
        data[f"variants-{index}-flag"] = str(flag.pk)
        data[f"variants-{index}-name"] = variant.name
    return data | changes


def test_flag_add__string_flag_with_variants__created_through_flag_create(
    client: Client, editor: User, project: Project
) -> None:
    # Given an editor filling in a string flag with two variants (plain text, no JSON quotes)
    client.force_login(editor)
    data = _new_flag(
        project, "greeting", "string", [("hello", "Hello", "Hello there"), ("empty", "", "")]
    )

    # When they save
    response = client.post(ADD, data)

    # Then the flag exists with typed values, a switched-off state in every environment, and
    # history naming them
    assert response.status_code == 302
    flag = Flag.objects.get(project=project, key="greeting")
    assert [(v.key, v.name, v.value) for v in flag.variants.order_by("order")] == [
        ("hello", "Hello", "Hello there"),
        ("empty", "", ""),
    ]
    assert sorted(flag.states.values_list("environment__key", "enabled")) == [
        ("development", False),
        ("production", False),
        ("staging", False),
    ]
    assert flag.history.get().history_user == editor


@pytest.mark.parametrize(
    ("kind", "typed", "stored"),
    [
        ("number", ["3", "2.5"], [3, 2.5]),
        ("json", ['{"limit": 10}', "[1, 2]"], [{"limit": 10}, [1, 2]]),
    ],
)
def test_flag_add__number_and_json_flags__values_read_by_kind(
    *,
    client: Client,
    editor: User,
    project: Project,
    kind: str,
    typed: list[str],
    stored: list[Any],
) -> None:
    # Given values typed as a person would
    client.force_login(editor)
    rows = [("a", "", typed[0]), ("b", "", typed[1])]

    # When the flag is saved
    response = client.post(ADD, _new_flag(project, f"{kind}-flag", kind, rows))

    # Then the values are stored as numbers / JSON
    assert response.status_code == 302
    flag = Flag.objects.get(key=f"{kind}-flag")
    assert [variant.value for variant in flag.variants.order_by("order")] == stored


def test_flag_add__number_flag_with_text_value__error_next_to_the_value(
    client: Client, editor: User, project: Project
) -> None:
    # Given a number flag whose variant value is not a number
    client.force_login(editor)

    # When it is saved
    response = client.post(ADD, _new_flag(project, "limit", "number", [("a", "", "ten")]))

    # Then the form comes back with the error on that variant's value, and nothing is created
    assert response.status_code == 200
    variants = response.context["inline_admin_formsets"][0].formset
    assert variants.forms[0].errors == {"value": ["Enter a number, such as 3 or 2.5."]}
    assert not Flag.objects.filter(key="limit").exists()


def test_flag_add__non_boolean_without_variants__error_shown_not_500(
    client: Client, editor: User, project: Project
) -> None:
    # Given a string flag with no variant rows
    client.force_login(editor)

    # When it is saved
    response = client.post(ADD, _new_flag(project, "empty", "string", []))

    # Then the service's refusal is shown on the form and nothing is created
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Give the flag at least one variant."
    ]
    assert not Flag.objects.filter(key="empty").exists()


def test_flag_add__boolean__gets_on_and_off(client: Client, editor: User, project: Project) -> None:
    # Given a boolean flag with no variant rows
    client.force_login(editor)

    # When it is saved
    response = client.post(ADD, _new_flag(project, "dark-mode", "boolean", []))

    # Then it has exactly on (true) and off (false)
    assert response.status_code == 302
    flag = Flag.objects.get(key="dark-mode")
    assert [(v.key, v.value) for v in flag.variants.order_by("order")] == [
        ("on", True),
        ("off", False),
    ]


def test_flag_page__boolean_flag__variants_fixed_key_and_kind_read_only(
    client: Client, editor: User, boolean_flag: Flag
) -> None:
    # Given an editor on a boolean flag's page
    client.force_login(editor)

    # When the page is shown
    response = client.get(_change_url(boolean_flag))

    # Then key and kind are not inputs, and the variants can be neither added nor deleted
    root = page(response)
    assert find_all(root, "input", name="key") == []
    assert find_all(root, "select", name="kind") == []
    variants = response.context["inline_admin_formsets"][0]
    assert (variants.has_add_permission, variants.has_delete_permission) == (False, False)
    assert list(variants.readonly_fields) == ["key", "value"]


def test_flag_change__key_posted__ignored_and_name_saved_through_service(
    client: Client, editor: User, boolean_flag: Flag
) -> None:
    # Given an editor posting a new name and (by tampering) a new key and kind
    client.force_login(editor)
    data = _change_data(boolean_flag, name="Newer checkout", key="hacked", kind="string")

    # When they save
    response = client.post(_change_url(boolean_flag), data)

    # Then the name changed (with history naming them) and the key and kind did not
    assert response.status_code == 302
    flag = Flag.objects.get(pk=boolean_flag.pk)
    assert (flag.key, flag.kind, flag.name) == ("new-checkout", "boolean", "Newer checkout")
    assert flag.history.latest().history_user == editor


def test_flag_change__string_variant_value_and_new_variant__through_services(
    client: Client, release_manager: User, string_flag: Flag
) -> None:
    # Given a release manager editing banner-text's "sale" value and adding a variant
    client.force_login(release_manager)
    data = _change_data(string_flag)
    sale = next(i for i, v in enumerate(string_flag.variants.order_by("order")) if v.key == "sale")
    data[f"variants-{sale}-value"] = "Spring sale!"
    for index, variant in enumerate(string_flag.variants.order_by("order")):
        if index != sale:
            data[f"variants-{index}-value"] = variant.value
    data["variants-TOTAL_FORMS"] = "4"
    data |= {"variants-3-key": "summer", "variants-3-name": "", "variants-3-value": "Sun!"}

    # When they save
    response = client.post(_change_url(string_flag), data)

    # Then both changes are stored, each with history naming them
    assert response.status_code == 302
    variants = {v.key: v for v in string_flag.variants.all()}
    assert (variants["sale"].value, variants["summer"].value) == ("Spring sale!", "Sun!")
    assert variants["sale"].history.latest().history_user == release_manager
    assert variants["summer"].history.get().history_user == release_manager


def test_flag_change__salt__version_of_every_environment_moves(
    client: Client, release_manager: User, boolean_flag: Flag, project: Project
) -> None:
    # Given each environment's ruleset version
    client.force_login(release_manager)
    before = dict(project.environments.values_list("key", "ruleset_version"))

    # When the salt is changed on the flag page
    response = client.post(_change_url(boolean_flag), _change_data(boolean_flag, salt="reshuffle"))

    # Then every environment's version moved (flag_update saw a real change)
    assert response.status_code == 302
    after = dict(project.environments.values_list("key", "ruleset_version"))
    assert {key: after[key] - before[key] for key in before} == {
        "development": 1,
        "staging": 1,
        "production": 1,
    }


def test_flag_page__states__on_off_default_serve_rules_and_links(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given new-checkout on in staging with one rule
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(state=state, serve={"variant": "on"}, rollout=25_000)
    client.force_login(viewer)

    # When the flag page is shown
    root = page(client.get(_change_url(boolean_flag)))

    # Then each environment is listed with its state and what it serves, in words, and a link
    table, _ = find_one(root, "table", **{"class": "fs-states"})
    rows = [
        [text(cell) for cell in row.children if not isinstance(cell, str)]
        for row, _ in find_all(table, "tr")
    ]
    assert rows[1:] == [
        ["Development", "Off", "everyone gets off", "Targeting →"],
        ["Staging", "On 25 %", "25 % of everyone → on; anyone else → off", "Targeting →"],
        ["Production", "Off", "everyone gets off", "Targeting →"],
    ]
    link, _ = find_one(root, "a", data_testid="state-link-staging")
    assert attributes(link)["href"] == f"/admin/flags/flagstate/{state.pk}/change/"


def test_flag_change__deleting_a_served_variant__refused_with_a_message(
    client: Client, editor: User, string_flag: Flag, staging: Environment
) -> None:
    # Given banner-text serving "sale" by default in staging
    services.flag_state_update(
        state=string_flag.states.get(environment=staging),
        actor=None,
        default_serve={"variant": "sale"},
    )
    client.force_login(editor)
    data = _change_data(string_flag)
    for index, variant in enumerate(string_flag.variants.order_by("order")):
        data[f"variants-{index}-value"] = variant.value
        if variant.key == "sale":
            data[f"variants-{index}-DELETE"] = "on"

    # When the editor deletes "sale" on the flag page
    response = client.post(_change_url(string_flag), data)

    # Then variant_delete's refusal is a message, not a 500, and the variant stays
    assert response.status_code == 302
    assert messages_of(response) == ["sale is served in demo/staging; change that first."]
    assert string_flag.variants.filter(key="sale").exists()


def test_flag_delete__archived_flag__deleted_with_its_variants_and_states(
    client: Client, release_manager: User, boolean_flag: Flag
) -> None:
    # Given an archived flag (its states still name its off variant)
    services.flag_archive(flag=boolean_flag, actor=None)
    client.force_login(release_manager)
    # When it is deleted from its page, with a reason
    flag_id = boolean_flag.pk
    response = client.post(
        f"/admin/flags/flag/{flag_id}/delete/", {"post": "yes", "reason": "Rolled out for good"}
    )
    # Then it is gone with its states and variants (the off variant did not block it)
    assert response.status_code == 302
    assert not Flag.objects.filter(pk=flag_id).exists()
    assert not FlagState.objects.filter(flag_id=flag_id).exists()
    deleted = Flag.history.model.objects.get(id=flag_id, history_type="-")
    assert (deleted.history_user, deleted.history_change_reason) == (
        release_manager,
        "Rolled out for good",
    )


def test_flag_delete__archived_flag_by_an_editor__refused_by_flag_delete_with_a_message(
    client: Client, editor: User, boolean_flag: Flag
) -> None:
    # Given an archived flag with a state in protected production
    services.flag_archive(flag=boolean_flag, actor=None)
    client.force_login(editor)
    # When an editor deletes it from its page
    response = client.post(f"/admin/flags/flag/{boolean_flag.pk}/delete/", {"post": "yes"})
    # Then flag_delete's refusal is a message on the flag's page, and the flag stays
    assert response.status_code == 302
    assert response["Location"] == _change_url(boolean_flag)
    assert messages_of(response) == [
        "Production is protected: only release managers may change flags there."
    ]
    assert Flag.objects.filter(pk=boolean_flag.pk).exists()
