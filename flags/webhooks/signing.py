"""Signatures of deliveries, as the Standard Webhooks specification defines them.

Three headers: ``webhook-id`` (the event id: the same for every attempt and redelivery, so a
receiver drops duplicates by it), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256, under the secret's key bytes, of
``<id>.<timestamp>.<body>``. A receiver recomputes it, compares in constant time and refuses
timestamps too far from its clock (a replay) and ids it has seen (``docs/webhooks.md``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from .secrets import key_bytes


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header a delivery carries besides the content type."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def verify(secret: str, message_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether a ``webhook-signature`` header holds this message's signature (any listed one)."""
    expected = signature(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())
