"""A flag in one environment: structured default serve, rules inline, prerequisites, protection."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, FlagState

from .admin_pages import field_errors, find_all, find_one, messages_of, page, text


def _url(state: FlagState) -> str:
    return f"/admin/flags/flagstate/{state.pk}/change/"


def _data(state: FlagState, **changes: Any) -> dict[str, Any]:
    """What the page posts when saved unchanged, with ``changes`` applied (None drops a key)."""
    rules = list(state.rules.order_by("order", "id"))
    prerequisites = list(state.prerequisites.order_by("order", "id"))
    data: dict[str, Any] = {
        "enabled": "on" if state.enabled else None,
        "off_variant": str(state.off_variant_id),
        "default_serve_mode": "variant",
        "default_serve_variant": state.default_serve.get("variant", ""),
        "version": str(state.version),
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": str(len(rules)),
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
        "prerequisites-TOTAL_FORMS": str(len(prerequisites)),
        "prerequisites-INITIAL_FORMS": str(len(prerequisites)),
        "prerequisites-MIN_NUM_FORMS": "0",
        "prerequisites-MAX_NUM_FORMS": "1000",
    }
    for index, rule in enumerate(rules):
        data |= {
            f"rules-{index}-id": str(rule.pk),
            f"rules-{index}-state": str(state.pk),
            f"rules-{index}-order": str(rule.order),
        }
    for index, prerequisite in enumerate(prerequisites):
        data |= {
            f"prerequisites-{index}-id": str(prerequisite.pk),
            f"prerequisites-{index}-state": str(state.pk),
            f"prerequisites-{index}-variants": [
                f"{prerequisite.flag_id}:{key}" for key in prerequisite.variants
            ],
        }
    data |= changes
    return {key: value for key, value in data.items() if value is not None}


def test_flag_state_save__split_not_adding_to_100__engine_message_next_to_default_serve(
    client: Client, editor: User, string_flag: Flag, staging: Environment
) -> None:
    # Given an editor on banner-text in staging
    state = string_flag.states.get(environment=staging)
    client.force_login(editor)

    # When they save a default split of 50 % + 40 %
    response = client.post(
        _url(state),
        _data(
            state,
            default_serve_mode="split",
            default_serve_weight_sale="50",
            default_serve_weight_new="40",
        ),
    )

    # Then the engine's words appear next to the default serve and nothing is saved
    assert response.status_code == 200
    assert field_errors(response, "default_serve") == [
        "weights must add up to 100000 (100 %), not 90000"
    ]
    assert FlagState.objects.get(pk=state.pk).default_serve == {"variant": "none"}


def test_flag_state_save__percentages__split_stored_in_thousandths_through_service(
    client: Client, editor: User, string_flag: Flag, staging: Environment
) -> None:
    # Given the environment's version
    state = string_flag.states.get(environment=staging)
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    client.force_login(editor)

    # When a three-way split is saved with decimals
    response = client.post(
        _url(state),
        _data(
            state,
            enabled="on",
            default_serve_mode="split",
            default_serve_weight_none="33.334",
            default_serve_weight_sale="33.333",
            default_serve_weight_new="33.333",
        ),
    )

    # Then the split is stored in thousandths, through flag_state_update (history, version)
    assert response.status_code == 302
    saved = FlagState.objects.get(pk=state.pk)
    assert saved.enabled is True
    assert saved.default_serve == {
        "split": [
            {"variant": "none", "weight": 33334},
            {"variant": "sale", "weight": 33333},
            {"variant": "new", "weight": 33333},
        ]
    }
    assert saved.history.latest().history_user == editor
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 1


def test_flag_state_page__choices__only_this_flags_variants_and_no_json(
    client: Client, editor: User, string_flag: Flag, boolean_flag: Flag, staging: Environment
) -> None:
    # Given banner-text's state in staging
    state = string_flag.states.get(environment=staging)
    client.force_login(editor)

    # When its page is shown
    response = client.get(_url(state))

    # Then the off variant offers only its variants, and the default serve is a select plus
    # one percentage per variant (no JSON text area)
    form = response.context["adminform"].form
    assert [v.key for v in form.fields["off_variant"].queryset.order_by("order")] == [
        "none",
        "sale",
        "new",
    ]
    root = page(response)
    select, _ = find_one(root, "select", name="default_serve_variant")
    assert [text(option) for option in select.children if not isinstance(option, str)][1:] == [
        'none = ""',
        'sale = "Winter sale!"',
        'new = "Try our new checkout"',
    ]
    shares = [
        element
        for key in ("none", "sale", "new")
        for element, _ in find_all(root, "input", name=f"default_serve_weight_{key}")
    ]
    assert len(shares) == 3
    assert find_all(root, "textarea", name="default_serve") == []


def test_flag_state_page__protected__warning_banner(
    client: Client, release_manager: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given a release manager
    client.force_login(release_manager)

    # When production's and staging's pages are shown
    protected = page(client.get(_url(boolean_flag.states.get(environment=production))))
    unprotected = page(client.get(_url(boolean_flag.states.exclude(environment=production)[0])))

    # Then only production warns
    banner, _ = find_one(protected, data_testid="protected-banner")
    assert text(banner) == "Production is protected: changes here reach live users."
    assert find_all(unprotected, data_testid="protected-banner") == []


def test_flag_state_page__editor_in_production__read_only_and_post_forbidden(
    client: Client, editor: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given an editor on new-checkout in production
    state = boolean_flag.states.get(environment=production)
    client.force_login(editor)

    # When they open the page and then post a change anyway
    shown = client.get(_url(state))
    posted = client.post(_url(state), _data(state, enabled="on"))

    # Then the page is read-only (no inputs, serve in words) and the post is refused
    root = page(shown)
    assert find_all(root, "input", name="enabled") == []
    assert find_all(root, "input", type="submit", name="_save") == []
    assert "default_serve_text" in shown.context["adminform"].readonly_fields
    assert posted.status_code == 403
    assert FlagState.objects.get(pk=state.pk).enabled is False


def test_flag_state_save__changed_meanwhile__stale_message_and_unchanged(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a page loaded at version 1, then a toggle by someone else
    state = boolean_flag.states.get(environment=staging)
    loaded = _data(state, default_serve_variant="on")
    services.flag_toggle(state=state, enabled=True, actor=None)
    client.force_login(editor)

    # When the stale page is saved
    response = client.post(_url(state), loaded)

    # Then it is refused with a message, not a 500, and the other change stands
    assert response.status_code == 302
    assert messages_of(response) == [
        "Someone changed new-checkout in staging since you loaded it (version 1, now 2); "
        "reload and try again."
    ]
    saved = FlagState.objects.get(pk=state.pk)
    assert (saved.enabled, saved.default_serve) == (True, {"variant": "off"})


def test_flag_state_save__prerequisite_added__parent_variants_of_that_flag(
    client: Client, editor: User, boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given banner-text in staging
    state = string_flag.states.get(environment=staging)
    client.force_login(editor)

    # When new-checkout serving "on" is added as a prerequisite
    response = client.post(
        _url(state),
        _data(
            state,
            **{
                "prerequisites-TOTAL_FORMS": "1",
                "prerequisites-0-state": str(state.pk),
                "prerequisites-0-flag": str(boolean_flag.pk),
                "prerequisites-0-variants": [f"{boolean_flag.pk}:on"],
            },
        ),
    )

    # Then it is stored through prerequisite_add, with history naming the editor
    assert response.status_code == 302
    prerequisite = state.prerequisites.get()
    assert (prerequisite.flag_id, prerequisite.variants) == (boolean_flag.pk, ["on"])
    assert prerequisite.history.get().history_user == editor


def test_flag_state_save__prerequisite_with_another_flags_variant__error_next_to_variants(
    client: Client, editor: User, boolean_flag: Flag, string_flag: Flag, project: Any
) -> None:
    # Given a third flag, and banner-text's state in staging
    other = services.flag_create(project=project, key="other", name="Other")
    state = string_flag.states.get(environment__key="staging")
    client.force_login(editor)

    # When new-checkout is chosen as parent but a variant of "other" is ticked
    response = client.post(
        _url(state),
        _data(
            state,
            **{
                "prerequisites-TOTAL_FORMS": "1",
                "prerequisites-0-state": str(state.pk),
                "prerequisites-0-flag": str(boolean_flag.pk),
                "prerequisites-0-variants": [f"{other.pk}:on"],
            },
        ),
    )

    # Then the row says so and nothing is stored
    assert response.status_code == 200
    rows = response.context["inline_admin_formsets"][0].formset
    assert rows.forms[0].errors == {"variants": ["Tick only variants of new-checkout."]}
    assert not state.prerequisites.exists()


def test_flag_state_save__prerequisite_cycle__refusal_named_on_the_form_not_500(
    client: Client, editor: User, boolean_flag: Flag, string_flag: Flag, staging: Environment
) -> None:
    # Given banner-text depending on new-checkout in staging
    services.prerequisite_add(
        state=string_flag.states.get(environment=staging), parent=boolean_flag, actor=None
    )
    state = boolean_flag.states.get(environment=staging)
    client.force_login(editor)

    # When new-checkout is made to depend on banner-text
    response = client.post(
        _url(state),
        _data(
            state,
            **{
                "prerequisites-TOTAL_FORMS": "1",
                "prerequisites-0-state": str(state.pk),
                "prerequisites-0-flag": str(string_flag.pk),
            },
        ),
    )

    # Then the engine's refusal is shown on the page, naming the row, and nothing is stored
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        'Prerequisite banner-text: Flag "new-checkout": '
        "flag 'new-checkout' depends on itself through its prerequisites"
    ]
    assert not state.prerequisites.exists()
