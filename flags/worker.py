"""``manage.py run_worker``: the background work of FlagShip, in one process per replica.

It runs:

- **Webhook senders**: ``FLAGSHIP_WORKER_CONCURRENCY`` threads, each sending one delivery at a
  time (``flags.webhooks.sending.send_next``). Idle threads sleep until the next delivery is due,
  at most ``FLAGSHIP_WORKER_POLL_SECONDS``; on PostgreSQL a listener thread wakes them when a
  change with deliveries commits (``LISTEN flagship_webhooks``), so a delivery leaves within
  milliseconds of its commit.
- **Periodic jobs** (:data:`PERIODIC`): running the due steps of scheduled changes every second
  (``flags.services.schedules.run_due``: a step missed while no worker ran runs once, late);
  deleting change events and finished deliveries older than ``FLAGSHIP_EVENT_RETENTION_DAYS``;
  moving the evaluation counts of the web processes from Redis into the database every 10 s
  (``flags.evaluation.counting.store_pending``); computing the stored stale inputs of flags
  changed since (and of flags without any: the backfill after an upgrade) every 5 s
  (``flags.staleness.refresh``).

FlagShip's own flags (``flags.capabilities``) pause the senders (``webhooks`` off: deliveries
wait, pending, and leave when it is on again) and the scheduled steps (``scheduled-changes`` off:
due steps wait and run, late, when it is on again); each is checked before every attempt.

Any number of workers may run at once (row locks keep them apart; docs/webhooks.md). SIGTERM or
SIGINT stops a worker after the deliveries in flight; SIGKILL loses nothing either (the
transaction of a delivery in flight rolls back and another worker sends it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, close_old_connections, connection, connections
from django.utils import timezone

from flags import capabilities, conf, staleness
from flags.evaluation import counting
from flags.models import ChangeEvent, WebhookDelivery
from flags.services.schedules import run_due
from flags.webhooks import outbox, sending

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job: ``run()`` every ``seconds`` (the first run at start-up)."""

    name: str
    seconds: float
    run: Callable[[], object]


def prune_events() -> int:
    """Delete events older than the retention whose deliveries are all finished."""
    days = conf.event_retention_days()
    cutoff = timezone.now() - timedelta(days=days)
    old = ChangeEvent.objects.filter(occurred_at__lt=cutoff).exclude(
        deliveries__status=WebhookDelivery.Status.PENDING
    )
    deleted, _ = old.delete()
    return deleted


# How long an idle sender waits when deliveries are due but every one of their webhooks is being
# sent to (by this worker, whose senders wake it when one finishes, or by another).
BUSY_SECONDS = 0.05


def run_schedules() -> int:
    """Run the due steps of scheduled changes, unless ``scheduled-changes`` is off (they wait)."""
    if not capabilities.enabled(capabilities.SCHEDULED_CHANGES):
        return 0
    return run_due()


def send_next() -> WebhookDelivery | None:
    """Send the next due delivery, unless ``webhooks`` is off (deliveries wait, pending)."""
    if not capabilities.enabled(capabilities.WEBHOOKS):
        return None
    return sending.send_next()


PERIODIC: list[Job] = [
    Job("schedules.run", 1.0, run_schedules),
    Job("events.prune", 3600.0, prune_events),
    Job("evaluations.store", counting.STORE_SECONDS, counting.store_pending),
    Job("staleness.refresh", staleness.REFRESH_SECONDS, staleness.refresh),
]


class Wakeup:
    """Idle senders wait here; a notice (or a due time) wakes them without losing a notice."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def generation(self) -> int:
        """Read before looking for work; pass to :meth:`wait`."""
        with self._condition:
            return self._generation

    def notify(self) -> None:
        """Wake every waiting sender."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, since: int, timeout: float) -> None:
        """Sleep up to ``timeout`` unless a notice came after ``since``."""
        with self._condition:
            if self._generation == since:
                self._condition.wait(timeout)


