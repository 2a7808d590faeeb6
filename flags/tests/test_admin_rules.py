"""The rule page: conditions in words, segments, rollout in %, structured serve, services."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Condition, Environment, Flag, FlagState, Project, Rule, Segment

from .test_admin_helpers import field_errors, find_all, messages_of, page


def _add_url(state: FlagState) -> str:
    return f"/admin/flags/rule/add/?state={state.pk}"


def _change_url(rule: Rule) -> str:
    return f"/admin/flags/rule/{rule.pk}/change/"


def _conditions(rows: list[dict[str, str]], initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "conditions-TOTAL_FORMS": str(len(rows)),
        "conditions-INITIAL_FORMS": str(initial),
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data |= {f"conditions-{index}-{name}": value for name, value in row.items()}
    return data


def _rule(state: FlagState, **fields: Any) -> dict[str, Any]:
    return {
        "state": str(state.pk),
        "description": "",
        "rollout": "",
        "bucket_by": "targetingKey",
        "serve_mode": "variant",
        "serve_variant": "on",
        **fields,
    }


def _existing(rule: Rule) -> dict[str, Any]:
    conditions = list(rule.conditions.order_by("order", "id"))
    rows = [
        {
            "id": str(condition.pk),
            "rule": str(rule.pk),
            "attribute": condition.attribute,
            "operator": condition.operator,
            "values": "\n".join(condition.values),
        }
        for condition in conditions
    ]
    data = _rule(rule.state, description=rule.description, **_conditions(rows, len(rows)))
    del data["state"]
    if rule.rollout is not None:
        data["rollout"] = str(rule.rollout / 1000)
    return data


def test_rule_add__conditions_segment_rollout__created_through_rule_create(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given an editor adding a rule to new-checkout in staging
    state = boolean_flag.states.get(environment=staging)
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    client.force_login(editor)
    data = _rule(
        state,
        description="German pros",
        segments=[str(beta_testers.pk)],
        rollout="12.5",
        **_conditions(
            [
                {"attribute": "country", "operator": "in", "values": "DE\r\n AT \r\n\r\n"},
                {"attribute": "plan", "operator": "str_starts_with", "values": "pro"},
            ]
        ),
    )

    # When they save
    response = client.post(_add_url(state), data)

    # Then the rule is stored (rollout in thousandths, values one per line) with history, the
    # version moved, and the page returns to the flag state
    assert response.status_code == 302
    assert response["Location"] == f"/admin/flags/flagstate/{state.pk}/change/"
    rule = state.rules.get()
    assert (rule.description, rule.rollout, rule.serve) == ("German pros", 12500, {"variant": "on"})
    assert list(rule.segments.all()) == [beta_testers]
    assert [(c.attribute, c.operator, c.values) for c in rule.conditions.order_by("order")] == [
        ("country", "in", ["DE", "AT"]),
        ("plan", "str_starts_with", ["pro"]),
    ]
    assert rule.history.earliest().history_type == "+"
    assert {record.history_user for record in rule.history.all()} == {editor}
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 1


def test_rule_add__regex_re2_cannot_compile__message_next_to_values(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a regex condition RE2 rejects (a backreference)
    state = boolean_flag.states.get(environment=staging)
    client.force_login(editor)
    data = _rule(
        state, **_conditions([{"attribute": "email", "operator": "regex", "values": "(a)\\1"}])
    )

    # When the rule is saved
    response = client.post(_add_url(state), data)

    # Then the condition's values field carries RE2's complaint and nothing is stored
    assert response.status_code == 200
    condition = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert list(condition.errors) == ["values"]
    assert condition.errors["values"][0].startswith("RE2 cannot compile the pattern '(a)\\\\1'")
    assert not state.rules.exists()


def test_rule_change__split_not_adding_to_100__message_next_to_serve(
    client: Client, editor: User, string_flag: Flag, staging: Environment
) -> None:
    # Given a rule of banner-text
    state = string_flag.states.get(environment=staging)
    rule = services.rule_create(state=state, serve={"variant": "sale"})
    client.force_login(editor)

    # When it is given a split of 60 % + 30 %
    data = _existing(rule) | {
        "serve_mode": "split",
        "serve_weight_sale": "60",
        "serve_weight_new": "30",
    }
    response = client.post(_change_url(rule), data)

    # Then the serve field says what is wrong and the rule is unchanged
    assert response.status_code == 200
    assert field_errors(response, "serve") == ["weights must add up to 100000 (100 %), not 90000"]
    assert Rule.objects.get(pk=rule.pk).serve == {"variant": "sale"}


def test_rule_change__rollout_with_four_decimals__error_next_to_rollout(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a rule
    rule = services.rule_create(
        state=boolean_flag.states.get(environment=staging), serve={"variant": "on"}
    )
    client.force_login(editor)

    # When its rollout is set to 12.3456 %
    response = client.post(_change_url(rule), _existing(rule) | {"rollout": "12.3456"})

    # Then the rollout field explains the precision
    assert field_errors(response, "rollout") == ["Use at most 3 decimals (steps of 0.001 %)."]


def test_rule_change__condition_edited_added_and_deleted__one_by_one_through_services(
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
    client.force_login(editor)

    # When the first is edited, the second deleted and a third added
    data = _existing(rule)
    data |= {
        "conditions-0-values": "DE\nFR",
        "conditions-1-DELETE": "on",
        "conditions-TOTAL_FORMS": "3",
        "conditions-2-attribute": "appVersion",
        "conditions-2-operator": "semver_gte",
        "conditions-2-values": "2.0.0",
    }
    response = client.post(_change_url(rule), data)

    # Then each change is its own history row, by the editor (the edited one kept its id)
    assert response.status_code == 302
    assert [(c.attribute, c.values) for c in rule.conditions.order_by("order")] == [
        ("country", ["DE", "FR"]),
        ("appVersion", ["2.0.0"]),
    ]
    assert Condition.objects.get(pk=country.pk).history.latest().history_user == editor
    removed = Condition.history.filter(id=plan.pk).latest()
    assert (removed.history_type, removed.history_user) == ("-", editor)


def test_rule_delete__through_rule_delete__version_moves(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a rule and the environment's version
    rule = services.rule_create(
        state=boolean_flag.states.get(environment=staging), serve={"variant": "on"}
    )
    version = Environment.objects.get(pk=staging.pk).ruleset_version
    client.force_login(editor)

    # When it is deleted from its page
    response = client.post(f"/admin/flags/rule/{rule.pk}/delete/", {"post": "yes"})

    # Then it is gone, the deletion recorded as the editor's, and the version moved
    assert response.status_code == 302
    assert not Rule.objects.filter(pk=rule.pk).exists()
    assert Rule.history.filter(id=rule.pk).latest().history_user == editor
    assert Environment.objects.get(pk=staging.pk).ruleset_version == version + 1


def test_rule_add__editor_in_production__403(
    client: Client, editor: User, boolean_flag: Flag, production: Environment
) -> None:
    # Given an editor
    client.force_login(editor)
    state = boolean_flag.states.get(environment=production)

    # When they open or post the add page of a production rule
    shown = client.get(_add_url(state))
    posted = client.post(_add_url(state), _rule(state, **_conditions([])))

    # Then both are forbidden
    assert (shown.status_code, posted.status_code) == (403, 403)
    assert not state.rules.exists()


def test_rule_page__segments__only_the_projects_and_operators_in_words(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given a segment of another project
    other = services.project_create(key="other", name="Other")
    services.segment_create(project=other, key="elsewhere", name="Elsewhere")
    client.force_login(editor)

    # When the add page is shown
    response = client.get(_add_url(boolean_flag.states.get(environment=staging)))

    # Then only this project's segments are offered, and operators read as words
    segments = response.context["adminform"].form.fields["segments"].queryset
    assert list(segments) == [beta_testers]
    operator, _ = find_all(page(response), "select", name="conditions-0-operator")[0]
    labels = [
        str(option.children[0])
        for option in operator.children
        if not isinstance(option, str) and option.children
    ]
    assert labels[1:4] == ["is one of", "is not one of", "contains"]


def test_rule_add__without_state__sent_to_the_flag_states(
    client: Client, editor: User, project: Project
) -> None:
    # Given an editor
    client.force_login(editor)

    # When the rule add page is opened with no flag state
    response = client.get("/admin/flags/rule/add/")

    # Then they are sent to pick one, with an explanation
    assert response.status_code == 302
    assert response["Location"] == "/admin/flags/flagstate/"
    assert messages_of(response) == [
        "Open a flag's environment and use “Add a targeting rule” there."
    ]
