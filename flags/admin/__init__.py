"""FlagShip's admin, the product manager's workplace; one module per domain.

- ``flags`` / ``flag_list`` / ``flag_actions`` / ``toggle``: the flag list with its on/off controls
  and what each state serves, bulk actions and confirmations, and the flag page with its variants;
- ``states`` / ``rules_panel``: a flag in one environment (switch, prerequisites, rules read and
  edited in place, default serve);
- ``timeline`` / ``revert``: one timeline per flag, and reverting an environment to a moment of it;
- ``compare``: environments side by side;
- ``targeting``: the list of rules (each opens on its state's page) and segments;
- ``projects``: projects, environments and tags;
- ``evaluate``: "Evaluate as", the engine's answer for a context;
- ``schedules``: scheduled changes and ramps (scheduled, read, cancelled; the flag page's panel);
- ``change_requests`` / ``proposals``: change requests (list, page, review/apply/rebase/withdraw
  buttons), and every flag-changing page proposing instead in an environment that takes them;
- ``evaluations``: evaluation counts reported by SDKs (read-only);
- ``webhooks``: webhooks (secret shown once, rotation, test events), their deliveries
  (redelivery) and the change events (read-only);
- ``base``: reasons, history, reverts and service refusals shared by every model admin;
- ``forms``: the admin's forms and widgets (and the audit page's filters, ``flagship.admin_site``).
"""

from . import change_requests, evaluations, flags, projects, schedules, states, targeting, webhooks

__all__ = [
    "change_requests",
    "evaluations",
    "flags",
    "projects",
    "schedules",
    "states",
    "targeting",
    "webhooks",
]
