"""FlagShip's evaluation engine: compile a ruleset document once, evaluate flags for contexts.

Pure Python with no framework import; the semantics are docs/ruleset-format.md, pinned by the golden
vectors in sdk/vectors/.
"""

from .bucketing import BUCKETS, PARTICIPATION_SEED, SPLIT_SEED, bucket
from .compiler import KINDS, is_value_of_kind
from .conditions import OPERATORS
from .errors import ProblemCode, RulesetError, RulesetProblem
from .leniency import FORMAT, FORMAT_MINOR
from .prerequisites import MAX_PREREQUISITE_DEPTH
from .results import ErrorCode, EvaluationResult, Reason
from .ruleset import Ruleset

__all__ = [
    "BUCKETS",
    "FORMAT",
    "FORMAT_MINOR",
    "KINDS",
    "MAX_PREREQUISITE_DEPTH",
    "OPERATORS",
    "PARTICIPATION_SEED",
    "SPLIT_SEED",
    "ErrorCode",
    "EvaluationResult",
    "ProblemCode",
    "Reason",
    "Ruleset",
    "RulesetError",
    "RulesetProblem",
    "bucket",
    "is_value_of_kind",
]
