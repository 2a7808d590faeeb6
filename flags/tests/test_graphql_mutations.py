"""GraphQL mutations write exactly what the REST calls they stand for write.

Two flags alike; one is changed through REST, the other through GraphQL, by the same person. What
each change left behind is read back from the world, not from the API's answer: the history rows,
the state's and the environment's versions, the change events, and the webhook deliveries a real
receiver on loopback got (signed, sent by the worker's own sending code).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import documents, services
from flags.models import (
    ChangeEvent,
    ChangeRequest,
    Environment,
    Flag,
    FlagState,
    Project,
    Rule,
    WebhookDelivery,
)
from flags.webhooks import sending

from .graphql_calls import graphql
from .receiver import Receiver

RULES_REST = [
    {
        "description": "Dutch users",
        "conditions": [{"attribute": "country", "operator": "in", "values": ["NL"]}],
        "rollout": 50_000,
        "serve": {"variant": "on"},
    }
]
RULES_GRAPHQL = (
    '[{description: "Dutch users", conditions: [{attribute: "country", operator: "in", '
    'values: ["NL"]}], rollout: 50000, serve: {variant: "on"}}]'
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback."""
    with Receiver() as running:
        yield running


@pytest.fixture
def twins(project: Project, staging: Environment, receiver: Receiver) -> tuple[Flag, Flag]:
    """Two flags alike (``by-rest``, ``by-graphql``) and a webhook of the project for all events."""
    services.webhook_create(project=project, name="ops", url=receiver.url())
    flags = (
        services.flag_create(project=project, key="by-rest", name="Twin"),
        services.flag_create(project=project, key="by-graphql", name="Twin"),
    )
    while sending.send_next() is not None:  # the two flag.created deliveries: not under test
        pass
    receiver.received.clear()
    return flags


def signed_in(user: User) -> APIClient:
    """A client with ``user``'s session."""
    client = APIClient()
    client.login(username=user.username, password=PASSWORD)
    return client


def left_behind(
    flag: Flag, environment: Environment, change: Callable[[], Any], receiver: Receiver
) -> dict[str, Any]:
    """Run ``change`` and read back everything it wrote, the flag's key made generic."""
    state = FlagState.objects.get(flag=flag, environment=environment)
    versions = (state.version, Environment.objects.get(pk=environment.pk).ruleset_version)
    history_before = state.history.count()
    events_before = set(ChangeEvent.objects.values_list("pk", flat=True))
    rules_history_before = Rule.history.filter(state_id=state.pk).count()
    change()
    state.refresh_from_db()
    environment.refresh_from_db()
    events = ChangeEvent.objects.exclude(pk__in=events_before).order_by("occurred_at")
    deliveries = WebhookDelivery.objects.filter(event__in=events)
    sent = []
    while (delivery := sending.send_next()) is not None:
        sent.append(delivery)
    received = [json.loads(entry.body) for entry in receiver.received]
    receiver.received.clear()
    history = [
        (row.history_type, getattr(row.history_user, "username", None), row.enabled, row.version)
        for row in state.history.order_by("history_date", "history_id")[history_before:]
    ]
    generic = json.dumps(
        {
            "state": {"enabled": state.enabled, "version": state.version - versions[0]},
            "ruleset_version": environment.ruleset_version - versions[1],
            "history": history,
            "rule_history": Rule.history.filter(state_id=state.pk).count() - rules_history_before,
            "rules": list(state.rules.values("description", "rollout", "serve", "bucket_by")),
            "events": [
                (e.kind, e.project_key, e.environments, e.flags, e.actor_name, e.before, e.after)
                for e in events
            ],
            "deliveries": sorted(d.webhook.name for d in deliveries),
            "sent": [d.status for d in sent],
            "received": [{"type": body["type"], "data": body["data"]} for body in received],
        },
        sort_keys=True,
        default=str,
    )
    # Rule ids (strings in documents) differ between the twins by construction.
    generic = re.sub(r'"id": "\d+"', '"id": "RULE"', generic.replace(flag.key, "FLAG"))
    return json.loads(generic)  # type: ignore[no-any-return]


