"""Delivery: how a committed change reaches everything that reads rulesets, keys and events.

``changes`` is the change event every write emits; the other modules carry a committed ruleset
change to caches, processes, streams and SDKs. ``docs/architecture.md`` ("From a commit to an
SDK") draws the whole path and says which module owns each copy of each state.
"""
