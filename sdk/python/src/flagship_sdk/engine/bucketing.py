"""Deterministic bucketing: MurmurHash3 x86 32-bit into 100 000 buckets (ruleset-format §4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import mmh3

from .values import canonical_string

BUCKETS: Final = 100_000
PARTICIPATION_SEED: Final = 0
SPLIT_SEED: Final = 1


def bucket(salt: str, value: str, seed: int) -> int:
    """Return the bucket in ``[0, 100000)`` of ``value`` for a flag's ``salt`` and a ``seed``."""
    return hash_bucket(f"{salt}:{value}", seed)


def hash_bucket(text: str, seed: int) -> int:
    """Return the bucket of an already joined ``salt:value`` string."""
    return (murmur_text(text, seed) * BUCKETS) >> 32


def murmur_text(text: str, seed: int) -> int:
    """MurmurHash3 x86 32-bit, unsigned, of the UTF-8 form of ``text``.

    A lone surrogate has no UTF-8 form; it is hashed as U+FFFD, as a browser's TextEncoder does.
    The text is always encoded here, never handed to mmh3 as a str: mmh3 5.3 crashes the
    interpreter (SIGSEGV) on a str holding a lone surrogate.
    """
    try:
        return int(mmh3.hash(text.encode(), seed, False))
    except UnicodeEncodeError:
        return int(mmh3.hash(_replace_lone_surrogates(text).encode("utf-8"), seed, False))


def _replace_lone_surrogates(text: str) -> str:
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def bucket_value(context: Mapping[str, Any], attributes: tuple[str, ...]) -> str | None:
    """Return the canonical string of the first bucket-by attribute present, else ``None``."""
    for attribute in attributes:
        value = context.get(attribute)
        if value is not None:
            text = canonical_string(value)
            if text is not None:
                return text
    return None
