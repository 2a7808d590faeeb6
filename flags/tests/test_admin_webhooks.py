"""Webhooks, deliveries and change events in the admin: what is stored, what a person sees.

Forms are sent back the way a browser sends them (``html_forms``); then the stored rows are read.
"""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from flags import services
from flags.delivery.changes import Kind
from flags.models import ChangeEvent, Environment, Flag, Project, Webhook, WebhookDelivery
from flags.webhooks import secrets

from .admin_pages import attributes, find_all, find_one, messages_of, page, text
from .html_forms import FORM_CONTENT_TYPE, encoded, submission

ADD = "/admin/flags/webhook/add/"
CHANGELIST = "/admin/flags/webhook/"
DELIVERIES = "/admin/flags/webhookdelivery/"
EVENTS = "/admin/flags/changeevent/"
RECEIVER = "http://127.0.0.1:9/hook"  # loopback: allowed by the test settings
SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{43}=")
PRE = re.compile(r'<pre class="fs-json">(.*?)</pre>', re.DOTALL)


def _json_shown(html: str) -> list[Any]:
    """The JSON blocks of a page, as a person reads them (unescaped), parsed."""
    return [json.loads(unescape(block)) for block in PRE.findall(html)]


def _webhook(project: Project, **given: Any) -> Webhook:
    """A webhook of ``project`` receiving every event (unless told otherwise)."""
    values: dict[str, Any] = {"name": "Relay", "url": RECEIVER, **given}
    webhook, _ = services.webhook_create(project=project, **values)
    return webhook


def _toggle(flag: Flag, environment: Environment, enabled: bool, actor: Any = None) -> None:
    state = flag.states.get(environment=environment)
    services.flag_toggle(state=state, enabled=enabled, actor=actor)


def _filled(html: str, form_id: str, submitter: str | None, **values: str | list[str]) -> str:
    """The form as a browser sends it after a person typed, chose or ticked ``values``."""
    entries = [
        (name, value) for name, value in submission(html, form_id, submitter) if name not in values
    ]
    for name, value in values.items():
        entries.extend((name, item) for item in ([value] if isinstance(value, str) else value))
    return encoded(entries)


def _shown_errors(response: Any) -> dict[str, list[str]]:
    """The errors the page shows, by the field whose row they are in ("above" for the form's)."""
    shown: dict[str, list[str]] = {}
    for element, ancestors in find_all(page(response), "ul"):
        classes = str(attributes(element).get("class") or "").split()
        if "errorlist" not in classes:
            continue
        rows = [
            name.removeprefix("field-")
            for ancestor in ancestors
            for name in str(attributes(ancestor).get("class") or "").split()
            if name.startswith("field-")
        ]
        place = rows[-1] if rows and "nonfield" not in classes else "above"
        shown.setdefault(place, []).extend(text(item) for item, _ in find_all(element, "li"))
    return shown


def _add(client: Client, **values: str | list[str]) -> Any:
    """Open the add page and save it with ``values`` as a browser would (following the redirect)."""
    html = client.get(ADD).content.decode()
    body = _filled(html, "webhook_form", "_save", **values)
    return client.post(ADD, body, content_type=FORM_CONTENT_TYPE, follow=True)


# --- Adding: the secret shown once -------------------------------------------------------------


