"""FlagShip's admin, the product manager's workplace; one module per domain.

- ``flags`` / ``flag_list`` / ``flag_actions`` / ``toggle``: the flag list with its on/off controls,
  bulk actions, and the flag page with its variants;
- ``states``: a flag in one environment (default serve, rules, prerequisites);
- ``targeting``: rules and segments with their conditions;
- ``projects``: projects, environments and tags;
- ``evaluate``: "Evaluate as", the engine's answer for a context;
- ``evaluations``: evaluation counts reported by SDKs (read-only);
- ``base``: history, reverts and service refusals shared by every model admin.
"""

from . import evaluations, flags, projects, states, targeting

__all__ = ["evaluations", "flags", "projects", "states", "targeting"]
