"""Webhooks: change events POSTed to subscribers, signed, retried, never lost (docs/webhooks.md)."""
