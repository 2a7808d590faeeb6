"""``flagship.workers.ReusePortThreadWorker`` under gunicorn: connections spread over the workers.

Gunicorn runs in a subprocess with the repository's ``gunicorn.conf.py`` (its default worker
class) on loopback, serving ``flagship.tests.pid_app``, which answers the pid of the worker that
served each request. Graceful shutdown (SIGTERM) and reload (SIGHUP) still answer every request.
"""

from __future__ import annotations

import http.client
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flagship.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER = "flagship.workers.ReusePortThreadWorker"


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (the master's and one per worker: ``SO_REUSEPORT``)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":
            count += 1
    return count


@contextmanager
def gunicorn(
    tmp_path: Path, workers: int = 3, **environ: str
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``gunicorn -c gunicorn.conf.py flagship.tests.pid_app`` on a free port; (port, master)."""
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        "GUNICORN_PRELOAD": "0",
        **environ,
    }
    master = subprocess.Popen(  # our own argv
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "flagship.tests.pid_app:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        # The master's socket and one per worker
        wait_for(lambda: listening_sockets(port) >= workers + 1, "every worker listening", tmp_path)
        yield port, master
    finally:
        if master.poll() is None:
            master.terminate()
            try:
                master.wait(15)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()


def wait_for(condition: object, what: str, tmp_path: Path, timeout: float = 30) -> None:
    """Poll ``condition`` (a callable) until it is true, or fail with gunicorn's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    log = (tmp_path / "gunicorn.log").read_text(errors="replace")
    pytest.fail(f"timed out waiting for {what}:\n{log[-3000:]}")


def get_once(port: int) -> int:
    """One request on a new connection, closed after; the pid of the worker that answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return get(connection)
    finally:
        connection.close()


def get(connection: http.client.HTTPConnection, path: str = "/") -> int:
    """One request on a kept-alive connection; the pid of the worker that answered."""
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, body
    assert response.getheader("X-Worker-Pid") == body.decode()
    return int(body)


def test_gunicorn_conf__reuse_port_worker_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUNICORN_WORKER_CLASS", raising=False)
    monkeypatch.delenv("GUNICORN_REUSE_PORT", raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["worker_class"] == WORKER
    assert config["reuse_port"] is True


def test_gunicorn_conf__stock_gthread_on_request__no_reuse_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUNICORN_WORKER_CLASS", "gthread")
    monkeypatch.delenv("GUNICORN_REUSE_PORT", raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["worker_class"] == "gthread"
    assert config["reuse_port"] is False


def test_keep_alive_connections__spread_over_the_workers(tmp_path: Path) -> None:
    # Given three workers, each listening on its own socket
    with gunicorn(tmp_path) as (port, master):
        # When eight keep-alive connections are opened together, then each sends two requests
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(8)]
        for connection in connections:
            connection.connect()
        first = [get(connection) for connection in connections]
        second = [get(connection) for connection in connections]

        # Then the connections are served by more than one worker, none by the master
        assert len(set(first)) > 1, first
        assert master.pid not in first
        # And each connection stays with its worker (kept alive)
        assert first == second
        for connection in connections:
            connection.close()


def test_sigterm__request_in_flight_finishes__master_exits(tmp_path: Path) -> None:
    with gunicorn(tmp_path, workers=2) as (port, master):
        # Given a request in flight (it takes a second)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/slow")
        time.sleep(0.3)

        # When gunicorn is asked to stop
        master.send_signal(signal.SIGTERM)

        # Then the request is answered, and gunicorn exits cleanly
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        connection.close()
        assert master.wait(15) == 0


def test_sighup__new_workers__no_request_lost(tmp_path: Path) -> None:
    with gunicorn(tmp_path) as (port, master):
        before = {get_once(port) for _ in range(6)}
        slow = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        slow.request("GET", "/slow")
        time.sleep(0.2)
        failures: list[str] = []
        served: list[int] = []
        stop = threading.Event()

        def load() -> None:  # new connections all along the reload
            while not stop.is_set():
                try:
                    served.append(get_once(port))
                except (OSError, http.client.HTTPException, AssertionError) as error:
                    failures.append(repr(error))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            # When gunicorn reloads (new workers, the old ones stop gracefully)
            master.send_signal(signal.SIGHUP)
            wait_for(
                lambda: bool(served) and len(set(served[-30:]) & before) == 0,
                "requests served by new workers only",
                tmp_path,
            )
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()

        # Then the request in flight was answered, and no request failed during the reload
        response = slow.getresponse()
        assert response.status == 200
        response.read()
        slow.close()
        assert failures == []
        assert len(served) > 20
        assert master.poll() is None


def test_recycled_workers__no_request_lost(tmp_path: Path) -> None:
    # Given workers recycled every 40 requests (max_requests)
    with gunicorn(tmp_path, GUNICORN_MAX_REQUESTS="40", GUNICORN_MAX_REQUESTS_JITTER="0") as (
        port,
        _master,
    ):
        failures: list[str] = []
        served: list[int] = []

        def load() -> None:  # new connections, one request each
            for _ in range(60):
                try:
                    served.append(get_once(port))
                except (OSError, http.client.HTTPException, AssertionError) as error:
                    failures.append(repr(error))

        # When 240 requests arrive from four threads
        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Then workers were replaced meanwhile, and every request was answered
        assert len(set(served)) > 3
        assert failures == []


def test_one_worker_recycled__connections_wait_on_the_masters_socket(tmp_path: Path) -> None:
    # Given a single worker, recycled every 30 requests: at times no worker listens
    with gunicorn(
        tmp_path, workers=1, GUNICORN_MAX_REQUESTS="30", GUNICORN_MAX_REQUESTS_JITTER="0"
    ) as (port, _master):
        failures: list[str] = []
        served = []
        # When 100 requests arrive one after the other, each on a new connection
        for _ in range(100):
            try:
                served.append(get_once(port))
            except (OSError, http.client.HTTPException, AssertionError) as error:
                failures.append(repr(error))

        # Then the worker was replaced three times, and no connection was refused
        assert len(set(served)) >= 3
        assert failures == []
