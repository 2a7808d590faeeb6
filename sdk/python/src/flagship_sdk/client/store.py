"""The ruleset the client holds, its backup file and bootstrap documents."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..engine import Ruleset


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A compiled ruleset with the document it came from and its ETag."""

    ruleset: Ruleset
    document: Mapping[str, Any]
    etag: str | None
    source: str

    @property
    def version(self) -> int:
        """The ruleset's version."""
        return self.ruleset.version


def compile_snapshot(document: Any, etag: str | None, source: str) -> Snapshot:
    """Compile a ruleset document (raise ``RulesetError``/``ValueError`` when it is invalid)."""
    if not isinstance(document, Mapping):
        raise ValueError("a ruleset document is a JSON object")
    return Snapshot(Ruleset.from_dict(document), document, etag, source)


def load_bootstrap(bootstrap: str | os.PathLike[str] | Mapping[str, Any]) -> Any:
    """The ruleset document of a bootstrap: a mapping as is, a path read as JSON.

    A file holding a backup (``{"ruleset": {...}, ...}``) is accepted as well.
    """
    if isinstance(bootstrap, Mapping):
        document: Any = bootstrap
    else:
        document = json.loads(Path(bootstrap).read_text(encoding="utf-8"))
    if isinstance(document, Mapping) and "flags" not in document and "ruleset" in document:
        return document["ruleset"]
    return document


def changed_flags(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Keys of the flags whose definition differs between two documents (None: not known)."""
    if old is None:
        return tuple(sorted(_flags(new)))
    if old.get("segments") != new.get("segments"):
        return None  # a segment change may affect any flag using it
    old_flags, new_flags = _flags(old), _flags(new)
    return tuple(
        sorted(
            key
            for key in old_flags.keys() | new_flags.keys()
            if old_flags.get(key) != new_flags.get(key)
        )
    )


def _flags(document: Mapping[str, Any]) -> Mapping[str, Any]:
    flags = document.get("flags")
    return flags if isinstance(flags, Mapping) else {}


def write_backup(path: str | os.PathLike[str], snapshot: Snapshot) -> None:
    """Write the backup atomically: a temporary file in the same directory, fsync, replace."""
    target = Path(path)
    payload = {
        "etag": snapshot.etag,
        "version": snapshot.version,
        "saved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ruleset": snapshot.document,
    }
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


def read_backup(path: str | os.PathLike[str]) -> Snapshot:
    """Load and compile a backup file (raise ``OSError``/``ValueError`` when it cannot be)."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(payload, Mapping) or not isinstance(payload.get("ruleset"), Mapping):
        raise ValueError("not a FlagShip backup file")
    etag = payload.get("etag")
    return compile_snapshot(payload["ruleset"], etag if isinstance(etag, str) else None, "backup")
