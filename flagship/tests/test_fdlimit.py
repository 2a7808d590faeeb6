"""The stream server raises its own open-file limit (every stream is a socket)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOW = 256

PROBE = """
import resource, sys
if sys.argv[1] == "asgi":
    from flagship import asgi
    limit = asgi.OPEN_FILES
else:
    from flagship.fdlimit import raise_open_files_limit
    limit = raise_open_files_limit()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
print(limit.before, limit.soft, limit.hard, soft, hard)
"""


def _low_limit() -> None:
    """In the child, before it runs: a soft limit well under the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW, hard))


def _probe(what: str) -> list[int]:
    result = subprocess.run(  # noqa: S603  # this test's own argv
        [sys.executable, "-c", PROBE, what],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "flagship.settings"},
        preexec_fn=_low_limit,  # no threads in the child yet
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [int(value) for value in result.stdout.split()]


@pytest.fixture
def hard_limit() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= LOW:
        pytest.skip(f"the hard open-file limit ({hard}) leaves nothing to raise")
    return hard


def test_raise_open_files_limit__soft_under_hard__raised_to_hard(hard_limit: int) -> None:
    # Given a process whose soft limit is 256 / When it raises its limit
    before, soft, hard, actual_soft, actual_hard = _probe("function")

    # Then its soft limit is the hard one (the kernel's ceiling when unlimited), the hard one
    # unchanged
    assert (before, hard, actual_hard) == (LOW, hard_limit, hard_limit)
    assert actual_soft == soft
    if hard_limit == resource.RLIM_INFINITY:
        assert soft > LOW
    else:
        assert soft == hard_limit


def test_asgi__imported__raises_the_stream_servers_limit(hard_limit: int) -> None:
    # Given the stream server's process with a soft limit of 256 / When it loads flagship.asgi
    before, soft, _, actual_soft, _ = _probe("asgi")

    # Then the limit was raised as it started
    assert before == LOW
    assert soft == actual_soft > LOW
