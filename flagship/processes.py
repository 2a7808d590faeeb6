"""Child processes for tests and benchmarks: servers started in their own process group.

``Processes`` starts each child with its output in ``<logs>/<name>.log`` and stops it with its
whole process group (gunicorn's workers, uvicorn's reloaders...): SIGTERM, then SIGKILL after
10 s. ``free_port`` picks a loopback port; ``wait_http`` waits until a child answers.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Processes:
    """Child processes started in their own process group, stopped group by group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        """Start ``argv`` with output to ``<logs>/<name>.log``."""
        log = (self.logs / f"{name}.log").open("wb")
        child = subprocess.Popen(  # noqa: S603  # the caller's own argv
            list(argv),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.children.append((name, child))

    def stop(self) -> None:
        """SIGTERM each child's process group, then SIGKILL what is left after 10 s."""
        for _, child in self.children:
            if child.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.children.clear()

    def stop_one(self, name: str) -> None:
        """Stop one child's process group (SIGTERM, then SIGKILL after 10 s)."""
        for entry in list(self.children):
            child_name, child = entry
            if child_name != name:
                continue
            if child.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            self.children.remove(entry)

    def kill(self, name: str) -> None:
        """SIGKILL one child's process group at once (a crash: nothing runs its clean-up)."""
        for entry in list(self.children):
            child_name, child = entry
            if child_name == name:
                with suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                self.children.remove(entry)

    def rss_mb(self, name: str) -> float:
        """Resident memory of a child and its descendants (Linux ``/proc``), in MB."""
        pids = [child.pid for child_name, child in self.children if child_name == name]
        total_kb = 0
        while pids:
            pid = pids.pop()
            with suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pids.extend(int(p) for p in (task / "children").read_text().split())
        return total_kb / 1024

    def tail(self, name: str, lines: int = 30) -> str:
        """The end of a child's log, for error messages."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_http(port: int, path: str, processes: Processes, name: str, timeout: float = 60) -> None:
    """Wait until ``GET path`` answers (any status) on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:  # not listening yet, or too busy starting to answer within 2 s
            time.sleep(0.2)
        finally:
            connection.close()  # a connection that timed out too (else a ResourceWarning later)
    raise RuntimeError(f"{name} did not start on port {port}:\n{processes.tail(name)}")
