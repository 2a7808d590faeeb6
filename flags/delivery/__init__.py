"""Ruleset delivery: how a committed change reaches everything that reads rulesets and keys.

``docs/architecture.md`` ("From a commit to an SDK") draws the whole path and says which module
owns each copy of each state.
"""