def test_toggle__graphql_and_rest__same_history_versions_events_and_deliveries(
    editor: User,
    staging: Environment,
    twins: tuple[Flag, Flag],
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Given two flags alike and an Editor
    by_rest, by_graphql = twins
    client = signed_in(editor)

    # When one is switched on through REST and the other through GraphQL
    def rest() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            url = "/api/v1/projects/demo/flags/by-rest/environments/staging/toggle/"
            assert client.post(url, {"enabled": True}, format="json").status_code == 200

    def mutation() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            answer = graphql(
                client,
                'mutation { toggleFlag(project: "demo", flag: "by-graphql", '
                'environment: "staging", enabled: true) { state { enabled version } } }',
            )
            assert answer.data["toggleFlag"]["state"] == {"enabled": True, "version": 2}

    through_rest = left_behind(by_rest, staging, rest, receiver)
    through_graphql = left_behind(by_graphql, staging, mutation, receiver)

    # Then both left the same behind: one history row by the Editor, one bump of each version,
    # one flag.toggled event, and one delivery the receiver got
    assert through_graphql == through_rest
    assert through_rest["history"] == [["~", "editor", True, 2]]
    assert (through_rest["state"]["version"], through_rest["ruleset_version"]) == (1, 1)
    assert [event[0] for event in through_rest["events"]] == ["flag.toggled"]
    assert through_rest["sent"] == ["delivered"]
    assert [body["type"] for body in through_rest["received"]] == ["flag.toggled"]


def test_update_state__graphql_and_rest__same_rules_history_events_and_deliveries(
    editor: User,
    staging: Environment,
    twins: tuple[Flag, Flag],
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Given two flags alike and an Editor
    by_rest, by_graphql = twins
    client = signed_in(editor)

    # When both get the same rule, switch and default through REST's PATCH and the mutation
    def rest() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.patch(
                "/api/v1/projects/demo/flags/by-rest/environments/staging/",
                {"enabled": True, "default_serve": {"variant": "off"}, "rules": RULES_REST},
                format="json",
                HTTP_IF_MATCH='"1"',
            )
            assert response.status_code == 200, response.content

    def mutation() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            answer = graphql(
                client,
                'mutation { updateFlagState(project: "demo", flag: "by-graphql", '
                'environment: "staging", expectedVersion: 1, state: {enabled: true, '
                f'defaultServe: {{variant: "off"}}, rules: {RULES_GRAPHQL}}}) '
                "{ state { enabled rules { rollout conditions { values } } } } }",
            )
            assert answer.data is not None, answer.body

    through_rest = left_behind(by_rest, staging, rest, receiver)
    through_graphql = left_behind(by_graphql, staging, mutation, receiver)

    # Then both wrote the same rule, history, versions, events and deliveries
    assert through_graphql == through_rest
    assert through_rest["rules"] == [
        {
            "description": "Dutch users",
            "rollout": 50_000,
            "serve": {"variant": "on"},
            "bucket_by": "targetingKey",
        }
    ]
    assert through_rest["rule_history"] == 1
    assert through_rest["ruleset_version"] >= 1
    assert through_rest["events"]
    assert through_rest["sent"]
    assert set(through_rest["sent"]) == {"delivered"}


def test_update_state__stale_expected_version__stale_version_and_nothing_written(
    editor: User, staging: Environment, twins: tuple[Flag, Flag]
) -> None:
    # Given a flag changed since the caller read it (version 2)
    _by_rest, flag = twins
    state = FlagState.objects.get(flag=flag, environment=staging)
    services.flag_toggle(state=state, enabled=True, actor=None)
    events = ChangeEvent.objects.count()

    # When the caller writes naming version 1
    answer = graphql(
        signed_in(editor),
        'mutation { updateFlagState(project: "demo", flag: "by-graphql", environment: "staging",'
        f" expectedVersion: 1, state: {{enabled: false, rules: {RULES_GRAPHQL}}}) "
        "{ state { version } } }",
    )

    # Then it is REST's 412 stale_version, and neither the switch nor the rules changed
    assert answer.codes == ["stale_version"]
    assert answer.error["extensions"]["status"] == 412
    state.refresh_from_db()
    assert (state.enabled, state.version, state.rules.count()) == (True, 2, 0)
    assert ChangeEvent.objects.count() == events


def test_update_state__invalid_second_rule__field_errors_and_nothing_half_written(
    editor: User, staging: Environment, twins: tuple[Flag, Flag]
) -> None:
    # Given a flag with no rules
    _by_rest, flag = twins
    state = FlagState.objects.get(flag=flag, environment=staging)

    # When two rules are written and the second names a segment that does not exist
    answer = graphql(
        signed_in(editor),
        'mutation { updateFlagState(project: "demo", flag: "by-graphql", environment: "staging",'
        ' expectedVersion: 1, state: {enabled: true, rules: [{serve: {variant: "on"}}, '
        '{serve: {variant: "on"}, segments: ["nobody"]}]}) { state { version } } }',
    )

    # Then REST's field error comes back, and the state is as it was: no rule, still off, v1
    assert answer.codes == ["invalid"]
    assert answer.error["extensions"]["errors"] == [
        {"field": "rules[1].segments", "code": "invalid", "message": "Unknown segment: nobody."}
    ]
    state.refresh_from_db()
    assert (state.enabled, state.version, state.rules.count()) == (False, 1, 0)


def test_update_state__unknown_operator__refused_by_rest_serializer(
    editor: User, staging: Environment, twins: tuple[Flag, Flag]
) -> None:
    # When a rule's condition names an operator FlagShip does not have
    answer = graphql(
        signed_in(editor),
        'mutation { updateFlagState(project: "demo", flag: "by-graphql", environment: "staging",'
        ' expectedVersion: 1, state: {rules: [{serve: {variant: "on"}, conditions: '
        '[{attribute: "a", operator: "sounds_like", values: ["x"]}]}]}) { state { version } } }',
    )

    # Then the field is named as REST names it, and nothing was written
    assert answer.codes == ["invalid"]
    [error] = answer.error["extensions"]["errors"]
    assert (error["field"], error["code"]) == ("rules[0].conditions[0].operator", "invalid_choice")
    assert FlagState.objects.get(flag=twins[1], environment=staging).version == 1


def test_toggle__environment_taking_change_requests__becomes_a_change_request(
    release_manager: User, production: Environment, twins: tuple[Flag, Flag]
) -> None:
    # Given production, which takes change requests (one approval)
    services.environment_update(environment=production, required_approvals=1, actor=None)

    # When a Release manager switches the flag on there through GraphQL
    answer = graphql(
        signed_in(release_manager),
        'mutation { toggleFlag(project: "demo", flag: "by-graphql", environment: "production", '
        'enabled: true, changeRequest: {title: "Launch"}) '
        "{ state { enabled version } changeRequest { id title status } } }",
    )

    # Then nothing changed yet: the write became a change request, as REST's 202 does
    change_request = ChangeRequest.objects.get()
    assert answer.data["toggleFlag"] == {
        "state": {"enabled": False, "version": 1},
        "changeRequest": {"id": change_request.pk, "title": "Launch", "status": "open"},
    }
    assert not FlagState.objects.get(flag=twins[1], environment=production).enabled


def test_toggle__editor_in_protected_environment__permission_denied_as_rest(
    editor: User, production: Environment, twins: tuple[Flag, Flag]
) -> None:
    # Given an Editor, who may not change protected production
    client = signed_in(editor)

    # When they switch a flag on there through both APIs
    answer = graphql(
        client,
        'mutation { toggleFlag(project: "demo", flag: "by-graphql", environment: "production", '
        "enabled: true) { state { enabled } } }",
    )
    rest = client.post(
        "/api/v1/projects/demo/flags/by-rest/environments/production/toggle/",
        {"enabled": True},
        format="json",
    )

    # Then both refuse with the same code and status, and neither flag changed
    assert rest.status_code == answer.error["extensions"]["status"] == 403
    assert answer.codes == [rest.json()["code"]]
    assert not FlagState.objects.filter(environment=production, enabled=True).exists()


def test_update_state__what_was_read_sent_back__stored_state_and_ruleset_unchanged(
    editor: User, staging: Environment, twins: tuple[Flag, Flag], beta_testers: Any
) -> None:
    # Given a state with a rule (conditions, a segment, a rollout), a prerequisite and a default
    _by_rest, flag = twins
    state = FlagState.objects.get(flag=flag, environment=staging)
    services.rule_create(
        state=state,
        serve={"variant": "on"},
        conditions=[{"attribute": "country", "operator": "in", "values": ["NL", "BE"]}],
        segments=[beta_testers],
        rollout=25_000,
        description="Benelux beta",
        actor=None,
    )
    services.prerequisite_add(state=state, parent=_by_rest, variants=["on"], actor=None)
    client = signed_in(editor)
    read = """{ flagState(project: "demo", flag: "by-graphql", environment: "staging") {
        enabled offVariant defaultServe version
        rules { description rollout bucketBy serve segments
                conditions { attribute operator values negate caseInsensitive } }
        prerequisites { flag variants } } }"""
    shown = graphql(client, read).data["flagState"]
    document = documents.environment_ruleset(staging)["flags"]["by-graphql"]

    # When exactly what was read is written back
    version = shown.pop("version")
    answer = graphql(
        client,
        """mutation($state: FlagStateInput!, $version: Int!) { updateFlagState(project: "demo",
          flag: "by-graphql", environment: "staging", expectedVersion: $version, state: $state)
          { state { version } } }""",
        {"state": shown, "version": version},
    )

    # Then the stored state reads the same, and the ruleset serves the same (rule ids aside)
    assert answer.data is not None, answer.body
    again = graphql(client, read).data["flagState"]
    again.pop("version")
    assert again == shown
    after = documents.environment_ruleset(staging)["flags"]["by-graphql"]
    assert re.sub(r'"id": "\d+"', "", json.dumps(after, sort_keys=True)) == re.sub(
        r'"id": "\d+"', "", json.dumps(document, sort_keys=True)
    )
