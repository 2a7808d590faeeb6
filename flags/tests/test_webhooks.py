"""Webhooks in one process: the outbox, signatures, retries and refusals, against a real receiver.

Deliveries are sent by ``flags.webhooks.sending.send_next`` (what each worker thread runs) to a
real HTTP server on loopback (``flags.tests.receiver``); what is asserted is what the receiver got
and what the database holds afterwards. Several workers, crashes and hangs:
``test_webhook_workers.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import standardwebhooks
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from accounts import roles
from accounts.tests.factories import make_user
from flags import services
from flags.delivery.changes import Kind
from flags.models import (
    ChangeEvent,
    Environment,
    Flag,
    FlagState,
    Project,
    Webhook,
    WebhookDelivery,
)
from flags.webhooks import http, secrets, sending, signing
from flags.webhooks.addresses import AddressRefusedError, check_url, resolve

from .receiver import Receiver

Status = WebhookDelivery.Status


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on loopback."""
    with Receiver() as running:
        yield running


@pytest.fixture
def quick_retries() -> Iterator[None]:
    """Retries due at once (the backoff itself is tested on its own)."""
    with override_settings(
        FLAGSHIP_WEBHOOK_BACKOFF_SECONDS=0.0, FLAGSHIP_WEBHOOK_MAX_BACKOFF_SECONDS=0.0
    ):
        yield


def _hook(project: Project, receiver: Receiver, **options: object) -> tuple[Webhook, str]:
    return services.webhook_create(
        project=project,
        name=str(options.pop("name", "ops")),
        url=str(options.pop("url", receiver.url())),
        **options,  # type: ignore[arg-type]  # the service's keyword arguments
    )


def _state(flag: Flag, environment: Environment) -> FlagState:
    return flag.states.get(environment=environment)


def _send_all() -> list[WebhookDelivery]:
    sent = []
    while (delivery := sending.send_next()) is not None:
        sent.append(delivery)
    return sent


# --- The outbox --------------------------------------------------------------------------------


