"""Gunicorn worker classes: threads, with the kernel spreading connections across the workers.

With gunicorn's stock ``gthread`` worker every worker polls the one listening socket the master
opened, and whichever worker wakes first accepts every connection that is waiting. Persistent
connections opened together (a load generator's, or a load balancer's pool of upstream
connections) then often all land on one worker: one core does the work while the others idle
(issue 16: all 32 of wrk's connections on one worker in 2 of 3 runs, bulk evaluation at 950
requests/s instead of 2 300).

``ReusePortThreadWorker`` is ``gthread`` with ``reuse_port``: each worker opens its own listening
socket on the same address with ``SO_REUSEPORT`` after the fork (gunicorn 27 does that itself when
``reuse_port`` is on), and the kernel hashes each new connection to one of
the sockets, so connections spread over the workers whatever the pattern of their arrival.
Measured by ``python -m bench.server.run --balance`` (docs/operations.md, "Workers and
connections").

One thing ``SO_REUSEPORT`` changes: a connection the kernel hashed to a worker's socket waits in
that socket's backlog, and is reset if the socket closes before the worker accepts it. Gunicorn's
worker stops accepting at once when it stops (a restart, a ``HUP`` reload, recycling after
``max_requests``) but closes its sockets only after its last request, seconds later: connections
the kernel hashed to it meanwhile would wait, then be reset. This worker instead takes itself out
of the group at once: it accepts what is waiting (and serves it), then closes its sockets, and new
connections go to the other workers' sockets. Only a connection arriving in the microseconds
between the last accept and the close can still be reset; Linux's ``net.ipv4.tcp_migrate_req = 1``
moves even those to a sibling socket (docs/deployment.md).

``reuse_port`` must be on in the configuration (``gunicorn.conf.py`` turns it on with this worker):
gunicorn decides whether the master opens a shared socket before it asks the worker class.

With ``reuse_port`` gunicorn's master listens on nothing: while every worker restarts at once (a
single worker being recycled, all of them replaced after a crash) new connections would be
refused. ``gunicorn.conf.py``'s ``on_starting`` therefore lets the master open its socket too
(``SO_REUSEPORT``, in the same group; ``GUNICORN_MASTER_SOCKET=0`` turns it off), and each worker
polls that inherited socket beside its own: the kernel hashes a share of the connections (one in
workers + 1) to it, any worker accepts them, and when no worker is up they wait in its backlog
instead of being refused. A stopping worker stops polling it and leaves it open (the master and the
other workers hold it).
"""

from __future__ import annotations

import errno
import sys
import threading
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

# How long the request that ends a worker waits for the main thread to take the worker's socket
# out of the group (it answers either way).
LEAVE_WAIT_SECONDS = 1.0
DRAIN_SWITCH_INTERVAL = 0.00005  # seconds: the GIL's hand-over while a socket leaves the group


class ReusePortThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    """``gthread`` on a listening socket of its own (``SO_REUSEPORT``), drained when it stops."""

    sockets: list[Any]  # gunicorn's listeners: the master's, then (after the fork) this worker's

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As gunicorn's; remembers the master's sockets (``sockets``, before the fork)."""
        super().__init__(*args, **kwargs)
        self.shared_sockets: list[Any] = list(self.sockets)
        self.own_sockets: list[Any] = []
        self.left_group = False

    def init_process(self) -> None:
        """After the fork: poll this worker's own sockets and the master's."""
        own = [listener for listener in self.sockets if listener not in self.shared_sockets]
        self.own_sockets = own
        self.sockets = [*own, *self.shared_sockets]
        super().init_process()

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Warn when ``reuse_port`` is off: the workers would share the master's socket."""
        if not cfg.reuse_port:
            log.warning(
                "ReusePortThreadWorker without reuse_port: connections are not spread "
                "(set reuse_port = True)"
            )
        if cfg.workers < 2:
            log.warning(
                "ReusePortThreadWorker with one worker: while it restarts (recycling, a crash) "
                "nothing listens and new connections are refused; run two or more"
            )
        super().check_config(cfg, log)

    def set_accept_enabled(self, enabled: bool) -> None:  # gunicorn's signature
        """As gunicorn's; when the worker stops, its sockets leave the group, drained."""
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self.leave_group()

    def handle_request(self, req: Any, conn: Any) -> Any:  # gunicorn's signature
        """As gunicorn's; the request that ends the worker (``max_requests``) leaves first.

        Gunicorn stops the worker once that request is answered, and the worker then leaves
        the group: a client answered at that moment connects again at once, and the kernel may
        hash its connection to this worker's socket between the last accept and the close
        (reset: one in three recyclings on a loopback client here). Leaving before answering
        (on the main thread, which owns the poller) takes the socket out first.
        """
        if self.nr + 1 >= self.max_requests and not self.left_group:
            left = threading.Event()
            self.method_queue.defer(self._leave_early, left)
            left.wait(LEAVE_WAIT_SECONDS)  # the main thread may be stopping: then it leaves
        return super().handle_request(req, conn)

    def _leave_early(self, left: threading.Event) -> None:
        """Stop polling this worker's own sockets and leave the group (main thread)."""
        try:
            if self._accepting and not self.left_group:
                for listener in self.own_sockets:
                    self.poller.unregister(listener)
            self.leave_group()
        finally:
            left.set()

    def leave_group(self) -> None:
        """Accept the connections waiting on this worker's own sockets, then close them.

        The master's sockets stay open (polled here while the worker accepts): the master and
        the other workers hold them, and what waits there is theirs.
        """
        if self.left_group:
            return
        self.left_group = True
        # Between the last accept (the backlog empty) and the close, a connection the kernel
        # hashes to the socket is reset: that gap is this thread waiting for the GIL back from
        # the request threads, up to the switch interval (5 ms). Shortened while draining.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(DRAIN_SWITCH_INTERVAL)
        try:
            for listener in self.own_sockets:
                self.drain(listener)
                listener.close()  # gunicorn's socket: closing it again (at the end) is a no-op
        finally:
            sys.setswitchinterval(interval)
        self.sockets = [listener for listener in self.sockets if listener not in self.own_sockets]

    def drain(self, listener: Any) -> None:
        """Accept every connection already in ``listener``'s backlog (it will be served)."""
        try:
            listener.setblocking(False)
        except OSError:
            return
        while True:
            before = self.nr_conns
            try:
                self.accept(listener)
            except OSError as error:
                if error.errno in {errno.EBADF, errno.EINVAL}:
                    return
                raise
            if self.nr_conns == before:  # EAGAIN: the backlog is empty
                return
