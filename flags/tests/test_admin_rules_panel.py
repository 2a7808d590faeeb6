"""Rules read and edited in place on a flag state's page: each test opens the page, changes what a
person would change in the rendered form, presses the button they would press (no JavaScript), and
reads what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.test import Client
from django.urls import reverse

from accounts.models import User
from flags import services
from flags.models import Condition, Environment, Flag, FlagState, Project, Rule, Segment

from .admin_pages import attributes, find_all, find_one, messages_of, page, text
from .footprint import footprint
from .html_forms import FORM_CONTENT_TYPE, encoded, submission

FORM = "flagstate_form"


def _url(state: FlagState, query: str = "") -> str:
    return reverse("admin:flags_flagstate_change", args=[state.pk]) + query


def _press(
    client: Client,
    shown: Any,
    button: str,
    value: str | None = None,
    *,
    changes: dict[str, str | list[str]] | None = None,
) -> Any:
    """Send the page's form as a browser does after ``changes``, with ``button`` pressed.

    ``changes`` sets fields (a list sets every value of a multi-valued field; an empty list
    unticks), ``value`` picks which of several buttons named ``button``.
    """
    html = shown.content.decode()
    entries = submission(html, FORM, None)
    if value is not None:
        entries.append((button, value))
    else:
        entries = submission(html, FORM, button)
    for name, wanted in (changes or {}).items():
        entries = [(n, v) for n, v in entries if n != name]
        entries += [(name, item) for item in ([wanted] if isinstance(wanted, str) else wanted)]
    url = shown.request["PATH_INFO"]
    return client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)


def _rules(state: FlagState) -> list[str]:
    return list(state.rules.order_by("order", "id").values_list("description", flat=True))


def _sentences(response: Any) -> list[str]:
    root = page(response)
    found = []
    for position in range(1, 20):
        matches = find_all(root, data_testid=f"rule-sentence-{position}")
        if not matches:
            break
        found.append(text(matches[0][0]))
    return found


def _three_rules(state: FlagState, segment: Segment) -> list[Rule]:
    return [
        services.rule_create(
            state=state, serve={"variant": "on"}, segments=[segment], description="Beta"
        ),
        services.rule_create(
            state=state,
            serve={"variant": "on"},
            conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
            description="Germany",
        ),
        services.rule_create(
            state=state, serve={"variant": "on"}, rollout=30000, description="Everyone 30 %"
        ),
    ]


def _version(environment: Environment) -> int:
    return Environment.objects.get(pk=environment.pk).ruleset_version


def test_panel__rules__in_order_in_words_with_positions(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given three rules
    state = boolean_flag.states.get(environment=staging)
    _three_rules(state, beta_testers)
    client.force_login(viewer)
    # When a viewer opens the state's page
    response = client.get(_url(state))
    # Then each rule reads in words, numbered from 1, and there is nothing to press
    assert _sentences(response) == [
        "If in segment Beta testers → on",
        "If country is one of DE → on",
        "30 % of everyone → on",
    ]
    assert find_all(page(response), data_testid="rule-up-2") == []
    assert find_all(page(response), data_testid="add-rule") == []


def test_add_rule__default_position__before_the_catch_all(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given two targeted rules and a 30 % catch-all in staging
    state = boolean_flag.states.get(environment=staging)
    _three_rules(state, beta_testers)
    client.force_login(editor)
    # When the editor follows "Add a rule", fills it in and adds it
    page_ = client.get(_url(state))
    href = attributes(find_one(page(page_), data_testid="add-rule")[0])["href"] or ""
    shown = client.get(_url(state, href.split("#")[0]))
    done = _press(
        client,
        shown,
        "_rule_save",
        changes={
            "rule-description": "Austria",
            "rule-conditions-0-attribute": "country",
            "rule-conditions-0-operator": "in",
            "rule-conditions-0-values": "AT",
        },
    )
    # Then it is stored before the catch-all, as rule 3
    assert done.status_code == 302
    assert _rules(state) == ["Beta", "Germany", "Austria", "Everyone 30 %"]
    assert messages_of(done) == ["Added rule 3 “Austria”."]


def test_add_rule__in_position_1_with_segment_country_and_rollout__stored_as_typed(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given a 30 % catch-all already there
    state = boolean_flag.states.get(environment=staging)
    services.rule_create(state=state, serve={"variant": "on"}, rollout=30000, description="All")
    version = _version(staging)
    client.force_login(editor)
    # When a rule is inserted in position 1 with a segment, a country condition and 12.5 %
    shown = client.get(_url(state, "?insert=0"))
    done = _press(
        client,
        shown,
        "_rule_save",
        changes={
            "rule-description": "German beta testers",
            "rule-segments": [str(beta_testers.pk)],
            "rule-rollout": "12.5",
            "rule-conditions-0-attribute": "country",
            "rule-conditions-0-operator": "in",
            "rule-conditions-0-values": "DE\r\n AT \r\n\r\n",
        },
    )
    # Then it is first, stored exactly, by the editor, and the version moved once
    assert done.status_code == 302
    rule = state.rules.order_by("order").first()
    assert rule is not None
    assert (rule.description, rule.rollout, rule.serve) == (
        "German beta testers",
        12500,
        {"variant": "on"},
    )
    assert list(rule.segments.all()) == [beta_testers]
    assert [(c.attribute, c.operator, c.values) for c in rule.conditions.all()] == [
        ("country", "in", ["DE", "AT"])
    ]
    assert {row.history_user for row in rule.history.all()} == {editor}
    assert _version(staging) == version + 1


def test_move_buttons__rule_3_up__order_changes_once(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given three rules
    state = boolean_flag.states.get(environment=staging)
    rules = _three_rules(state, beta_testers)
    version = _version(staging)
    client.force_login(editor)
    # When "↑ Up" of rule 2 is pressed
    shown = client.get(_url(state))
    done = _press(client, shown, "_rule_action", f"up:{rules[1].pk}")
    # Then rules 1 and 2 swapped, recorded as the editor's, with one version
    assert done.status_code == 302
    assert done["Location"] == _url(state, "#rules")
    assert _rules(state) == ["Germany", "Beta", "Everyone 30 %"]
    assert _version(staging) == version + 1
    assert messages_of(done) == ["Moved rule 2 “Germany” to position 1."]


def test_duplicate_and_delete__through_services(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given three rules
    state = boolean_flag.states.get(environment=staging)
    rules = _three_rules(state, beta_testers)
    client.force_login(editor)
    # When rule 2 is duplicated, then rule 1 deleted
    _press(client, client.get(_url(state)), "_rule_action", f"duplicate:{rules[1].pk}")
    _press(client, client.get(_url(state)), "_rule_action", f"delete:{rules[0].pk}")
    # Then the copy follows its original with the same conditions, and rule 1 is gone
    assert _rules(state) == ["Germany", "Germany (copy)", "Everyone 30 %"]
    copy = state.rules.get(description="Germany (copy)")
    assert [c.values for c in copy.conditions.all()] == [["DE"]]
    deleted = Rule.history.model.objects.get(id=rules[0].pk, history_type="-")
    assert deleted.history_user == editor


def test_edit_in_place__condition_changed_added_and_removed__one_version(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a rule with two conditions
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state,
        serve={"variant": "on"},
        conditions=[
            {"attribute": "country", "operator": "in", "values": ["DE"]},
            {"attribute": "plan", "operator": "in", "values": ["pro"]},
        ],
    )
    country, plan = rule.conditions.order_by("order")
    version = _version(staging)
    client.force_login(editor)
    # When its form is opened in place, the first edited, the second removed, a third added
    shown = client.get(_url(state, f"?rule={rule.pk}"))
    assert find_all(page(shown), data_testid="rule-editor") != []
    done = _press(
        client,
        shown,
        "_rule_save",
        changes={
            "rule-conditions-0-values": "DE\r\nFR",
            "rule-conditions-1-DELETE": "on",
            "rule-conditions-2-attribute": "appVersion",
            "rule-conditions-2-operator": "semver_gte",
            "rule-conditions-2-values": "2.0.0",
        },
    )
    # Then the first kept its id (its history reads as a change), one version moved
    assert done.status_code == 302
    assert next((c.pk, c.attribute, c.values) for c in rule.conditions.order_by("order")) == (
        country.pk,
        "country",
        ["DE", "FR"],
    )
    assert [c.attribute for c in rule.conditions.order_by("order")] == ["country", "appVersion"]
    assert Condition.history.filter(id=country.pk).latest().history_type == "~"
    assert Condition.history.filter(id=plan.pk).latest().history_type == "-"
    assert _version(staging) == version + 1


def test_edit_in_place__re2_cannot_compile__error_next_to_values_and_nothing_stored(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    state = boolean_flag.states.get(environment=staging)
    client.force_login(editor)
    before = footprint()
    shown = client.get(_url(state, "?insert=0"))
    refused = _press(
        client,
        shown,
        "_rule_save",
        changes={
            "rule-conditions-0-attribute": "email",
            "rule-conditions-0-operator": "regex",
            "rule-conditions-0-values": "(a)\\1",
        },
    )
    assert refused.status_code == 200
    editor_box = find_one(page(refused), data_testid="rule-editor")[0]
    errors = [text(e) for e, _ in find_all(editor_box, "ul", **{"class": "errorlist"})]
    assert any(error.startswith("RE2 cannot compile the pattern '(a)\\\\1'") for error in errors)
    assert footprint() == before


def test_edit_in_place__split_not_adding_to_100__error_in_the_rule(
    client: Client, editor: User, string_flag: Flag, staging: Environment
) -> None:
    state = string_flag.states.get(environment=staging)
    rule = services.rule_create(state=state, serve={"variant": "sale"})
    client.force_login(editor)
    shown = client.get(_url(state, f"?rule={rule.pk}"))
    refused = _press(
        client,
        shown,
        "_rule_save",
        changes={
            "rule-serve_mode": "split",
            "rule-serve_weight_sale": "60",
            "rule-serve_weight_new": "30",
        },
    )
    assert refused.status_code == 200
    editor_box = find_one(page(refused), data_testid="rule-editor")[0]
    assert "weights must add up to 100000 (100 %), not 90000" in text(editor_box)
    assert Rule.objects.get(pk=rule.pk).serve == {"variant": "sale"}


def test_edit_in_place__rollout_with_four_decimals__error_next_to_rollout(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(state=state, serve={"variant": "on"})
    client.force_login(editor)
    shown = client.get(_url(state, f"?rule={rule.pk}"))
    refused = _press(client, shown, "_rule_save", changes={"rule-rollout": "12.3456"})
    editor_box = find_one(page(refused), data_testid="rule-editor")[0]
    assert "Use at most 3 decimals (steps of 0.001 %)." in text(editor_box)
    assert Rule.objects.get(pk=rule.pk).rollout is None


def test_rule_action__page_loaded_before_another_change__refused_and_nothing_moves(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given the page loaded, then someone else adds a rule
    state = boolean_flag.states.get(environment=staging)
    rules = _three_rules(state, beta_testers)
    client.force_login(editor)
    shown = client.get(_url(state))
    services.rule_create(state=state, serve={"variant": "off"}, description="Meanwhile")
    # When "↓ Down" of rule 1 is pressed on the stale page
    response = _press(client, shown, "_rule_action", f"down:{rules[0].pk}")
    # Then it is refused with the reason, and the order is unchanged
    assert messages_of(response)[0].startswith("Someone changed new-checkout in staging")
    assert _rules(state) == ["Beta", "Germany", "Everyone 30 %", "Meanwhile"]


def test_rule_action__protected_project_requiring_reasons__needs_one_then_recorded(
    client: Client,
    release_manager: User,
    boolean_flag: Flag,
    production: Environment,
    beta_testers: Segment,
) -> None:
    # Given production requiring reasons, with three rules
    services.project_update(project=production.project, actor=None, reason_required=True)
    state = boolean_flag.states.get(environment=production)
    rules = _three_rules(state, beta_testers)
    client.force_login(release_manager)
    # When a rule is deleted without a reason
    refused = _press(client, client.get(_url(state)), "_rule_action", f"delete:{rules[2].pk}")
    # Then the reason field says so, and the rule is still there
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["reason"] == [
        "Give a reason: changes in Production are recorded with why."
    ]
    assert len(_rules(state)) == 3
    # When it is deleted with one
    _press(
        client,
        client.get(_url(state)),
        "_rule_action",
        f"delete:{rules[2].pk}",
        changes={"reason": "The 30 % test is over"},
    )
    # Then the deletion is recorded with it
    row = Rule.history.model.objects.get(id=rules[2].pk, history_type="-")
    assert row.history_change_reason == "The 30 % test is over"


def test_rule_pages__change_and_add_urls__open_the_state_page_in_place(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, project: Project
) -> None:
    state = boolean_flag.states.get(environment=staging)
    rule = services.rule_create(state=state, serve={"variant": "on"})
    client.force_login(editor)
    change = client.get(f"/admin/flags/rule/{rule.pk}/change/")
    add = client.get(f"/admin/flags/rule/add/?state={state.pk}")
    nowhere = client.get("/admin/flags/rule/add/")
    assert change["Location"] == _url(state, f"?rule={rule.pk}#rule-editor")
    assert add["Location"] == _url(state, "?insert=0#rule-editor")  # before the catch-all
    assert nowhere["Location"] == "/admin/flags/flagstate/"
    assert messages_of(nowhere) == ["Open a flag's environment and use “Add a rule” there."]


def test_editor__production_page__no_rule_controls_and_actions_refused(
    client: Client, editor: User, boolean_flag: Flag, production: Environment
) -> None:
    state = boolean_flag.states.get(environment=production)
    rule = services.rule_create(state=state, serve={"variant": "on"})
    client.force_login(editor)
    shown = client.get(_url(state))
    posted = client.post(_url(state), {"_rule_action": f"delete:{rule.pk}"})
    assert find_all(page(shown), data_testid="rule-delete-1") == []
    assert posted.status_code == 403
    assert state.rules.filter(pk=rule.pk).exists()


def test_editor_form__segments_of_the_project_only_and_operators_in_words(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    other = services.project_create(key="other", name="Other")
    services.segment_create(project=other, key="elsewhere", name="Elsewhere")
    client.force_login(editor)
    shown = client.get(_url(boolean_flag.states.get(environment=staging), "?insert=0"))
    root = page(shown)
    segments = [attributes(e)["value"] for e, _ in find_all(root, "input", name="rule-segments")]
    assert segments == [str(beta_testers.pk)]
    operator = find_one(root, "select", name="rule-conditions-0-operator")[0]
    labels = [text(option) for option in _options(operator.children)]
    assert labels[1:4] == ["is one of", "is not one of", "contains"]


def _options(children: Iterable[Any]) -> list[Any]:
    return [child for child in children if not isinstance(child, str) and child.name == "option"]


def test_new_rule_open_untouched__page_saved__no_rule_added(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given the page with an empty new rule open
    state = boolean_flag.states.get(environment=staging)
    client.force_login(editor)
    shown = client.get(_url(state, "?insert=0"))
    # When the page's own "Save" is pressed
    done = _press(client, shown, "_save")
    # Then no rule was added (an untouched new rule would serve everyone "on")
    assert done.status_code == 302
    assert not state.rules.exists()


def test_state_page__switch_default_prerequisite_and_rule_saved_together__one_version(
    client: Client, editor: User, string_flag: Flag, boolean_flag: Flag, staging: Environment
) -> None:
    # Given banner-text in staging with a rule of two conditions
    state = string_flag.states.get(environment=staging)
    rule = services.rule_create(
        state=state,
        serve={"variant": "sale"},
        conditions=[
            {"attribute": "country", "operator": "in", "values": ["DE"]},
            {"attribute": "plan", "operator": "in", "values": ["pro"]},
        ],
    )
    version = _version(staging)
    client.force_login(editor)
    # When, with the rule's form open, the editor switches it on, serves "new" by default, adds
    # new-checkout as a prerequisite, edits a condition, removes one, adds one, and saves once
    shown = client.get(_url(state, f"?rule={rule.pk}"))
    done = _press(
        client,
        shown,
        "_save",
        changes={
            "enabled": "on",
            "default_serve_variant": "new",
            "prerequisites-TOTAL_FORMS": "1",
            "prerequisites-0-state": str(state.pk),
            "prerequisites-0-flag": str(boolean_flag.pk),
            "prerequisites-0-variants": [f"{boolean_flag.pk}:on"],
            "rule-conditions-0-values": "DE\r\nFR",
            "rule-conditions-1-DELETE": "on",
            "rule-conditions-2-attribute": "appVersion",
            "rule-conditions-2-operator": "semver_gte",
            "rule-conditions-2-values": "2.0.0",
        },
    )
    # Then everything is stored, and staging's ruleset version moved once
    assert done.status_code == 302
    saved = FlagState.objects.get(pk=state.pk)
    assert (saved.enabled, saved.default_serve) == (True, {"variant": "new"})
    assert list(saved.prerequisites.values_list("flag_id", "variants")) == [
        (boolean_flag.pk, ["on"])
    ]
    assert [(c.attribute, c.values) for c in rule.conditions.order_by("order")] == [
        ("country", ["DE", "FR"]),
        ("appVersion", ["2.0.0"]),
    ]
    assert _version(staging) == version + 1
