"""Webhooks, their deliveries and the change-event feed through the management API.

What is stored (the row, the encrypted secret, deliveries) and what a client sees (the secret in
the creation's and the rotation's answer only, problem details with their codes).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from flags import services
from flags.models import (
    ChangeEvent,
    Environment,
    Flag,
    Project,
    Webhook,
    WebhookDelivery,
)
from flags.tests.api_clients import client_for
from flags.webhooks import secrets

WEBHOOKS = "/api/v1/projects/demo/webhooks/"
EVENTS = "/api/v1/projects/demo/events/"
RECEIVER = "http://127.0.0.1:9/hook"  # loopback: allowed by the test settings


def signed_in(user: User) -> APIClient:
    """A client with ``user``'s session."""
    client = APIClient()
    client.login(username=user.username, password=PASSWORD)
    return client


def _webhook(project: Project, **given: Any) -> Webhook:
    """A webhook of ``project`` receiving every event (unless told otherwise)."""
    values: dict[str, Any] = {"name": "Relay", "url": RECEIVER, **given}
    webhook, _ = services.webhook_create(project=project, **values)
    return webhook


def _toggle(flag: Flag, environment: Environment, enabled: bool, actor: Any = None) -> None:
    state = flag.states.get(environment=environment)
    services.flag_toggle(state=state, enabled=enabled, actor=actor)


def _errors(response: Any) -> list[tuple[str | None, str]]:
    """The (field, code) pairs of a problem's field errors."""
    return [(error["field"], error["code"]) for error in response.json()["errors"]]


# --- Creating: the secret once, stored encrypted ---------------------------------------------


def test_webhook_create__by_administrator__stored_with_encrypted_secret_shown_once(
    administrator: User, project: Project, production: Environment
) -> None:
    # Given an Administrator
    client = signed_in(administrator)
    body = {
        "name": "Chat relay",
        "url": "https://hooks.example.com/flagship",
        "events": ["rules.changed", "flag.toggled"],
        "environment": "production",
    }

    # When they create a webhook, then read it and the list
    created = client.post(WEBHOOKS, body, format="json")
    webhook = Webhook.objects.get()
    detail = client.get(f"{WEBHOOKS}{webhook.pk}/")
    listed = client.get(WEBHOOKS)

    # Then the answer holds the secret, the row holds it only encrypted, and no later read shows it
    assert created.status_code == 201, created.content
    shown = created.json()
    secret = shown.pop("secret")
    assert secret.startswith("whsec_")
    assert shown == {
        "id": webhook.pk,
        "name": "Chat relay",
        "url": "https://hooks.example.com/flagship",
        "environment": "production",
        "events": ["flag.toggled", "rules.changed"],
        "active": True,
        "secret_hint": secrets.hint(secret),
        "created_at": shown["created_at"],
        "deliveries": {"pending": 0, "delivered": 0, "dead": 0},
    }
    assert (webhook.project, webhook.environment, webhook.created_by) == (
        project,
        production,
        administrator,
    )
    assert webhook.events == ["flag.toggled", "rules.changed"]
    assert secret not in webhook.secret_encrypted
    assert secrets.decrypt(webhook.secret_encrypted) == secret
    assert webhook.history.get().history_user == administrator
    assert detail.status_code == listed.status_code == 200
    assert detail.json() == shown
    assert listed.json()["results"] == [shown]
    for later in (detail, listed):
        assert "secret" not in later.json()
        assert secret not in later.content.decode()


@pytest.mark.parametrize("url", ["http://10.0.0.5/hook", "http://169.254.169.254/latest"])
def test_webhook_create__private_address__400_address_refused_nothing_stored(
    administrator: User, project: Project, url: str
) -> None:
    # When a webhook to a private or link-local address is created
    response = signed_in(administrator).post(WEBHOOKS, {"name": "x", "url": url}, format="json")

    # Then it is refused on the URL with its code, and nothing is stored
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert _errors(response) == [("url", "address_refused")]
    assert Webhook.objects.count() == 0