def test_toggle__matching_webhook__one_pending_delivery_in_the_same_transaction(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a webhook of the project for every event
    hook, _secret = _hook(project, receiver)
    # When the flag is switched on in staging
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # Then one flag.toggled event is stored with before/after, and one delivery waits for it
    event = ChangeEvent.objects.get(kind=Kind.FLAG_TOGGLED)
    assert event.flags == ["new-checkout"]
    assert event.environments == [{"id": staging.pk, "key": "staging"}]
    assert (event.before, event.after) == ({"enabled": False}, {"enabled": True})
    [delivery] = WebhookDelivery.objects.filter(event=event)
    assert (delivery.webhook, delivery.status, delivery.attempts) == (hook, Status.PENDING, 0)


def test_write_rolled_back__no_event_and_no_delivery(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a webhook
    _hook(project, receiver)
    events = ChangeEvent.objects.count()

    # When a toggle's transaction rolls back after the service returned
    def toggle_then_fail() -> None:
        with transaction.atomic():
            services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
            raise RuntimeError("the caller failed after the write")

    with pytest.raises(RuntimeError):
        toggle_then_fail()
    # Then neither the event nor a delivery exists: nobody hears of a change that never was
    assert ChangeEvent.objects.count() == events
    assert not WebhookDelivery.objects.exists()


def test_filters__event_type_and_environment__only_matching_webhooks_get_deliveries(
    project: Project,
    staging: Environment,
    production: Environment,
    boolean_flag: Flag,
    receiver: Receiver,
) -> None:
    # Given webhooks for toggles only, for rules only, for production only, and inactive
    toggles, _ = _hook(project, receiver, name="toggles", events=[Kind.FLAG_TOGGLED])
    rules, _ = _hook(project, receiver, name="rules", events=[Kind.RULES_CHANGED])
    prod, _ = _hook(project, receiver, name="prod", environment=production)
    _hook(project, receiver, name="paused", active=False)
    # When the flag is toggled in staging, then its rules change in production
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    services.rule_create(
        state=_state(boolean_flag, production), serve={"variant": "on"}, actor=None
    )
    # Then the toggle went to "toggles" alone, and the rule change to "rules" and "prod"
    sent = {
        (delivery.event.kind, delivery.webhook.name)
        for delivery in WebhookDelivery.objects.select_related("event", "webhook")
    }
    assert sent == {
        (Kind.FLAG_TOGGLED, toggles.name),
        (Kind.RULES_CHANGED, rules.name),
        (Kind.RULES_CHANGED, prod.name),
    }


def test_every_kind_of_write__one_event_each_with_actor_and_reason(
    project: Project, staging: Environment, string_flag: Flag
) -> None:
    # Given a person
    ann = make_user(username="ann", role=roles.RELEASE_MANAGER)
    # When she makes one write of each kind, giving a reason
    from flags.history.recording import reason  # noqa: PLC0415  # the API under test

    state = _state(string_flag, staging)
    before = ChangeEvent.objects.count()
    with reason("ticket FS-12"):
        services.flag_update(flag=string_flag, actor=ann, description="Shown on top")
        services.flag_toggle(state=state, enabled=True, actor=ann)
        services.flag_state_update(state=state, actor=ann, default_serve={"variant": "sale"})
        rule = services.rule_create(state=state, serve={"variant": "new"}, actor=ann)
        services.rule_delete(rule=rule, actor=ann)
        segment = services.segment_create(project=project, key="eu", name="EU", actor=ann)
        services.segment_update(
            segment=segment,
            actor=ann,
            conditions=[{"attribute": "country", "operator": "in", "values": ["DE"]}],
        )
        services.variant_update(
            variant=string_flag.variants.get(key="sale"), actor=ann, value="Sale!"
        )
        services.flag_archive(flag=string_flag, actor=ann)
    # Then each wrote one event naming her and the reason, in order
    events = list(ChangeEvent.objects.order_by("occurred_at")[before:])
    assert [event.kind for event in events] == [
        Kind.FLAG_UPDATED,
        Kind.FLAG_TOGGLED,
        Kind.RULES_CHANGED,
        Kind.RULES_CHANGED,
        Kind.RULES_CHANGED,
        Kind.SEGMENT_CHANGED,
        Kind.SEGMENT_CHANGED,
        Kind.FLAG_UPDATED,
        Kind.FLAG_ARCHIVED,
    ]
    assert {(event.actor_name, event.reason) for event in events} == {("ann", "ticket FS-12")}
    # And before/after say what changed
    data = [(_data(event.before), _data(event.after)) for event in events]
    described, _, served, created, deleted, _, conditioned, revalued, archived = data
    assert (described[0]["description"], described[1]["description"]) == ("", "Shown on top")
    assert served[0]["default_serve"] != served[1]["default_serve"]
    assert (len(created[0].get("rules", [])), len(created[1]["rules"])) == (0, 1)
    assert (len(deleted[0]["rules"]), len(deleted[1].get("rules", []))) == (1, 0)
    assert conditioned[1]["conditions"][0]["attribute"] == "country"
    sale = next(v for v in revalued[1]["variants"] if v["key"] == "sale")
    assert sale["value"] == "Sale!"
    assert (archived[0]["archived"], archived[1]["archived"]) == (False, True)


def _data(value: object) -> dict[str, Any]:
    """An event's before or after as a dict (``{}`` for none: a creation's before)."""
    if value is None:
        return {}
    assert isinstance(value, dict)
    return value


def test_api_key_issue_and_revoke__events_without_the_secret(
    project: Project, staging: Environment
) -> None:
    # Given nothing
    from accounts.services import api_key_issue, api_key_revoke  # noqa: PLC0415

    # When a server key is issued and revoked
    key, secret = api_key_issue(kind="server", name="checkout", environment=staging)
    api_key_revoke(key=key)
    # Then both events exist, name the key, and never hold its secret
    issued = ChangeEvent.objects.get(kind=Kind.API_KEY_ISSUED)
    revoked = ChangeEvent.objects.get(kind=Kind.API_KEY_REVOKED)
    assert _data(issued.after)["name"] == "checkout"
    assert _data(revoked.after)["revoked_at"] is not None
    stored = json.dumps([issued.payload(), revoked.payload()])
    assert secret not in stored
    assert key.secret_hash not in stored


def test_nothing_changed__no_event(staging: Environment, boolean_flag: Flag) -> None:
    # Given a flag that is off
    before = ChangeEvent.objects.count()
    # When it is switched off again and its name saved unchanged
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=False, actor=None)
    services.flag_update(flag=boolean_flag, actor=None, name=boolean_flag.name)
    # Then no event was emitted
    assert ChangeEvent.objects.count() == before


# --- Sending -------------------------------------------------------------------------------------


def test_delivery__signed_json__verified_by_the_standard_webhooks_library(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a webhook and a toggle
    _hook_row, secret = _hook(project, receiver)
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker sends it
    [delivery] = _send_all()
    # Then the receiver got the event as JSON with its id in webhook-id
    [got] = receiver.received
    event = got.event
    assert got.headers["content-type"] == "application/json"
    assert event["id"] == got.event_id == str(delivery.event_id)
    assert (event["type"], event["flags"]) == ("flag.toggled", ["new-checkout"])
    assert event["data"] == {"before": {"enabled": False}, "after": {"enabled": True}}
    # And the Standard Webhooks reference library (not ours) accepts the signature
    verified = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
    assert verified["id"] == event["id"]
    # And a tampered body or another secret is refused by it
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(got.body.replace(b"true", b"false"), got.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secrets.new_secret()).verify(got.body, got.headers)
    # And the delivery is stored as delivered after one attempt, with the answer
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Status.DELIVERED,
        1,
        200,
    )
    assert delivery.last_response == '{"ok": true}'


def test_500_then_200__retried_and_delivered(
    project: Project,
    staging: Environment,
    boolean_flag: Flag,
    receiver: Receiver,
    quick_retries: None,
) -> None:
    # Given a receiver that fails once with 500
    _hook(project, receiver)
    receiver.answer(500)
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker sends what is due, twice
    _send_all()
    # Then it was sent twice with the same event id, and is delivered after two attempts
    assert len(receiver.received) == 2
    assert receiver.ids()[0] == receiver.ids()[1]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Status.DELIVERED,
        2,
        200,
    )


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422, 301])
def test_other_4xx_or_redirect__not_retried__dead_after_one_attempt(
    project: Project,
    staging: Environment,
    boolean_flag: Flag,
    receiver: Receiver,
    quick_retries: None,
    status: int,
) -> None:
    # Given a receiver that answers 4xx (or a redirect, never followed)
    _hook(project, receiver)
    receiver.answer(status, times=5)
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker sends everything due
    _send_all()
    # Then it was sent once, and the delivery is dead with that status
    assert len(receiver.received) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Status.DEAD,
        1,
        status,
    )


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_answers__retried_up_to_the_limit__then_dead(
    project: Project,
    staging: Environment,
    boolean_flag: Flag,
    receiver: Receiver,
    quick_retries: None,
    status: int,
) -> None:
    # Given a receiver that always fails with a retryable status, and a limit of 3 attempts
    _hook(project, receiver)
    receiver.answer(status, times=10)
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker sends everything due
    with override_settings(FLAGSHIP_WEBHOOK_MAX_ATTEMPTS=3):
        _send_all()
    # Then it tried three times and gave up
    assert len(receiver.received) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 3)


