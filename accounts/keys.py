"""API key secrets: issuing, recognising and checking them.

A secret reads ``fss_<lookup><secret>`` (server), ``fsc_…`` (client) or ``fsa_…`` (admin token):
the prefix tells people and secret scanners what leaked; ``lookup`` (12 characters) finds the row;
the whole string's SHA-256 is what is stored and compared.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from typing import Final

PREFIXES: Final = {"server": "fss_", "client": "fsc_", "admin": "fsa_"}
KIND_OF_PREFIX: Final = {prefix: kind for kind, prefix in PREFIXES.items()}
LOOKUP_LENGTH: Final = 12
SECRET_LENGTH: Final = 32
_ALPHABET: Final = string.ascii_letters + string.digits
# What follows the prefix: ASCII letters and digits only (not str.isalnum: that accepts "²").
_WELL_FORMED: Final = re.compile(f"[A-Za-z0-9]{{{LOOKUP_LENGTH + SECRET_LENGTH}}}")


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_secret(kind: str) -> tuple[str, str, str]:
    """Return ``(secret, lookup, hash)`` for a new key of ``kind``."""
    lookup = _random(LOOKUP_LENGTH)
    secret = f"{PREFIXES[kind]}{lookup}{_random(SECRET_LENGTH)}"
    return secret, lookup, digest(secret)


def digest(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(secret: str) -> tuple[str, str] | None:
    """Return ``(kind, lookup)`` of a well-formed secret, else ``None``."""
    kind = KIND_OF_PREFIX.get(secret[:4])
    if kind is None or _WELL_FORMED.fullmatch(secret, 4) is None:
        return None
    return kind, secret[4 : 4 + LOOKUP_LENGTH]


def matches(secret: str, stored_hash: str) -> bool:
    """Compare a presented secret with a stored hash in constant time."""
    return hmac.compare_digest(digest(secret), stored_hash)