def test_webhook_create__unknown_event_type__400_invalid_event(
    administrator: User, project: Project
) -> None:
    # When a webhook is created for an event type FlagShip does not send
    response = signed_in(administrator).post(
        WEBHOOKS,
        {"name": "x", "url": RECEIVER, "events": ["flag.toggled", "flag.exploded"]},
        format="json",
    )

    # Then it is refused on the events, naming the type
    assert response.status_code == 400
    assert _errors(response) == [("events", "invalid_event")]
    assert "flag.exploded" in response.json()["errors"][0]["message"]
    assert Webhook.objects.count() == 0


def test_webhook_create__environment_of_another_project__400_invalid_environment(
    administrator: User, project: Project
) -> None:
    # Given another project with an environment demo does not have
    other = services.project_create(key="other", name="Other")
    services.environment_create(project=other, key="qa", name="QA")

    # When a webhook of demo is created for it
    response = signed_in(administrator).post(
        WEBHOOKS, {"name": "x", "url": RECEIVER, "environment": "qa"}, format="json"
    )

    # Then it is refused on the environment
    assert response.status_code == 400
    assert _errors(response) == [("environment", "invalid_environment")]
    assert Webhook.objects.count() == 0


# --- Changing, rotating, deleting -------------------------------------------------------------


def test_webhook_update__patch__stored_with_history_and_secret_kept(
    administrator: User, project: Project, staging: Environment
) -> None:
    # Given a webhook of staging for toggles
    webhook = _webhook(project, environment=staging, events=["flag.toggled"])
    ciphertext = webhook.secret_encrypted

    # When an Administrator renames it, widens it to every environment and type, and pauses it
    response = signed_in(administrator).patch(
        f"{WEBHOOKS}{webhook.pk}/",
        {"name": "Paused relay", "environment": None, "events": [], "active": False},
        format="json",
    )

    # Then the row says so, history records who, and the secret is the same
    assert response.status_code == 200, response.content
    assert response.json()["environment"] is None
    stored = Webhook.objects.get(pk=webhook.pk)
    assert (stored.name, stored.environment, stored.events, stored.active) == (
        "Paused relay",
        None,
        [],
        False,
    )
    assert stored.secret_encrypted == ciphertext
    assert stored.history.first().history_user == administrator


def test_webhook_update__put_back_what_get_showed__nothing_written(
    administrator: User, project: Project, staging: Environment
) -> None:
    # Given a webhook of staging for two event types, as the API shows it
    webhook = _webhook(project, environment=staging, events=["rules.changed", "flag.toggled"])
    client = signed_in(administrator)
    shown = client.get(f"{WEBHOOKS}{webhook.pk}/").json()
    row = Webhook.objects.values().get(pk=webhook.pk)
    history = Webhook.history.filter(id=webhook.pk).count()
    # When the same fields are PUT back
    fields = ("name", "url", "environment", "events", "active")
    response = client.put(
        f"{WEBHOOKS}{webhook.pk}/", {name: shown[name] for name in fields}, format="json"
    )
    # Then the answer is what was shown, and neither the row nor its history moved
    assert response.status_code == 200, response.content
    assert response.json() == shown
    assert Webhook.objects.values().get(pk=webhook.pk) == row
    assert Webhook.history.filter(id=webhook.pk).count() == history


def test_webhook_update__private_address__400_and_row_unchanged(
    administrator: User, project: Project
) -> None:
    # Given a webhook
    webhook = _webhook(project)

    # When its URL is changed to a private address
    response = signed_in(administrator).put(
        f"{WEBHOOKS}{webhook.pk}/", {"url": "http://10.0.0.5/hook"}, format="json"
    )

    # Then it is refused, and the stored URL is the old one
    assert response.status_code == 400
    assert _errors(response) == [("url", "address_refused")]
    assert Webhook.objects.get(pk=webhook.pk).url == RECEIVER