def test_webhook_add__administrator__stored_through_the_service_secret_shown_once(
    client: Client, administrator: User, project: Project, production: Environment
) -> None:
    # Given an Administrator on the add page
    client.force_login(administrator)

    # When they subscribe a URL to toggles and rule changes in production
    response = _add(
        client,
        project=str(project.pk),
        environment=str(production.pk),
        name="Chat relay",
        url="https://hooks.example.com/flagship",
        events=["rules.changed", "flag.toggled"],
    )

    # Then the row is stored as chosen, with the secret only encrypted
    assert response.status_code == 200
    webhook = Webhook.objects.get()
    assert (webhook.project, webhook.environment, webhook.name, webhook.url) == (
        project,
        production,
        "Chat relay",
        "https://hooks.example.com/flagship",
    )
    assert (webhook.events, webhook.active, webhook.created_by) == (
        ["flag.toggled", "rules.changed"],
        True,
        administrator,
    )
    assert webhook.history.get().history_user == administrator
    # And the page shows the secret once, the one the stored ciphertext decrypts to
    html = response.content.decode()
    shown = SECRET.findall(html)
    assert len(shown) == 1
    assert [message for message in messages_of(response) if shown[0] in message] == [
        f"Copy the signing secret now; it is never shown again: {shown[0]}"
    ]
    assert shown[0] not in webhook.secret_encrypted
    assert secrets.decrypt(webhook.secret_encrypted) == shown[0]
    # And no later page shows it: only its hint
    for later in (
        f"{CHANGELIST}{webhook.pk}/change/",
        CHANGELIST,
        f"{CHANGELIST}{webhook.pk}/history/",
    ):
        again = client.get(later).content.decode()
        assert SECRET.search(again) is None, later
    assert (
        secrets.hint(shown[0]) in client.get(f"{CHANGELIST}{webhook.pk}/change/").content.decode()
    )


def test_webhook_add__events_offered_with_their_descriptions__none_ticked_is_every_type(
    client: Client, administrator: User, project: Project
) -> None:
    # Given an Administrator on the add page
    client.force_login(administrator)
    html = page(client.get(ADD))

    # When they look at the events, and save with none ticked
    labels = [text(label) for label, _ in find_all(html, "label") if "— " in text(label)]
    _add(client, project=str(project.pk), name="Everything", url=RECEIVER)

    # Then each type is offered with what it means, and the webhook takes every type
    assert "flag.toggled — a flag was switched on or off in one environment" in labels
    assert len(labels) == len(Kind)
    assert Webhook.objects.get().events == []


@pytest.mark.parametrize("url", ["http://10.0.0.5/hook", "http://169.254.169.254/latest"])
def test_webhook_add__private_address__error_next_to_the_url_nothing_stored(
    client: Client, administrator: User, project: Project, url: str
) -> None:
    # Given an Administrator on the add page
    client.force_login(administrator)

    # When they subscribe a private address
    response = _add(client, project=str(project.pk), name="Internal", url=url)

    # Then the form comes back with the refusal next to the URL, and nothing is stored
    assert response.status_code == 200
    errors = _shown_errors(response)
    assert list(errors) == ["url"]
    assert "Deliveries may not go to" in errors["url"][0]
    assert not Webhook.objects.exists()
    assert SECRET.search(response.content.decode()) is None


def test_webhook_add__environment_of_another_project__error_next_to_the_environment(
    client: Client, administrator: User, project: Project
) -> None:
    # Given another project's environment
    other = services.project_create(key="other", name="Other")
    foreign = other.environments.get(key="staging")
    client.force_login(administrator)

    # When a webhook of demo is added for it
    response = _add(
        client, project=str(project.pk), environment=str(foreign.pk), name="x", url=RECEIVER
    )

    # Then the refusal is next to the environment, and nothing is stored
    assert response.status_code == 200
    assert _shown_errors(response) == {
        "environment": ["Choose an environment of the webhook's project."]
    }
    assert not Webhook.objects.exists()


# --- Changing, rotating, testing, deleting ------------------------------------------------------


