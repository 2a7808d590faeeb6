"""Every write to FlagShip's data goes through these functions (admin, API and commands alike).

Each validates (``full_clean`` and, for anything that affects evaluation, the engine in strict
mode), saves with history recording the actor, and advances the affected environments' ruleset
version in the same transaction.
"""

from .bulk import FlagSpec, flags_bulk_create
from .change_requests import (
    change_request_apply,
    change_request_approve,
    change_request_rebase,
    change_request_reject,
    change_request_withdraw,
    promotion_propose,
    proposing,
    schedule_propose,
)
from .common import validate_states
from .exporting import project_export
from .flags import (
    flag_archive,
    flag_create,
    flag_delete,
    flag_state_lock,
    flag_state_update,
    flag_toggle,
    flag_unarchive,
    flag_update,
    variant_create,
    variant_delete,
    variant_update,
)
from .import_plan import ImportPlan
from .project_import import project_import
from .projects import (
    environment_create,
    environment_update,
    project_create,
    project_update,
    tag_create,
    tag_delete,
    tag_update,
)
from .promotion import Promotion, flags_promote, promotion_preview
from .restore import flag_state_restore
from .schedules import StepSpec, run_due, schedule_cancel, schedule_create
from .targeting import (
    condition_delete,
    condition_save,
    prerequisite_add,
    prerequisite_remove,
    rule_create,
    rule_delete,
    rule_duplicate,
    rule_update,
    rules_reorder,
    segment_create,
    segment_delete,
    segment_update,
)
from .webhooks import (
    clean_events,
    delivery_redeliver,
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_send_test,
    webhook_update,
)

__all__ = [
    "FlagSpec",
    "ImportPlan",
    "Promotion",
    "StepSpec",
    "change_request_apply",
    "change_request_approve",
    "change_request_rebase",
    "change_request_reject",
    "change_request_withdraw",
    "clean_events",
    "condition_delete",
    "condition_save",
    "delivery_redeliver",
    "environment_create",
    "environment_update",
    "flag_archive",
    "flag_create",
    "flag_delete",
    "flag_state_lock",
    "flag_state_restore",
    "flag_state_update",
    "flag_toggle",
    "flag_unarchive",
    "flag_update",
    "flags_bulk_create",
    "flags_promote",
    "prerequisite_add",
    "prerequisite_remove",
    "project_create",
    "project_export",
    "project_import",
    "project_update",
    "promotion_preview",
    "promotion_propose",
    "proposing",
    "rule_create",
    "rule_delete",
    "rule_duplicate",
    "rule_update",
    "rules_reorder",
    "run_due",
    "schedule_cancel",
    "schedule_create",
    "schedule_propose",
    "segment_create",
    "segment_delete",
    "segment_update",
    "tag_create",
    "tag_delete",
    "tag_update",
    "validate_states",
    "variant_create",
    "variant_delete",
    "variant_update",
    "webhook_create",
    "webhook_delete",
    "webhook_rotate_secret",
    "webhook_send_test",
    "webhook_update",
]
