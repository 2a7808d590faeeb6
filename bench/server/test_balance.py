"""``bench.server.balance``: CPU and connections per worker read from ``/proc``; the bare ceiling.

Real processes: a busy child for the CPU meter, gunicorn with ``ReusePortThreadWorker`` serving
``flagship.tests.pid_app`` for the connection count, and the bare ceiling's WSGI application.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.server import balance, run
from flagship.processes import Processes, free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
BUSY = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"


def test_cpu_meter__a_busy_child__its_cpu_counted() -> None:
    # Given a parent that runs a child burning 0.6 s of CPU, says so, and stays alive
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {BUSY!r}])\n"
        "print('done', flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(  # noqa: S603  # our own argv
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    )
    try:
        with balance.CpuMeter(parent.pid) as meter:
            assert parent.stdout is not None
            assert parent.stdout.readline().strip() == "done"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    # Then the tree's CPU includes the child's, reaped within the window (the parent's cutime)
    assert meter.window.cpu_seconds >= 0.5
    assert 0 < meter.window.cores_busy <= (os.cpu_count() or 1)


def test_connections_per_worker__keep_alive_connections_counted(tmp_path: Path) -> None:
    port = free_port()
    processes = Processes(tmp_path)
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "3",
        "GUNICORN_THREADS": "2",
        "GUNICORN_PRELOAD": "0",
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    processes.start("pid", [*argv, "flagship.tests.pid_app:application"], env)
    connections = []
    try:
        wait_http(port, "/", processes, "pid")
        master = processes.children[0][1].pid
        time.sleep(1)  # every worker up
        # Given 9 kept-alive connections, each having answered once
        served: dict[int, int] = {}
        for _ in range(9):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/")
            response = connection.getresponse()
            pid = int(response.read())
            served[pid] = served.get(pid, 0) + 1
            connections.append(connection)

        # Then each worker holds the connections it answered on
        counts = balance.connections_per_worker(master, port)
        assert {pid: count for pid, count in counts.items() if count} == served
        assert sum(counts.values()) == 9
        assert balance.spread(counts).count("/") == len(counts) - 1
    finally:
        for connection in connections:
            connection.close()
        processes.stop()


def test_bare_ceiling__constant_json_without_flagship() -> None:
    # The bare ceiling runs in its own interpreter: its settings are not FlagShip's
    code = (
        "from bench.server.bare_wsgi import application\n"
        "from django.conf import settings\n"
        "from django.test import Client\n"
        "response = Client().get('/ceiling')\n"
        "print(response.status_code, response.content.decode(), settings.MIDDLEWARE,"
        " settings.INSTALLED_APPS, settings.DATABASES['default']['ENGINE'])\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(  # noqa: S603  # our own argv
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == '200 {"ok": true} [] [] django.db.backends.dummy'


def test_wrk_output__parsed() -> None:
    output = (
        "  Latency Distribution\n     50%  612.00us\n     75%    1.10ms\n     90%    2.00ms\n"
        "     99%    5.35ms\n  1234 requests in 2.00s, 1.00MB read\n"
        "  Non-2xx or 3xx responses: 3\nRequests/sec:   1917.25\n"
    )
    rps, errors, percentiles = run.wrk_output(output)
    assert rps == pytest.approx(1917.25)
    assert errors == 3
    assert percentiles["50"] == pytest.approx(0.612)
    assert percentiles["99"] == pytest.approx(5.35)


def test_wrk_argv__no_more_threads_than_connections() -> None:
    argv = run.wrk_argv("wrk", "http://127.0.0.1:1/", Path("s.lua"), 1, 5)
    assert "-t1" in argv
    assert "-c1" in argv
    assert "-t2" in run.wrk_argv("wrk", "http://127.0.0.1:1/", Path("s.lua"), 4, 5)


def test_balance_report__one_row_per_endpoint_and_connection_count() -> None:
    options = run.QUICK
    variant = balance.variants(2)[2]
    assert variant.overrides["GUNICORN_MASTER_SOCKET"] == "1"
    result = balance.BalanceResult(variant)
    for name in balance.BALANCED:
        result.runs[name, 32] = [balance.Run(1000.0, 1.5, "12/11/9", 0, 0, 30.0, "0.6/0.5/0.4")]
        result.runs[name, 4] = [balance.Run(950.0, 1.4, "2/1/1", 0, 0, 3.0, "0.6/0.5/0.3")]
    lines = balance.balance_report([result], options, rounds=1)
    rows = [line for line in lines if line.startswith(f"| {variant.label}")]
    assert len(rows) == 4
    assert "| 95% |" in rows[0]
    assert json.dumps("--balance --quick")[1:-1] in "\n".join(lines)