def test_webhook_change__saved__through_the_service_and_environments_of_its_project_only(
    client: Client, administrator: User, project: Project, staging: Environment
) -> None:
    # Given a webhook, and another project with its own environments
    webhook = _webhook(project, events=["flag.toggled"])
    services.project_create(key="other", name="Other")
    client.force_login(administrator)
    url = f"{CHANGELIST}{webhook.pk}/change/"
    shown = client.get(url)
    options = [
        text(option)
        for option, _ in find_all(find_one(page(shown), "select", name="environment")[0], "option")
    ]

    # When it is limited to staging, paused, and given a reason
    html = shown.content.decode()
    body = _filled(
        html,
        "webhook_form",
        "_save",
        environment=str(staging.pk),
        active=[],
        events=["flag.toggled", "rules.changed"],
        reason="Staging only for now",
    )
    response = client.post(url, body, content_type=FORM_CONTENT_TYPE)

    # Then only demo's environments were offered, and the row and its history say so
    assert options == [
        "Every environment of the project",
        "demo/development",
        "demo/staging",
        "demo/production",
    ]
    assert response.status_code == 302
    stored = Webhook.objects.get(pk=webhook.pk)
    assert (stored.environment, stored.active, stored.events) == (
        staging,
        False,
        ["flag.toggled", "rules.changed"],
    )
    assert stored.secret_encrypted == webhook.secret_encrypted
    latest = stored.history.first()
    assert (latest.history_user, latest.history_change_reason) == (
        administrator,
        "Staging only for now",
    )


def test_webhook_change__saved_unchanged__nothing_written(
    client: Client, administrator: User, project: Project, staging: Environment
) -> None:
    # Given a webhook of staging for two types
    webhook = _webhook(project, environment=staging, events=["rules.changed", "flag.toggled"])
    before = Webhook.objects.filter(pk=webhook.pk).values().get()
    client.force_login(administrator)
    url = f"{CHANGELIST}{webhook.pk}/change/"

    # When its form is sent back unchanged
    entries = submission(client.get(url).content.decode(), "webhook_form", "_save")
    response = client.post(url, encoded(entries), content_type=FORM_CONTENT_TYPE)

    # Then nothing changed, not even history
    assert response.status_code == 302
    assert Webhook.objects.filter(pk=webhook.pk).values().get() == before
    assert webhook.history.count() == 1


def test_webhook_change__private_address__error_next_to_the_url_row_unchanged(
    client: Client, administrator: User, project: Project
) -> None:
    # Given a webhook
    webhook = _webhook(project)
    client.force_login(administrator)
    url = f"{CHANGELIST}{webhook.pk}/change/"

    # When its URL is changed to a private address
    body = _filled(
        client.get(url).content.decode(), "webhook_form", "_save", url="http://10.0.0.5/"
    )
    response = client.post(url, body, content_type=FORM_CONTENT_TYPE)

    # Then the refusal is next to the URL, and the stored one is unchanged
    assert response.status_code == 200
    assert list(_shown_errors(response)) == ["url"]
    assert Webhook.objects.get(pk=webhook.pk).url == RECEIVER


def test_webhook_rotate_secret__asked_then_posted__new_secret_shown_once_and_stored_encrypted(
    client: Client, administrator: User, project: Project
) -> None:
    # Given a webhook, and an Administrator on its page
    webhook = _webhook(project)
    old = secrets.decrypt(webhook.secret_encrypted)
    client.force_login(administrator)
    change = client.get(f"{CHANGELIST}{webhook.pk}/change/")
    link = find_one(page(change), "a", data_testid="rotate-secret-link")[0]

    # When they follow "Rotate secret…" (which only asks), then confirm with a reason
    question = client.get(str(attributes(link)["href"]))
    unchanged = Webhook.objects.get(pk=webhook.pk).secret_encrypted
    body = _filled(question.content.decode(), "confirm-form", None, reason="Leaked in a log")
    response = client.post(
        str(attributes(link)["href"]), body, content_type=FORM_CONTENT_TYPE, follow=True
    )

    # Then asking changed nothing; confirming stored a new ciphertext of the secret shown once
    assert question.status_code == 200
    assert "The current secret stops working at once" in question.content.decode()
    assert unchanged == webhook.secret_encrypted
    stored = Webhook.objects.get(pk=webhook.pk)
    assert stored.secret_encrypted != webhook.secret_encrypted
    shown = SECRET.findall(response.content.decode())
    assert len(shown) == 1
    assert secrets.decrypt(stored.secret_encrypted) == shown[0] != old
    assert stored.secret_hint == secrets.hint(shown[0])
    latest = stored.history.first()
    assert (latest.history_user, latest.history_change_reason) == (
        administrator,
        "Leaked in a log",
    )
    again = client.get(f"{CHANGELIST}{webhook.pk}/change/").content.decode()
    assert SECRET.search(again) is None


