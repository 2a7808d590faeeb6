"""'Evaluate as': every flag's value, variant, reason and matched rule for a context."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import User
from flags import services
from flags.models import Environment, Flag, Segment

from .admin_pages import find_all, find_one, page, text

URL = "/admin/flags/flag/evaluate/"


def _query(
    environment: Environment, rows: list[tuple[str, str]], context_json: str = ""
) -> dict[str, Any]:
    query: dict[str, Any] = {
        "environment": str(environment.pk),
        "context_json": context_json,
        "attr-TOTAL_FORMS": str(len(rows)),
        "attr-INITIAL_FORMS": "0",
        "attr-MIN_NUM_FORMS": "0",
        "attr-MAX_NUM_FORMS": "1000",
    }
    for index, (name, value) in enumerate(rows):
        query |= {f"attr-{index}-name": name, f"attr-{index}-value": value}
    return query


def _results(response: Any) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in response.context["results"]}


def test_evaluate__attribute_rows__variant_reason_and_rule_by_its_description(
    *,
    client: Client,
    viewer: User,
    boolean_flag: Flag,
    string_flag: Flag,
    staging: Environment,
    beta_testers: Segment,
) -> None:
    # Given new-checkout on in staging with a second rule for beta testers, and banner-text off
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(
        state=state,
        serve={"variant": "off"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["FR"]}],
        description="Not in France yet",
    )
    rule = services.rule_create(
        state=state, serve={"variant": "on"}, segments=[beta_testers], description="Beta testers"
    )
    client.force_login(viewer)

    # When a viewer asks for a beta tester from Germany
    response = client.get(
        URL,
        _query(
            staging, [("targetingKey", "user-1"), ("email", "ada@example.com"), ("country", "DE")]
        ),
    )

    # Then new-checkout is on by rule 2 (named), and banner-text serves its off variant
    assert response.status_code == 200
    results = _results(response)
    checkout = results["new-checkout"]
    assert (checkout["value"], checkout["variant"], checkout["reason"]) == (
        "true",
        "on",
        "TARGETING_MATCH",
    )
    assert checkout["rule"] == "Rule 2 — Beta testers"
    assert checkout["rule_url"] == f"/admin/flags/rule/{rule.pk}/change/"
    banner = results["banner-text"]
    assert (banner["value"], banner["variant"], banner["reason"], banner["rule"]) == (
        '""',
        "none",
        "DISABLED",
        "",
    )
    root = page(response)
    assert text(find_one(root, data_testid="rule-new-checkout")[0]) == "Rule 2 — Beta testers"
    assert text(find_one(root, data_testid="reason-banner-text")[0]) == "DISABLED"


def test_evaluate__json_context__default_when_no_rule_matches(
    client: Client, editor: User, boolean_flag: Flag, staging: Environment, beta_testers: Segment
) -> None:
    # Given new-checkout on in staging for beta testers only
    state = boolean_flag.states.get(environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    services.rule_create(state=state, serve={"variant": "on"}, segments=[beta_testers])
    client.force_login(editor)

    # When the context is given as JSON (someone not in the segment)
    response = client.get(
        URL, _query(staging, [], context_json='{"targetingKey": "u-2", "email": "bob@corp.test"}')
    )

    # Then the default serve answers, with the reason explained
    checkout = _results(response)["new-checkout"]
    assert (checkout["variant"], checkout["reason"], checkout["why"]) == (
        "off",
        "DEFAULT",
        "No rule matched: the default serve.",
    )


def test_evaluate__json_that_is_not_an_object__error_next_to_it(
    client: Client, viewer: User, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a viewer
    client.force_login(viewer)

    # When the JSON context is a list
    response = client.get(URL, _query(staging, [], context_json="[1, 2]"))

    # Then the field says so and nothing is evaluated
    assert response.context["form"].errors == {"context_json": ["Enter a JSON object ({...})."]}
    assert response.context["results"] is None


def test_evaluate__linked_from_the_flag_list_and_the_index(
    client: Client, viewer: User, boolean_flag: Flag
) -> None:
    # Given a viewer
    client.force_login(viewer)

    # When the flag list and the admin index are shown, and the form is opened unfilled
    flag_list = page(client.get("/admin/flags/flag/"))
    index = page(client.get("/admin/"))
    empty = client.get(URL)

    # Then both link to "Evaluate as", which starts with a targetingKey row and no results
    assert len(find_all(flag_list, "a", href=URL)) == 1
    assert len(find_all(index, "a", href=URL)) == 1
    assert empty.status_code == 200
    assert empty.context["results"] is None
    assert empty.context["rows"].forms[0].initial == {"name": "targetingKey"}
