"""Webhooks as operators run them: ``manage.py run_worker`` processes, real receivers, crashes.

Each test commits real changes (``transactional_db``), starts workers as child processes on the
test database (``flagship.processes``) and watches a real HTTP receiver on loopback
(``flags.tests.receiver``) and the delivery rows. Retries are quick here (a 0.05 s backoff base).
The documented receiver (``examples/webhook_receiver.py``) runs as its own process.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import connections
from django.test import override_settings

from flags import services
from flags.models import FlagState, Project, Webhook, WebhookDelivery
from flagship.faults import FaultProxy, wait_until
from flagship.processes import ROOT, Processes, free_port

from .receiver import Receiver

pytestmark = [pytest.mark.requires_postgres]

KEY = Fernet.generate_key().decode()
Status = WebhookDelivery.Status


@pytest.fixture
def encryption() -> Iterator[None]:
    """This process and the workers share one encryption key."""
    with override_settings(FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=[KEY]):
        yield


@pytest.fixture
def shop(transactional_db: None, encryption: None) -> tuple[Project, FlagState]:
    """Project ``demo`` and the staging state of a boolean flag, committed."""
    project = services.project_create(key="demo", name="Demo")
    flag = services.flag_create(project=project, key="new-checkout", name="New checkout")
    staging = project.environments.get(key="staging")
    return project, flag.states.get(environment=staging)


def worker_environment(**extra: str) -> dict[str, str]:
    """The environment of a worker process on the test database."""
    database = connections["default"].settings_dict
    user = database.get("USER") or "postgres"
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "flagship.settings",
        "DJANGO_ENV": "test",
        "DJANGO_ENV_FILE": "/nonexistent/flagship.env",
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/{database['NAME']}",
        "REDIS_URL": "",
        "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS": KEY,
        "FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "FLAGSHIP_WEBHOOK_BACKOFF_SECONDS": "0.05",
        "FLAGSHIP_WEBHOOK_MAX_BACKOFF_SECONDS": "0.3",
        "FLAGSHIP_WEBHOOK_MAX_ATTEMPTS": "100",
        "FLAGSHIP_WEBHOOK_TIMEOUT": "3",
        "FLAGSHIP_WORKER_POLL_SECONDS": "0.2",
        "DJANGO_LOG_LEVEL": "INFO",
        **extra,
    }


def start_worker(processes: Processes, name: str, *, concurrency: int = 4, **extra: str) -> None:
    """``manage.py run_worker`` as a child process."""
    argv = [sys.executable, "manage.py", "run_worker", "--concurrency", str(concurrency)]
    processes.start(name, argv, worker_environment(**extra))


def toggles(state: FlagState, count: int) -> None:
    """Switch the flag ``count`` times (each a committed change, one event)."""
    for _ in range(count):
        state = services.flag_toggle(state=state, enabled=not _enabled(state), actor=None)


def _enabled(state: FlagState) -> bool:
    return bool(FlagState.objects.values_list("enabled", flat=True).get(pk=state.pk))


def deliveries(**filters: Any) -> list[WebhookDelivery]:
    """The delivery rows as stored now."""
    return list(WebhookDelivery.objects.filter(**filters).order_by("pk"))


def test_receiver_down_then_up__every_event_delivered__none_twice(
    shop: tuple[Project, FlagState], processes: Processes
) -> None:
    # Given a webhook whose receiver is down, and a worker running
    project, state = shop
    with Receiver() as receiver:
        services.webhook_create(project=project, name="ops", url=receiver.url())
        receiver.down()
        start_worker(processes, "worker")
        # When 20 changes commit while it is down, and it comes back a second later
        toggles(state, 20)
        assert wait_until(lambda: all(d.attempts >= 2 for d in deliveries()), timeout=20), (
            "the worker did not retry while the receiver was down"
        )
        receiver.up()
        # Then every event arrives, each exactly once
        assert receiver.wait_for(lambda got: len({r.event_id for r in got}) == 20, timeout=30)
        time.sleep(0.5)  # anything sent twice would arrive by now
        assert sorted(Counter(receiver.ids()).values()) == [1] * 20
    # And every delivery is stored as delivered, after retries
    stored = deliveries()
    assert {d.status for d in stored} == {Status.DELIVERED}
    assert {str(d.event_id) for d in stored} == set(receiver.ids())
    assert min(d.attempts for d in stored) >= 2


def test_worker_killed_mid_delivery__delivery_not_lost(
    shop: tuple[Project, FlagState], processes: Processes
) -> None:
    # Given a receiver that holds the first request, and a change
    project, state = shop
    with Receiver() as receiver:
        services.webhook_create(project=project, name="ops", url=receiver.url())
        receiver.hang()
        toggles(state, 1)
        # When a worker is killed (SIGKILL) while the request is in flight
        start_worker(processes, "first")
        assert receiver.wait_hanging(timeout=20), "the first worker never sent the delivery"
        processes.kill("first")
        receiver.release()
        # Then the delivery is still pending, as if never claimed (its transaction died with it)
        [pending] = deliveries()
        assert wait_until(lambda: _unlocked(pending.pk), timeout=10)
        pending.refresh_from_db()
        assert (pending.status, pending.attempts) == (Status.PENDING, 0)
        # And a new worker delivers it
        start_worker(processes, "second")
        assert wait_until(lambda: deliveries(status=Status.DELIVERED) != [], timeout=20)
        [delivered] = deliveries()
        assert delivered.attempts == 1
        # And the receiver saw the same event id each time (it drops the repeat by that id)
        assert receiver.wait_for(lambda got: len(got) == 2, timeout=10)
        assert receiver.ids() == [str(delivered.event_id)] * 2


def test_database_cut_under_the_worker__it_survives_and_delivers_once_back(
    shop: tuple[Project, FlagState], processes: Processes
) -> None:
    # Given a worker whose database connections go through a proxy, and a webhook
    project, state = shop
    database = connections["default"].settings_dict
    with (
        Receiver() as receiver,
        FaultProxy(database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432)) as pg,
    ):
        services.webhook_create(project=project, name="ops", url=receiver.url())
        url = worker_environment()["DATABASE_URL"]
        start_worker(processes, "worker", DATABASE_URL=pg.url(url))
        toggles(state, 1)
        assert receiver.wait_for(lambda got: len(got) == 1, timeout=20)
        # (and recorded: a cut between the answer and the record would send it again, as a
        # receiver must expect of any delivery: docs/webhooks.md)
        assert wait_until(lambda: deliveries(status=Status.DELIVERED) != [], timeout=10)
        # When its database is cut while 5 more changes commit, for 2 seconds
        pg.sever()
        toggles(state, 5)
        time.sleep(2)
        # Then nothing was sent meanwhile (the claims need the database), and the worker lives
        assert len(receiver.received) == 1
        assert processes.children[0][1].poll() is None, processes.tail("worker")
        # When the database comes back: Then every change is delivered, once each
        pg.restore()
        assert receiver.wait_for(lambda got: len(got) >= 6, timeout=30), processes.tail("worker")
        time.sleep(0.5)
        assert sorted(Counter(receiver.ids()).values()) == [1] * 6
    assert {d.status for d in deliveries()} == {Status.DELIVERED}


def test_idle_worker__a_commit_wakes_it_at_once__not_at_its_next_poll(
    shop: tuple[Project, FlagState], processes: Processes
) -> None:
    # Given a worker that would look for work only every 30 s, idle (it looked at start-up)
    project, state = shop
    with Receiver() as receiver:
        services.webhook_create(project=project, name="ops", url=receiver.url())
        start_worker(processes, "worker", FLAGSHIP_WORKER_POLL_SECONDS="30")
        assert wait_until(lambda: "FlagShip worker:" in processes.tail("worker"), timeout=20)
        time.sleep(1.5)
        # When a change commits
        started = time.monotonic()
        toggles(state, 1)
        # Then its delivery arrives within a second (LISTEN/NOTIFY woke the senders)
        assert receiver.wait_for(lambda got: len(got) == 1, timeout=10)
        assert time.monotonic() - started < 1, processes.tail("worker")


def _unlocked(delivery_id: int) -> bool:
    """Whether no transaction holds the delivery's row (the killed worker's has ended)."""
    from django.db import transaction  # noqa: PLC0415

    with transaction.atomic():
        return (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id)
            .exists()
        )


def test_two_workers__no_delivery_sent_twice(
    shop: tuple[Project, FlagState], processes: Processes
) -> None:
    # Given three webhooks and two workers of four senders each
    project, state = shop
    with Receiver() as receiver:
        for name in ("a", "b", "c"):
            services.webhook_create(project=project, name=name, url=receiver.url(f"/{name}"))
        start_worker(processes, "one")
        start_worker(processes, "two")
        # When 40 changes commit
        toggles(state, 40)
        # Then each of the 120 deliveries reaches its webhook exactly once
        assert receiver.wait_for(lambda got: len(got) >= 120, timeout=60)
        time.sleep(0.5)
        pairs = Counter(
            (entry.path, entry.event_id, entry.event["type"]) for entry in receiver.received
        )
        assert len(receiver.received) == 120
        assert set(pairs.values()) == {1}
    # And all are stored as delivered at the first attempt
    stored = deliveries()
    assert len(stored) == 120
    assert {(d.status, d.attempts) for d in stored} == {(Status.DELIVERED, 1)}


def test_hanging_receiver__other_webhooks_delivered_meanwhile(
    shop: tuple[Project, FlagState], processes: Processes
) -> None:
    # Given a receiver that hangs and one that answers, each with a webhook
    project, state = shop
    with Receiver() as slow, Receiver() as fast:
        services.webhook_create(project=project, name="slow", url=slow.url())
        services.webhook_create(project=project, name="fast", url=fast.url())
        slow.hang(times=100)
        start_worker(processes, "worker")
        # When 10 changes commit
        started = time.monotonic()
        toggles(state, 10)
        # Then the fast receiver gets all ten while the slow one still holds its first request
        assert fast.wait_for(lambda got: len(got) == 10, timeout=10)
        took = time.monotonic() - started
        assert slow.received == []
        assert took < 3, f"the fast webhook waited {took:.1f} s behind the slow one"
        # And a change committed while the slow delivery is in flight waits for nothing (the
        # worker's lock on the webhook row leaves the writers' foreign-key checks alone)
        assert slow.wait_hanging(timeout=5)
        started = time.monotonic()
        services.flag_toggle(state=state, enabled=True, actor=None)
        assert time.monotonic() - started < 1
        assert fast.wait_for(lambda got: len(got) == 11, timeout=10)
        slow.release()


def test_documented_receiver__verifies_flagships_signature_and_refuses_replays(
    shop: tuple[Project, FlagState], processes: Processes
) -> None:
    # Given a delivery captured on its way (a recording receiver stands where the real one is)
    project, state = shop
    with Receiver() as recorder:
        hook, secret = services.webhook_create(project=project, name="ops", url=recorder.url())
        toggles(state, 1)
        from flags.webhooks.sending import send_next  # noqa: PLC0415

        assert send_next() is not None
        [captured] = recorder.received
    # And the documented receiver running with the webhook's secret, refusing anything older
    # than 2 s
    port = free_port()
    processes.start(
        "receiver",
        [sys.executable, "examples/webhook_receiver.py", "--port", str(port), "--tolerance", "2"],
        {"PATH": os.environ.get("PATH", ""), "FLAGSHIP_WEBHOOK_SECRET": secret},
    )
    assert wait_until(lambda: _listening(port), timeout=10)
    # When the captured delivery is posted to it: Then it is verified and processed
    assert _post(port, captured.headers, captured.body) == (200, '{"status": "processed"}')
    # When the very same request is posted again at once: Then it is not processed again
    assert _post(port, captured.headers, captured.body) == (200, '{"status": "duplicate"}')
    # When its body is changed: Then the signature fails
    assert _post(port, captured.headers, captured.body.replace(b"true", b"false"))[0] == 401
    # When FlagShip itself delivers the next change there: Then it is verified and processed
    services.webhook_update(webhook=hook, actor=None, url=f"http://127.0.0.1:{port}/")
    services.flag_toggle(state=state, enabled=False, actor=None)
    assert send_next() is not None
    last = WebhookDelivery.objects.filter(webhook=hook).order_by("-pk").first()
    assert last is not None
    assert (last.status, last.last_response) == (Status.DELIVERED, '{"status": "processed"}')
    # When the captured request is replayed after the tolerance: Then it is refused
    time.sleep(max(0.0, int(captured.headers["webhook-timestamp"]) + 3 - time.time()))
    status, body = _post(port, captured.headers, captured.body)
    assert status == 400
    assert "timestamp" in body
    # And the receiver processed exactly the two genuine deliveries
    log = (processes.logs / "receiver.log").read_text()
    assert log.count("processed ") == 2


def _listening(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.connect()
    except OSError:
        return False
    finally:
        connection.close()
    return True


def _post(port: int, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    sent = {k: v for k, v in headers.items() if k.startswith("webhook-") or k == "content-type"}
    connection.request("POST", "/", body=body, headers=sent)
    response = connection.getresponse()
    answer = (response.status, response.read().decode())
    connection.close()
    return answer


def test_examples_receiver_is_the_documented_one() -> None:
    # Given docs/webhooks.md; When it is read; Then it shows the receiver this test runs
    text = (ROOT / "docs" / "webhooks.md").read_text()
    assert "examples/webhook_receiver.py" in text
    source = (ROOT / "examples" / "webhook_receiver.py").read_text()
    assert "hmac.compare_digest" in source
    assert "tolerance" in source


def test_webhook_rows_hold_no_plain_secret(shop: tuple[Project, FlagState]) -> None:
    # Given a webhook
    project, _state = shop
    hook, secret = services.webhook_create(project=project, name="ops", url="http://127.0.0.1:9/")
    # When every column of its row and its history is dumped
    dump = repr(list(Webhook.objects.filter(pk=hook.pk).values()))
    dump += repr(list(Webhook.history.filter(id=hook.pk).values()))
    # Then the secret (or its key part) appears nowhere
    assert secret.removeprefix("whsec_") not in dump
