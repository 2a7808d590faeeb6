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
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]


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

    def leave_group(self) -> None:
        """Accept the connections waiting on this worker's own sockets, then close them.

        The master's sockets stay open (no longer polled here): the master and the other workers
        hold them, and what waits there is theirs.
        """
        if self.left_group:
            return
        self.left_group = True
        for listener in self.own_sockets:
            self.drain(listener)
            listener.close()  # gunicorn's socket: closing it again (at the very end) is a no-op

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