class Worker:
    """The senders, the listener and the periodic jobs of one worker process."""

    def __init__(
        self, *, concurrency: int | None = None, poll_seconds: float | None = None
    ) -> None:
        configured = concurrency or conf.worker_concurrency()
        # SQLite has no row locks: one sender, so nothing is sent twice.
        self.concurrency = max(1, configured if connection.vendor == "postgresql" else 1)
        self.poll_seconds = poll_seconds or conf.worker_poll_seconds()
        self.stop = threading.Event()
        self.wakeup = Wakeup()
        self.sent = 0
        self.scheduled = 0
        self._count_lock = threading.Lock()

    # --- running ------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until :attr:`stop` is set; in-flight deliveries finish first."""
        threads = [
            threading.Thread(target=self._sender, name=f"flagship-sender-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        if connection.vendor == "postgresql":
            threads.append(
                threading.Thread(target=self._listen, name="flagship-listener", daemon=True)
            )
        for thread in threads:
            thread.start()
        logger.info("worker.started", extra={"senders": self.concurrency})
        try:
            self._periodic()
        finally:
            self.stop.set()
            self.wakeup.notify()
            for thread in threads:
                thread.join(timeout=conf.webhook_timeout() + 5)
            logger.info("worker.stopped", extra={"sent": self.sent})

    def drain(self) -> int:
        """Run the scheduled steps and send every delivery due now; return deliveries attempted.

        Steps run first: the deliveries their change events wrote are then sent too.
        """
        self.scheduled = run_schedules()
        attempted = 0
        while send_next() is not None:
            attempted += 1
        return attempted

    def _sender(self) -> None:
        failures = 0
        try:
            while not self.stop.is_set():
                if not capabilities.enabled(capabilities.WEBHOOKS):
                    self.stop.wait(self.poll_seconds)  # paused: look again in a moment
                    continue
                since = self.wakeup.generation()
                try:
                    delivery = send_next()
                    failures = 0
                except DatabaseError:
                    failures += 1
                    logger.warning("worker.database_failed", exc_info=failures == 1)
                    close_old_connections()
                    connection.close()
                    self.stop.wait(min(self.poll_seconds * failures, 5.0))
                    continue
                if delivery is not None:
                    with self._count_lock:
                        self.sent += 1
                    self.wakeup.notify()  # its webhook is free again: an idle sibling may go
                    continue
                self.wakeup.wait(since, self._idle_seconds())
        finally:
            connections.close_all()

    def _idle_seconds(self) -> float:
        """Until the next delivery is due; a moment when some are due but their webhooks busy."""
        try:
            due = sending.next_due()
        except DatabaseError:
            return self.poll_seconds
        if due is None:
            return self.poll_seconds
        return max(BUSY_SECONDS, min(self.poll_seconds, (due - timezone.now()).total_seconds()))

    def _listen(self) -> None:
        """LISTEN for committed deliveries and wake the senders (reconnecting after failures)."""
        import psycopg  # noqa: PLC0415  # PostgreSQL only

        while not self.stop.is_set():
            try:
                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                params.pop("context", None)
                params["connect_timeout"] = 2
                with psycopg.connect(**params, autocommit=True) as listener:
                    listener.execute(f"LISTEN {outbox.CHANNEL}")
                    self.wakeup.notify()  # deliveries may have committed while not listening
                    while not self.stop.is_set():
                        for _notice in listener.notifies(timeout=1.0, stop_after=1):
                            self.wakeup.notify()
            except Exception:  # never dies: without it the senders still poll, only later
                logger.warning("worker.listen_failed", exc_info=True)
                self.stop.wait(self.poll_seconds)

    def _periodic(self) -> None:
        due = dict.fromkeys((job.name for job in PERIODIC), 0.0)
        while not self.stop.is_set():
            now = time.monotonic()
            for job in PERIODIC:
                if due[job.name] <= now:
                    try:
                        job.run()
                    except Exception:  # one job's failure (or bug) never stops the worker
                        logger.warning("worker.job_failed", extra={"job": job.name}, exc_info=True)
                        close_old_connections()
                    due[job.name] = now + job.seconds
            self.stop.wait(1.0)
        connections.close_all()
