"""Evaluation counts: bounded in memory, batched, posted, merged back on failure."""

from __future__ import annotations

import logging
import re
import threading

from flagship_sdk import __version__
from flagship_sdk.client.counts import (
    MAX_BATCH,
    CountsSender,
    EvaluationCounter,
    count_value,
    hour_of,
)
from flagship_sdk.client.transport import Transport

from .conftest import ClientFactory, wait_for
from .fake_server import SERVER_KEY, FakeServer, free_port

HOUR = re.compile(r"\d{4}-\d\d-\d\dT\d\d:00:00Z")


def sender_for(server: FakeServer, counter: EvaluationCounter) -> CountsSender:
    transport = Transport(server.url, SERVER_KEY, 0.5)
    return CountsSender(counter, transport, 60, logging.getLogger("test"))


def test_counts_are_posted_on_close(make_client: ClientFactory, server: FakeServer) -> None:
    client = make_client(send_evaluation_counts=True, counts_interval=60)
    assert client.wait_until_ready(5)
    for _ in range(5):
        client.is_enabled("feature")
    client.evaluate("feature", False)
    client.evaluate("feature", False)  # the cached details are counted too
    client.get_string("missing", "d")
    client.evaluate_all()
    client.close()
    assert len(server.count_payloads) == 1
    payload = server.count_payloads[0]
    assert payload["sdk"] == f"flagship-python/{__version__}"
    counts = {(c["flag"], c["variant"]): c["count"] for c in payload["counts"]}
    assert counts == {("feature", "on"): 8, ("missing", None): 1}
    assert all(HOUR.fullmatch(c["hour"]) for c in payload["counts"])


def test_counts_are_sent_periodically(make_client: ClientFactory, server: FakeServer) -> None:
    client = make_client(send_evaluation_counts=True, counts_interval=0.05)
    assert client.wait_until_ready(5)
    client.is_enabled("feature")
    assert wait_for(lambda: len(server.count_payloads) >= 1)


def test_failed_send_is_merged_back(server: FakeServer) -> None:
    counter = EvaluationCounter()
    sender = sender_for(server, counter)
    counter.record("a", "on")
    counter.record("a", "on")
    server.counts_mode = "500"
    assert sender.flush() is False
    assert list(counter.pending().values()) == [2]
    counter.record("a", "on")
    server.counts_mode = "ok"
    assert sender.flush() is True
    assert [c["count"] for c in server.count_payloads[0]["counts"]] == [3]
    assert sender.flush() is True  # nothing left
    assert len(server.count_payloads) == 1


def test_unreachable_server_keeps_counts() -> None:
    down = FakeServer(free_port())
    counter = EvaluationCounter()
    sender = sender_for(down, counter)
    counter.record("a", None)
    assert sender.flush() is False
    assert sum(counter.pending().values()) == 1


def test_refused_batches_are_dropped(server: FakeServer) -> None:
    counter = EvaluationCounter()
    sender = sender_for(server, counter)
    counter.record("a", "on")
    server.counts_mode = "reset"
    assert sender.flush() is False
    server.counts_mode = "ok"
    original = server.document
    assert original  # the fake server answers 404 for unknown paths; simulate with a bad path
    sender._transport._prefix = "/nowhere"
    assert sender.flush() is True  # a 4xx is final: the counts are not retried forever
    assert counter.pending() == {}


def test_batches_hold_at_most_1000_entries(server: FakeServer) -> None:
    counter = EvaluationCounter()
    sender = sender_for(server, counter)
    for index in range(2 * MAX_BATCH + 500):
        counter.record(f"flag-{index}", "on")
    assert sender.flush() is True
    assert [len(p["counts"]) for p in server.count_payloads] == [1000, 1000, 500]


def test_counter_is_bounded() -> None:
    counter = EvaluationCounter(max_keys=3)
    for flag in "abcde":
        counter.record(flag, "on")
        counter.record(flag, "on")
    assert counter.dropped == 4
    counter.rotate(grace=0)
    pending = counter.pending()
    assert len(pending) == 3
    counter.merge({("x", None, "2026-01-01T00:00:00Z"): 5})  # beyond the bound
    assert counter.dropped == 9
    counter.merge({next(iter(pending)): 1})
    assert sum(counter.pending().values()) == 7


def test_hours_roll_over() -> None:
    now = [3600.0 * 10 + 5]
    counter = EvaluationCounter(clock=lambda: now[0])
    counter.record("a", "on")
    now[0] += 3600
    counter.rotate(grace=0)
    counter.record("a", "on")
    counter.rotate(grace=0)
    assert sorted(counter.pending()) == [
        ("a", "on", "1970-01-01T10:00:00Z"),
        ("a", "on", "1970-01-01T11:00:00Z"),
    ]
    assert hour_of(7200.5) == ("1970-01-01T02:00:00Z", 10800.0)


def test_counts_from_many_threads_are_exact() -> None:
    counter = EvaluationCounter()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(5000):
            counter.record("a", "on")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.rotate()
    assert counter.pending() == {("a", "on", counter.hour): 40_000}


def test_count_value_of_a_fresh_cell() -> None:
    counter = EvaluationCounter()
    assert count_value(counter.cell("a", None)) == 0
    assert len(counter.drain()) == 0


def test_rotation_keeps_the_cells_dict_and_frees_idle_keys() -> None:
    counter = EvaluationCounter()
    cells = counter.cells
    counter.record("busy", "on")
    counter.record("idle", "on")
    counter.rotate(grace=0)
    assert counter.cells is cells
    assert set(cells) == {("busy", "on"), ("idle", "on")}
    counter.record("busy", "on")
    counter.rotate(grace=0)
    assert set(cells) == {("busy", "on")}  # "idle" served nothing for a whole period
    assert sum(counter.pending().values()) == 3
