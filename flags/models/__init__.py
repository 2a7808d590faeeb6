"""FlagShip's domain model (DESIGN section 4), split by domain."""

from .change_requests import ChangeRequest, ChangeRequestReview, ProposedState
from .evaluations import FlagEvaluationCount
from .flags import Flag, FlagState, Prerequisite, Variant
from .projects import Environment, Project, Tag
from .schedules import ScheduledChange, ScheduledStep
from .staleness import FlagStaleness
from .targeting import Condition, Rule, Segment
from .webhooks import ChangeEvent, Webhook, WebhookDelivery

__all__ = [
    "ChangeEvent",
    "ChangeRequest",
    "ChangeRequestReview",
    "Condition",
    "Environment",
    "Flag",
    "FlagEvaluationCount",
    "FlagStaleness",
    "FlagState",
    "Prerequisite",
    "Project",
    "ProposedState",
    "Rule",
    "ScheduledChange",
    "ScheduledStep",
    "Segment",
    "Tag",
    "Variant",
    "Webhook",
    "WebhookDelivery",
]
