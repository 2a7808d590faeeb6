"""Ruleset delivery: how a committed change reaches caches, processes, streams and webhooks."""
