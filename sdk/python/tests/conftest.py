"""Shared helpers for the SDK's tests: where the golden vectors live, and a ruleset builder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def load_vectors(name: str) -> Any:
    """Load one golden-vector file from sdk/vectors/."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


# Vector files that are not plain evaluation groups (forward-compat.json adds problems to them).
NOT_EVALUATION_FILES = frozenset({"buckets.json", "invalid.json", "forward-compat.json"})


def evaluation_vector_files() -> list[Path]:
    """Every vector file holding plain evaluation groups (see ``NOT_EVALUATION_FILES``)."""
    return sorted(path for path in VECTORS.glob("*.json") if path.name not in NOT_EVALUATION_FILES)


def boolean_flag(**overrides: Any) -> dict[str, Any]:
    """A minimal valid boolean flag document, with members replaced by ``overrides``."""
    flag: dict[str, Any] = {
        "kind": "boolean",
        "variants": {"on": True, "off": False},
        "enabled": True,
        "off_variant": "off",
        "default_serve": {"variant": "on"},
    }
    flag.update(overrides)
    return flag


def document(flags: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A ruleset document around ``flags``."""
    return {"format": 1, "version": 1, "flags": flags, **extra}
