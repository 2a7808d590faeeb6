"""FlagShip's domain model (DESIGN section 4), split by domain."""

from .evaluations import FlagEvaluationCount
from .flags import Flag, FlagState, Prerequisite, Variant
from .projects import Environment, Project, Tag
from .targeting import Condition, Rule, Segment

__all__ = [
    "Condition",
    "Environment",
    "Flag",
    "FlagEvaluationCount",
    "FlagState",
    "Prerequisite",
    "Project",
    "Rule",
    "Segment",
    "Tag",
    "Variant",
]