def test_webhook_send_test__page_and_action__pending_webhook_test_deliveries(
    client: Client, administrator: User, project: Project
) -> None:
    # Given two webhooks filtered to toggles
    first = _webhook(project, name="First", events=["flag.toggled"])
    second = _webhook(project, name="Second", events=["flag.toggled"])
    client.force_login(administrator)
    url = f"{CHANGELIST}{first.pk}/send-test/"

    # When a test is sent from the first's page (asked, then confirmed) and by the list's action
    asked = client.get(url)
    nothing_yet = WebhookDelivery.objects.count()
    confirmed = client.post(
        url, _filled(asked.content.decode(), "confirm-form", None), content_type=FORM_CONTENT_TYPE
    )
    acted = client.post(
        CHANGELIST, {"action": "send_test", "_selected_action": [first.pk, second.pk]}, follow=True
    )

    # Then three pending webhook.test deliveries exist, whatever the webhooks' filter
    assert (asked.status_code, nothing_yet) == (200, 0)
    assert confirmed.status_code == 302
    assert confirmed["Location"] == f"{DELIVERIES}?webhook__id__exact={first.pk}"
    rows = WebhookDelivery.objects.order_by("id").values_list(
        "webhook__name", "status", "event__kind"
    )
    assert list(rows) == [
        ("First", "pending", "webhook.test"),
        ("First", "pending", "webhook.test"),
        ("Second", "pending", "webhook.test"),
    ]
    assert "Queued a test event for 2 webhook(s)." in messages_of(acted)


