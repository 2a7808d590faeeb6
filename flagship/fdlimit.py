"""The process's open-file limit (``RLIMIT_NOFILE``): raised to its ceiling by servers of streams.

Every open stream is a socket, so one stream server holding 10 000 subscribers needs at least
that many file descriptors. A process may raise its own *soft* limit up to its *hard* limit
without privileges; the hard limit is set by whoever starts it (systemd ``LimitNOFILE``, Docker
``ulimits: nofile``, ``ulimit -Hn``). docs/operations.md ("File descriptors") says how.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenFilesLimit:
    """The soft limit before and after :func:`raise_open_files_limit`, and the hard limit."""

    before: int
    soft: int
    hard: int  # ``resource.RLIM_INFINITY`` (-1) when unlimited


def raise_open_files_limit(ceiling: int = 1_048_576) -> OpenFilesLimit:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (at most ``ceiling`` when unlimited).

    Never raises: where the platform refuses, the limit stays as it was (logged).
    """
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(ceiling, _kernel_ceiling()) if hard == resource.RLIM_INFINITY else hard
    soft = before
    if before != resource.RLIM_INFINITY and before < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            logger.warning(
                "fdlimit.not_raised", extra={"soft": before, "hard": hard, "error": repr(error)}
            )
    logger.info("fdlimit.open_files", extra={"before": before, "soft": soft, "hard": hard})
    return OpenFilesLimit(before, soft, hard)


def _kernel_ceiling() -> int:
    """The most any process may open (Linux ``fs.nr_open``; 1 048 576 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1_048_576
