"""Webhook delivery benchmark: a burst of changes, five subscriptions, workers as deployed."""