def test_webhook_rotate_secret__new_secret_shown_once_and_decrypts_from_the_stored_one(
    administrator: User, project: Project
) -> None:
    # Given a webhook
    webhook = _webhook(project)
    old = secrets.decrypt(webhook.secret_encrypted)
    client = signed_in(administrator)

    # When its secret is rotated
    response = client.post(f"{WEBHOOKS}{webhook.pk}/rotate-secret/")

    # Then the answer is the new secret, which the new ciphertext decrypts to, and the old is gone
    assert response.status_code == 200
    new = response.json()["secret"]
    assert response.json() == {"secret": new}
    stored = Webhook.objects.get(pk=webhook.pk)
    assert stored.secret_encrypted != webhook.secret_encrypted
    assert secrets.decrypt(stored.secret_encrypted) == new != old
    assert client.get(f"{WEBHOOKS}{webhook.pk}/").json()["secret_hint"] == secrets.hint(new)


def test_webhook_delete__204__row_and_deliveries_gone(
    administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a webhook with a delivery
    webhook = _webhook(project)
    _toggle(boolean_flag, staging, True)
    assert WebhookDelivery.objects.filter(webhook=webhook).count() == 1

    # When it is deleted
    response = signed_in(administrator).delete(f"{WEBHOOKS}{webhook.pk}/")

    # Then it and its deliveries are gone, the event stays, and history records who
    assert response.status_code == 204
    assert not Webhook.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert ChangeEvent.objects.filter(kind="flag.toggled").count() == 1
    assert Webhook.history.filter(history_type="-").get().history_user == administrator


# --- Test events, deliveries, redelivery ------------------------------------------------------


def test_webhook_test__queues_a_pending_webhook_test_delivery(
    administrator: User, project: Project
) -> None:
    # Given a webhook filtered to toggles
    webhook = _webhook(project, events=["flag.toggled"])

    # When a test is asked for
    response = signed_in(administrator).post(f"{WEBHOOKS}{webhook.pk}/test/")

    # Then one pending delivery of a webhook.test event is stored and shown
    assert response.status_code == 201, response.content
    delivery = WebhookDelivery.objects.select_related("event").get()
    assert (delivery.webhook, delivery.status, delivery.event.kind) == (
        webhook,
        "pending",
        "webhook.test",
    )
    shown = response.json()
    assert (shown["id"], shown["status"], shown["attempts"]) == (delivery.pk, "pending", 0)
    assert shown["event"] == delivery.event.payload()
    assert shown["event"]["actor"] == {"id": administrator.pk, "username": "admin"}


def test_deliveries__list__newest_first_filtered_by_status_counted_on_the_webhook(
    administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a webhook with three deliveries, the oldest dead
    webhook = _webhook(project)
    for enabled in (True, False, True):
        _toggle(boolean_flag, staging, enabled)
    oldest, middle, newest = WebhookDelivery.objects.order_by("created_at", "id")
    WebhookDelivery.objects.filter(pk=oldest.pk).update(
        status="dead", attempts=12, last_status_code=503, last_error="HTTP 503"
    )
    client = signed_in(administrator)
    url = f"{WEBHOOKS}{webhook.pk}/deliveries/"

    # When its deliveries are listed, all and dead ones, and the webhook read
    every = client.get(url)
    dead = client.get(url, {"status": "dead"})
    wrong = client.get(url, {"status": "lost"})
    counts = client.get(f"{WEBHOOKS}{webhook.pk}/").json()["deliveries"]

    # Then newest first, the filter keeps the dead one, and the webhook counts them by status
    assert every.status_code == 200
    assert [item["id"] for item in every.json()["results"]] == [newest.pk, middle.pk, oldest.pk]
    assert every.json()["count"] == 3
    [only] = dead.json()["results"]
    assert (only["id"], only["attempts"], only["last_status_code"], only["last_error"]) == (
        oldest.pk,
        12,
        503,
        "HTTP 503",
    )
    assert only["event"]["type"] == "flag.toggled"
    assert wrong.status_code == 400
    assert counts == {"pending": 2, "delivered": 0, "dead": 1}


def test_delivery_redeliver__new_pending_delivery_of_the_same_event(
    administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a dead delivery
    webhook = _webhook(project)
    _toggle(boolean_flag, staging, True)
    original = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=original.pk).update(status="dead", attempts=12)
    client = signed_in(administrator)

    # When it is redelivered
    response = client.post(f"{WEBHOOKS}{webhook.pk}/deliveries/{original.pk}/redeliver/")

    # Then a new pending delivery of the same event, due now, points back at it
    assert response.status_code == 201, response.content
    redelivery = WebhookDelivery.objects.exclude(pk=original.pk).get()
    assert (redelivery.status, redelivery.attempts, redelivery.redelivery_of_id) == (
        "pending",
        0,
        original.pk,
    )
    assert redelivery.event_id == original.event_id
    assert redelivery.next_attempt_at <= timezone.now()
    assert response.json()["id"] == redelivery.pk
    assert response.json()["redelivery_of"] == original.pk
    assert WebhookDelivery.objects.get(pk=original.pk).status == "dead"
    detail = client.get(f"{WEBHOOKS}{webhook.pk}/deliveries/{redelivery.pk}/")
    assert detail.json() == response.json()


def test_webhooks__unknown_or_another_projects_ids__404(
    administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a webhook of demo with a delivery, and a webhook of another project
    webhook = _webhook(project)
    _toggle(boolean_flag, staging, True)
    delivery = WebhookDelivery.objects.get()
    foreign = _webhook(services.project_create(key="other", name="Other"))
    client = signed_in(administrator)

    # When ids that are not demo's (or not this webhook's) are asked for
    responses = [
        client.get(f"{WEBHOOKS}999999/"),
        client.get(f"{WEBHOOKS}{foreign.pk}/"),
        client.post(f"{WEBHOOKS}{foreign.pk}/rotate-secret/"),
        client.get(f"{WEBHOOKS}{foreign.pk}/deliveries/"),
        client.get(f"/api/v1/projects/other/webhooks/{foreign.pk}/deliveries/{delivery.pk}/"),
        client.post(f"{WEBHOOKS}{webhook.pk}/deliveries/999999/redeliver/"),
    ]

    # Then each is a 404 in problem details, and nothing was written
    assert [response.status_code for response in responses] == [404] * len(responses)
    assert {response.json()["code"] for response in responses} == {"not_found"}
    assert secrets.decrypt(Webhook.objects.get(pk=foreign.pk).secret_encrypted)
    assert WebhookDelivery.objects.count() == 1


def test_webhooks_list__many_webhooks__constant_queries(
    administrator: User, project: Project, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    # Given ten webhooks, some of one environment
    staging = project.environments.get(key="staging")
    for number in range(10):
        _webhook(project, name=f"Relay {number}", environment=staging if number % 2 else None)
    client = signed_in(administrator)

    # When they are listed, Then a fixed number of queries (session, user, project, count, page)
    with django_assert_max_num_queries(8):
        response = client.get(WEBHOOKS)
    assert response.json()["count"] == 10


# --- Who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["viewer", "editor", "release_manager"])
def test_webhooks__other_roles__403_and_read_the_event_feed(
    caller: str, project: Project, staging: Environment
) -> None:
    # Given a webhook, and a person in a role below Administrator
    webhook = _webhook(project)
    client = client_for(caller, staging)

    # When they list, create, read, rotate or test webhooks, and read the event feed
    refused = [
        client.get(WEBHOOKS),
        client.post(WEBHOOKS, {"name": "x", "url": RECEIVER}, format="json"),
        client.get(f"{WEBHOOKS}{webhook.pk}/"),
        client.post(f"{WEBHOOKS}{webhook.pk}/rotate-secret/"),
        client.post(f"{WEBHOOKS}{webhook.pk}/test/"),
        client.get(f"{WEBHOOKS}{webhook.pk}/deliveries/"),
    ]
    feed = client.get(EVENTS)

    # Then webhooks are refused (nothing written) and the feed is theirs
    assert [response.status_code for response in refused] == [403] * len(refused)
    assert {response.json()["code"] for response in refused} == {"permission_denied"}
    assert Webhook.objects.get().secret_encrypted == webhook.secret_encrypted
    assert not WebhookDelivery.objects.exists()
    assert feed.status_code == 200


@pytest.mark.parametrize(
    ("caller", "webhooks", "events"),
    [
        ("server_key", 403, 403),
        ("client_key", 403, 403),
        ("admin_token", 200, 200),
        ("anonymous", 401, 401),
    ],
)
def test_webhooks__keys_and_tokens__sdk_keys_refused_admin_tokens_allowed(
    caller: str, webhooks: int, events: int, project: Project, staging: Environment
) -> None:
    # Given a caller with a key (or none)
    client = client_for(caller, staging)

    # When it lists webhooks and reads the feed
    statuses = (client.get(WEBHOOKS).status_code, client.get(EVENTS).status_code)

    # Then SDK keys are refused as on every management endpoint
    assert statuses == (webhooks, events)


# --- The change-event feed --------------------------------------------------------------------


def test_events_feed__toggles__listed_newest_first_as_webhooks_receive_them(
    editor: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given two toggles of new-checkout in staging by an editor, with a webhook test in between
    _toggle(boolean_flag, staging, True, actor=editor)
    services.webhook_send_test(webhook=_webhook(project), actor=None)
    _toggle(boolean_flag, staging, False, actor=editor)

    # When the editor reads the feed filtered to toggles
    response = signed_in(editor).get(EVENTS, {"type": "flag.toggled"})

    # Then both toggles, newest first, each exactly its payload with before and after
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 2
    off, on = page["results"]
    stored = ChangeEvent.objects.get(pk=off["id"])
    assert off == stored.payload()
    assert off["type"] == "flag.toggled"
    assert off["flags"] == ["new-checkout"]
    assert off["environments"] == [{"id": staging.pk, "key": "staging"}]
    assert off["project"] == {"id": project.pk, "key": "demo"}
    assert off["actor"] == {"id": editor.pk, "username": "editor"}
    assert (off["data"], on["data"]) == (
        {"before": {"enabled": True}, "after": {"enabled": False}},
        {"before": {"enabled": False}, "after": {"enabled": True}},
    )


def test_events_feed__filters__flag_environment_since_and_no_test_events(
    viewer: User,
    project: Project,
    boolean_flag: Flag,
    string_flag: Flag,
    staging: Environment,
    production: Environment,
) -> None:
    # Given toggles of two flags in two environments, a test event, and a moment in between
    _toggle(boolean_flag, staging, True)
    _toggle(string_flag, production, True)
    middle = timezone.now()
    _toggle(boolean_flag, production, True)
    services.webhook_send_test(webhook=_webhook(project))
    client = signed_in(viewer)

    def kinds_and_flags(**params: str) -> list[tuple[str, list[str]]]:
        answer = client.get(EVENTS, params)
        assert answer.status_code == 200, answer.content
        return [(item["type"], item["flags"]) for item in answer.json()["results"]]

    # When the viewer filters the feed, Then each filter keeps what it names
    toggled = ("flag.toggled", ["new-checkout"])
    assert kinds_and_flags(flag="new-checkout") == [
        toggled,
        toggled,
        ("flag.created", ["new-checkout"]),
    ]
    assert kinds_and_flags(environment="production", type="flag.toggled") == [
        toggled,
        ("flag.toggled", ["banner-text"]),
    ]
    assert kinds_and_flags(since=middle.isoformat()) == [toggled]
    assert kinds_and_flags(type="") == kinds_and_flags()  # an empty filter is no filter
    assert "webhook.test" not in [kind for kind, _ in kinds_and_flags()]
    assert kinds_and_flags(type="webhook.test") == []


def test_events_feed__unknown_type_or_environment__400_or_404(
    viewer: User, project: Project
) -> None:
    # When the feed is filtered by a type or an environment that does not exist
    client = signed_in(viewer)
    unknown_type = client.get(EVENTS, {"type": "flag.exploded"})
    unknown_environment = client.get(EVENTS, {"environment": "nowhere"})
    unknown_project = client.get("/api/v1/projects/nowhere/events/")
    bad_time = client.get(EVENTS, {"since": "yesterday"})

    # Then each is refused in problem details
    assert unknown_type.status_code == 400
    assert _errors(unknown_type) == [("type", "invalid_event")]
    assert unknown_environment.status_code == 404
    assert "nowhere" in unknown_environment.json()["detail"]
    assert unknown_project.status_code == 404
    assert bad_time.status_code == 400
    assert _errors(bad_time)[0][0] == "since"
