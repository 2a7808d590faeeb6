"""``manage.py run_worker``: send webhook deliveries and run periodic jobs (``flags.worker``)."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from flags import conf
from flags.worker import Worker


class Command(BaseCommand):
    """Run the worker until SIGTERM/SIGINT, or send what is due and exit with ``--once``."""

    help = "Send webhook deliveries and run FlagShip's periodic jobs until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--concurrency``, ``--poll`` and ``--once``."""
        parser.add_argument(
            "--concurrency", type=int, default=None, help="Sender threads (default: setting)."
        )
        parser.add_argument(
            "--poll", type=float, default=None, help="Idle sleep in seconds (default: setting)."
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Run due scheduled steps, send every delivery due now, then exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the worker in this process."""
        worker = Worker(concurrency=options["concurrency"], poll_seconds=options["poll"])
        if options["once"]:
            attempted = worker.drain()
            self.stdout.write(
                f"{worker.scheduled} scheduled steps run; {attempted} deliveries attempted."
            )
            return

        def stop(signum: int, frame: object) -> None:
            worker.stop.set()
            worker.wakeup.notify()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self._serve_metrics()
        self.stdout.write(f"FlagShip worker: {worker.concurrency} senders; stop with Ctrl-C.")
        worker.run()

    def _serve_metrics(self) -> None:
        """Serve this process's Prometheus metrics (webhooks, schedules, database) when set.

        Its own listener, not ``/metrics``: the worker serves no HTTP otherwise. It has no token:
        bind it to loopback or a private network (``FLAGSHIP_WORKER_METRICS_ADDRESS``).
        """
        port = conf.worker_metrics_port()
        if not port or not conf.metrics_enabled():
            return
        from prometheus_client import start_http_server  # noqa: PLC0415  # only when serving

        address = conf.worker_metrics_address()
        start_http_server(port, addr=address)
        self.stdout.write(f"Worker metrics on http://{address}:{port}/metrics")