def test_429_retry_after__next_attempt_waits_that_long(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a receiver that answers 429 with Retry-After: 120
    _hook(project, receiver)
    receiver.answer(429, headers={"Retry-After": "120"})
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker sends it
    started = timezone.now()
    _send_all()
    # Then the delivery is pending, due 120 s later (not the 5 s backoff), and not sent again now
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.PENDING
    wait = (delivery.next_attempt_at - started).total_seconds()
    assert 119 <= wait <= 122
    assert sending.send_next() is None
    # And once that time has come it is sent again
    assert sending.send_next(now=delivery.next_attempt_at + timedelta(seconds=1)) is not None
    assert len(receiver.received) == 2


def test_receiver_down__connection_error_retried_with_growing_backoff(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a receiver that is down
    _hook(project, receiver)
    receiver.down()
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker tries four times, each time when the delivery is due
    waits = []
    for _ in range(4):
        delivery = WebhookDelivery.objects.get()
        assert sending.send_next(now=delivery.next_attempt_at) is not None
        delivery.refresh_from_db()
        assert delivery.last_attempt_at is not None
        waits.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
    # Then every attempt failed with the connection error, and each wait is about twice the
    # last: half fixed, half jitter (base 5 s: 2.5-5, 5-10, 10-20, 20-40 s after the attempt)
    # (a clock passed to send_next only decides what is due; the record uses the real time)
    assert delivery.attempts == 4
    assert delivery.status == Status.PENDING
    assert "Refused" in delivery.last_error or "refused" in delivery.last_error
    for attempt, wait in enumerate(waits, start=1):
        step = 5 * 2 ** (attempt - 1)
        assert step / 2 <= wait <= step + 0.1, (attempt, waits)


def test_backoff__capped_and_jittered() -> None:
    # Given the default base (5 s) and cap (1 h)
    # When the delays of many retries are drawn
    delays = {attempt: [sending.backoff(attempt) for _ in range(200)] for attempt in (1, 5, 20)}
    # Then each lies in [step/2, step] with step = min(cap, base * 2^(attempt-1)), and varies
    assert all(2.5 <= d <= 5 for d in delays[1])
    assert all(40 <= d <= 80 for d in delays[5])
    assert all(1800 <= d <= 3600 for d in delays[20])
    assert len({round(d, 3) for d in delays[5]}) > 100


@pytest.mark.parametrize(
    ("header", "expected"),
    [("30", 30.0), ("0", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after__seconds_or_nothing(header: str | None, expected: float | None) -> None:
    # Given a Retry-After header; When it is read; Then it gives its seconds
    assert http._retry_after(header) == expected


def test_retry_after__http_date__seconds_until_then() -> None:
    # Given a Retry-After date one minute ahead
    from email.utils import format_datetime  # noqa: PLC0415

    header = format_datetime(timezone.now() + timedelta(seconds=60), usegmt=True)
    # When it is read; Then it is about 60 s
    seconds = http._retry_after(header)
    assert seconds is not None
    assert 58 <= seconds <= 61


def test_redeliver__same_event_id_sent_again(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a delivery that was dead (400)
    _hook(project, receiver)
    receiver.answer(400)
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    [dead] = _send_all()
    # When a person redelivers it and the worker runs
    redelivery = services.delivery_redeliver(delivery=dead, actor=None)
    _send_all()
    # Then the receiver got the same event id twice, and the redelivery is delivered
    assert receiver.ids() == [str(dead.event_id)] * 2
    redelivery.refresh_from_db()
    assert (redelivery.status, redelivery.redelivery_of_id) == (Status.DELIVERED, dead.pk)


def test_hanging_receiver__attempt_ends_at_the_timeout(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a receiver that holds the request
    _hook(project, receiver)
    receiver.hang()
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker sends it with a 0.5 s timeout
    started = time.monotonic()
    with override_settings(FLAGSHIP_WEBHOOK_TIMEOUT=0.5):
        delivery = sending.send_next()
    elapsed = time.monotonic() - started
    receiver.release()
    # Then the attempt gave up after about 0.5 s and will be retried
    assert delivery is not None
    assert elapsed < 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == (Status.PENDING, None)
    assert "no answer within 0.5 s" in delivery.last_error


# --- Addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://192.168.1.20:8080/hook",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_private_address__refused_when_saved(project: Project, url: str) -> None:
    # Given a URL whose host is a private, link-local or otherwise non-public address
    # When a webhook is created with it
    with pytest.raises(ValidationError) as refused:
        services.webhook_create(project=project, name="internal", url=url)
    # Then it is refused next to the URL, and nothing is stored
    assert refused.value.error_dict["url"][0].code == "address_refused"
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "https://user:pw@example.com/"]
)
def test_scheme_or_credentials__refused(project: Project, url: str) -> None:
    # Given a URL that is not plain http(s); When it is saved; Then it is refused
    with pytest.raises(ValidationError):
        services.webhook_create(project=project, name="bad", url=url)


def test_loopback__refused_unless_allowed(project: Project) -> None:
    # Given no allowed networks
    with override_settings(FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS=[]):
        # When a loopback or localhost URL is saved; Then it is refused
        for url in ("http://127.0.0.1:9/hook", "http://localhost:9/", "http://[::1]:9/"):
            with pytest.raises(AddressRefusedError):
                check_url(url)
    # And with loopback allowed (the test settings) it is accepted
    check_url("http://127.0.0.1:9/hook")


def test_dns_answer_checked_when_sent__name_resolving_to_loopback_refused(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a webhook saved with a host name (localhost) while loopback was allowed
    _hook(project, receiver, url=f"http://localhost:{receiver.port}/hook")
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When loopback is no longer allowed and the worker sends the delivery
    with override_settings(FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS=[]):
        _send_all()
    # Then the DNS answer (127.0.0.1) was refused at send time: nothing reached the receiver,
    # and the delivery is dead at once (never retried), saying why
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Status.DEAD, 1)
    assert "loopback" in delivery.last_error
    # And the check is the resolver's answer, not the name
    with (
        override_settings(FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS=[]),
        pytest.raises(AddressRefusedError),
    ):
        resolve("localhost", 80)


# --- Secrets -------------------------------------------------------------------------------------


def test_secret__shown_once_and_stored_encrypted(project: Project, receiver: Receiver) -> None:
    # Given a webhook just created
    hook, secret = _hook(project, receiver)
    # When its stored row is read
    stored = Webhook.objects.values("secret_encrypted", "secret_hint").get(pk=hook.pk)
    # Then the row holds neither the secret nor its key bytes, only a token that decrypts to it
    key = secret.removeprefix("whsec_")
    assert key not in stored["secret_encrypted"]
    assert secrets.decrypt(stored["secret_encrypted"]) == secret
    assert stored["secret_hint"] == "…" + secret[-4:]
    # And no history row holds it
    assert all(not hasattr(row, "secret_encrypted") for row in Webhook.history.filter(id=hook.pk))


def test_encryption_keys__rotated_by_putting_a_new_key_first(
    project: Project, receiver: Receiver
) -> None:
    # Given a webhook whose secret was encrypted under key A
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=[old]):
        hook, secret = _hook(project, receiver)
    token = Webhook.objects.get(pk=hook.pk).secret_encrypted
    # When B is put first with A still listed, it still decrypts, and re-encrypts under B
    with override_settings(FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=[new, old]):
        assert secrets.decrypt(token) == secret
        rotated = secrets.reencrypt(token)
    # Then B alone decrypts the rotated token, and without A the old token fails clearly
    with override_settings(FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=[new]):
        assert secrets.decrypt(rotated) == secret
        with pytest.raises(ImproperlyConfigured, match="rotate_webhook_encryption"):
            secrets.decrypt(token)


def test_rotate_secret__new_signature_verifies_and_old_does_not(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a webhook whose secret was rotated
    hook, old = _hook(project, receiver)
    new = services.webhook_rotate_secret(webhook=hook, actor=None)
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When a delivery is sent
    _send_all()
    [got] = receiver.received
    # Then it is signed with the new secret only
    assert new != old
    standardwebhooks.Webhook(new).verify(got.body, got.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(old).verify(got.body, got.headers)


def test_signing__our_verify_agrees_with_the_reference_library() -> None:
    # Given a secret and a message
    secret = secrets.new_secret()
    body = b'{"id":"e1","type":"flag.toggled"}'
    timestamp = int(time.time())
    headers = signing.headers(secret, "e1", timestamp, body)
    # When each side verifies; Then both accept it, and a changed id is refused by both
    standardwebhooks.Webhook(secret).verify(body, headers)
    assert signing.verify(secret, "e1", timestamp, body, headers["webhook-signature"])
    assert not signing.verify(secret, "e2", timestamp, body, headers["webhook-signature"])


def test_undecryptable_secret__delivery_fails_and_is_retried_not_lost(
    project: Project, staging: Environment, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a webhook whose secret was encrypted under a key no longer configured
    with override_settings(FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        _hook(project, receiver)
    services.flag_toggle(state=_state(boolean_flag, staging), enabled=True, actor=None)
    # When the worker tries to send it
    with override_settings(FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        assert sending.send_next() is not None
    # Then nothing was sent unsigned, and the delivery waits for a retry, saying why
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS" in delivery.last_error


def test_webhook_environment_of_another_project__refused(
    project: Project, receiver: Receiver
) -> None:
    # Given another project's environment
    other = services.project_create(key="other", name="Other").environments.get(key="staging")
    # When a webhook of "demo" is limited to it; Then it is refused
    with pytest.raises(ValidationError) as refused:
        _hook(project, receiver, environment=other)
    assert "environment" in refused.value.error_dict


def test_unknown_event_type__refused(project: Project, receiver: Receiver) -> None:
    # Given an event type FlagShip does not send; When it is subscribed to; Then it is refused
    with pytest.raises(ValidationError) as refused:
        _hook(project, receiver, events=["flag.exploded"])
    assert refused.value.error_dict["events"][0].code == "invalid_event"


def test_send_test__one_delivery_to_that_webhook_only(project: Project, receiver: Receiver) -> None:
    # Given two webhooks
    first, secret = _hook(project, receiver, name="first")
    _hook(project, receiver, name="second")
    # When a test event is sent to the first
    services.webhook_send_test(webhook=first, actor=None)
    _send_all()
    # Then only the first got a webhook.test event, signed with its secret
    [got] = receiver.received
    assert got.event["type"] == "webhook.test"
    standardwebhooks.Webhook(secret).verify(got.body, got.headers)


# --- After commit --------------------------------------------------------------------------------


def test_committed_change__one_audit_log_line__none_for_a_rollback(
    staging: Environment,
    boolean_flag: Flag,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Given a person with a reason
    ann = make_user(username="ann", role=roles.EDITOR)
    from flags.history.recording import reason  # noqa: PLC0415

    state = _state(boolean_flag, staging)
    # When one toggle commits and another rolls back
    with caplog.at_level("INFO", logger="flags.audit"):
        with django_capture_on_commit_callbacks(execute=True), reason("FS-1"):
            services.flag_toggle(state=state, enabled=True, actor=ann)

        def rolled_back() -> None:
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                services.flag_toggle(state=state, enabled=False, actor=ann)
                raise RuntimeError("undo")

        with pytest.raises(RuntimeError):
            rolled_back()
    # Then exactly one change.committed line was logged, for the committed toggle
    lines = [r for r in caplog.records if r.getMessage() == "change.committed"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.type, line.flags, line.environments) == (  # type: ignore[attr-defined]
        "flag.toggled",
        ["new-checkout"],
        ["staging"],
    )
    assert (line.actor, line.reason) == ("ann", "FS-1")  # type: ignore[attr-defined]


def test_flag_delete_and_tags__events_with_what_was_there(
    project: Project, boolean_flag: Flag, receiver: Receiver
) -> None:
    # Given a webhook for deletions only, and an archived flag
    _hook(project, receiver, events=[Kind.FLAG_DELETED])
    services.flag_archive(flag=boolean_flag, actor=None)
    # When the flag is deleted, and a tag is created, renamed and deleted
    services.flag_delete(flag=boolean_flag, actor=None)
    tag = services.tag_create(name="checkout")
    services.tag_update(tag=tag, actor=None, name="payments")
    services.tag_delete(tag=tag, actor=None)
    # Then flag.deleted holds the flag as it was and goes to the webhook
    deleted = ChangeEvent.objects.get(kind=Kind.FLAG_DELETED)
    assert (deleted.flags, _data(deleted.before)["archived"], deleted.after) == (
        ["new-checkout"],
        True,
        None,
    )
    assert len(deleted.environments) == 3
    assert WebhookDelivery.objects.get().event == deleted
    # And each tag write is one tag.changed event (tags belong to no project: no webhook)
    tags = ChangeEvent.objects.filter(kind=Kind.TAG_CHANGED).order_by("occurred_at")
    assert [(_data(t.before).get("name"), _data(t.after).get("name")) for t in tags] == [
        (None, "checkout"),
        ("checkout", "payments"),
        ("payments", None),
    ]