def test_webhook_delete__through_the_service__deliveries_go_with_it(
    client: Client, administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a webhook with a delivery
    webhook = _webhook(project)
    _toggle(boolean_flag, staging, True)
    client.force_login(administrator)
    url = f"{CHANGELIST}{webhook.pk}/delete/"

    # When it is deleted, as its confirmation page posts
    response = client.post(url, {"post": "yes", "reason": "Receiver retired"})

    # Then it and its delivery are gone, and history records who and why
    assert response.status_code == 302
    assert not Webhook.objects.exists()
    assert not WebhookDelivery.objects.exists()
    deleted = Webhook.history.get(history_type="-")
    assert (deleted.history_user, deleted.history_change_reason) == (
        administrator,
        "Receiver retired",
    )


# --- Deliveries -----------------------------------------------------------------------------


def test_webhook_page__deliveries_counted_by_status_and_linked(
    client: Client, administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a webhook with two pending deliveries and a dead one, and another webhook's delivery
    webhook = _webhook(project)
    for enabled in (True, False, True):
        _toggle(boolean_flag, staging, enabled)
    dead = WebhookDelivery.objects.order_by("id").first()
    assert dead is not None
    WebhookDelivery.objects.filter(pk=dead.pk).update(status="dead")
    other = _webhook(project, name="Other")
    services.webhook_send_test(webhook=other)
    client.force_login(administrator)

    # When the webhook's page is opened and its "dead" link followed
    change = page(client.get(f"{CHANGELIST}{webhook.pk}/change/"))
    counts = {
        status: text(find_one(change, "a", data_testid=f"deliveries-{status}")[0])
        for status in ("pending", "delivered", "dead", "all")
    }
    href = attributes(find_one(change, "a", data_testid="deliveries-dead")[0])["href"]
    listed = client.get(str(href))
    every = client.get(
        str(attributes(find_one(change, "a", data_testid="deliveries-all")[0])["href"])
    )

    # Then the counts are the webhook's, and the links list exactly its deliveries
    assert counts == {
        "pending": "2 pending",
        "delivered": "0 delivered",
        "dead": "1 dead (gave up)",
        "all": "3 in all →",
    }
    assert [row.pk for row in listed.context["cl"].result_list] == [dead.pk]
    assert {row.webhook_id for row in every.context["cl"].result_list} == {webhook.pk}
    assert every.context["cl"].result_count == 3


def test_delivery_list__columns_and_filters__bounded_queries(
    client: Client,
    administrator: User,
    project: Project,
    boolean_flag: Flag,
    staging: Environment,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    # Given deliveries of toggles and a test event
    webhook = _webhook(project)
    for enabled in (True, False, True, False):
        _toggle(boolean_flag, staging, enabled)
    services.webhook_send_test(webhook=webhook)
    client.force_login(administrator)

    # When the list is opened, and filtered by event type
    with django_assert_max_num_queries(12):
        every = client.get(DELIVERIES)
    tests = client.get(DELIVERIES, {"type": "webhook.test"})

    # Then every delivery is listed with its event type, and the filter keeps the test
    assert every.status_code == 200
    cells = [text(cell) for cell, _ in find_all(page(every), "td", **{"class": "field-event_type"})]
    assert cells == ["webhook.test", *["flag.toggled"] * 4]
    assert [row.event.kind for row in tests.context["cl"].result_list] == ["webhook.test"]


def test_delivery_redeliver__action__new_pending_delivery_with_redelivery_of(
    client: Client, administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given two dead deliveries
    _webhook(project)
    _toggle(boolean_flag, staging, True)
    _toggle(boolean_flag, staging, False)
    WebhookDelivery.objects.update(status="dead", attempts=12)
    originals = list(WebhookDelivery.objects.order_by("id"))
    client.force_login(administrator)

    # When both are redelivered from the list
    response = client.post(
        DELIVERIES,
        {"action": "redeliver", "_selected_action": [row.pk for row in originals]},
        follow=True,
    )

    # Then each has a new pending delivery of its event pointing back at it, and the page says so
    redeliveries = WebhookDelivery.objects.exclude(pk__in=[row.pk for row in originals])
    assert sorted(
        redeliveries.values_list("redelivery_of_id", "event_id", "status", "attempts")
    ) == sorted((row.pk, row.event_id, "pending", 0) for row in originals)
    assert "Queued 2 redeliveries." in messages_of(response)
    assert set(
        WebhookDelivery.objects.filter(pk__in=[r.pk for r in originals]).values_list(
            "status", flat=True
        )
    ) == {"dead"}


def test_delivery_page__read_only_with_escaped_response_and_pretty_payload__redeliver_button(
    client: Client, administrator: User, project: Project, boolean_flag: Flag, staging: Environment
) -> None:
    # Given a delivery whose receiver answered with markup
    _webhook(project)
    _toggle(boolean_flag, staging, True)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="dead",
        last_status_code=500,
        last_duration_ms=42,
        last_response="<script>alert('x')</script>",
    )
    client.force_login(administrator)
    url = f"{DELIVERIES}{delivery.pk}/change/"

    # When its page is opened, and its "Redeliver" button pressed
    response = client.get(url)
    html = response.content.decode()
    form = find_one(page(response), "form", data_testid="redeliver-form")[0]
    pressed = client.post(
        str(attributes(form)["action"]),
        {"action": "redeliver", "_selected_action": str(delivery.pk)},
    )
    refused = client.post(url, {"status": "delivered"})

    # Then the body is shown as text, the payload as indented JSON, nothing is editable
    assert response.status_code == 200
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    body = re.search(r'<pre class="fs-json fs-response">(.*?)</pre>', html, re.DOTALL)
    assert body is not None
    assert unescape(body.group(1)) == "<script>alert('x')</script>"
    assert "42 ms" in html
    assert _json_shown(html) == [delivery.event.payload()]
    assert "\n  &quot;data&quot;: {\n    &quot;before&quot;" in html  # indented
    assert 'name="_save"' not in html
    assert refused.status_code == 403
    assert pressed.status_code == 302
    assert WebhookDelivery.objects.filter(redelivery_of=delivery).count() == 1


# --- Change events ----------------------------------------------------------------------------


def test_change_events__viewer__reads_list_and_before_after_changes_nothing(
    client: Client,
    viewer: User,
    editor: User,
    project: Project,
    boolean_flag: Flag,
    staging: Environment,
) -> None:
    # Given a toggle by an editor, and a test event
    _toggle(boolean_flag, staging, True, actor=editor)
    services.webhook_send_test(webhook=_webhook(project))
    event = ChangeEvent.objects.get(kind="flag.toggled")
    client.force_login(viewer)

    # When a viewer opens the change events, filtered to toggles, and the toggle's page
    listed = client.get(EVENTS)
    toggles = client.get(EVENTS, {"type": "flag.toggled"})
    detail = client.get(f"{EVENTS}{event.pk}/change/")
    html = detail.content.decode()
    add = client.get(f"{EVENTS}add/")
    posted = client.post(f"{EVENTS}{event.pk}/change/", {"reason": "rewritten"})
    deleted = client.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"})

    # Then they see the changes (no test event), the toggle's before and after, and may not
    # add, change or delete one
    assert listed.status_code == 200
    kinds = [row.kind for row in listed.context["cl"].result_list]
    assert "flag.toggled" in kinds
    assert "webhook.test" not in kinds
    assert [row.pk for row in toggles.context["cl"].result_list] == [event.pk]
    assert detail.status_code == 200
    assert _json_shown(html) == [{"enabled": False}, {"enabled": True}]
    assert "editor" in html
    assert 'name="_save"' not in html
    assert (add.status_code, posted.status_code, deleted.status_code) == (403, 403, 403)
    assert ChangeEvent.objects.get(pk=event.pk).reason == ""


# --- Who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "editor", "release_manager"])
def test_webhooks_and_deliveries__other_roles__403(
    client: Client, role: str, request: Any, project: Project
) -> None:
    # Given a webhook with a delivery, and someone in a role below Administrator
    webhook = _webhook(project)
    delivery = services.webhook_send_test(webhook=webhook)
    client.force_login(request.getfixturevalue(role))

    # When they open or post any webhook or delivery page
    responses = [
        client.get(CHANGELIST),
        client.get(ADD),
        client.get(f"{CHANGELIST}{webhook.pk}/change/"),
        client.get(f"{CHANGELIST}{webhook.pk}/rotate-secret/"),
        client.post(f"{CHANGELIST}{webhook.pk}/rotate-secret/"),
        client.post(f"{CHANGELIST}{webhook.pk}/send-test/"),
        client.get(DELIVERIES),
        client.get(f"{DELIVERIES}{delivery.pk}/change/"),
        client.post(DELIVERIES, {"action": "redeliver", "_selected_action": [delivery.pk]}),
    ]

    # Then every one is forbidden, and nothing was written
    assert [response.status_code for response in responses] == [403] * len(responses)
    assert Webhook.objects.get().secret_encrypted == webhook.secret_encrypted
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize("model", ["webhook", "segment", "tag"])
def test_delete_confirmation_page__opened__shows_what_goes(
    project: Project, beta_testers: Any, admin_client: Client, model: str
) -> None:
    # Given a webhook, a segment and a tag
    targets = {
        "webhook": _webhook(project).pk,
        "segment": beta_testers.pk,
        "tag": services.tag_create(name="checkout").pk,
    }
    # When a superuser opens the delete page (it asks why, then lists what goes)
    response = admin_client.get(f"/admin/flags/{model}/{targets[model]}/delete/")
    # Then it answers 200 (it was a template error: truncated_unordered_list was not loaded)
    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()
