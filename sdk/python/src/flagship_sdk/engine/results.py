"""Evaluation results, reasons and error codes (docs/ruleset-format.md §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .errors import RulesetProblem


class Reason:
    """Why a value was served. The names are OpenFeature's, plus ``PREREQUISITE_FAILED``."""

    STATIC: Final = "STATIC"
    DEFAULT: Final = "DEFAULT"
    TARGETING_MATCH: Final = "TARGETING_MATCH"
    SPLIT: Final = "SPLIT"
    DISABLED: Final = "DISABLED"
    PREREQUISITE_FAILED: Final = "PREREQUISITE_FAILED"
    ERROR: Final = "ERROR"


class ErrorCode:
    """Error codes of results with reason ``ERROR`` (OpenFeature's names)."""

    FLAG_NOT_FOUND: Final = "FLAG_NOT_FOUND"
    INVALID_CONTEXT: Final = "INVALID_CONTEXT"
    GENERAL: Final = "GENERAL"


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """The outcome of evaluating one flag for one context.

    Results are shared between evaluations (the engine builds every possible result of a flag when
    it compiles the ruleset), so a ``json`` value must be treated as read-only. ``problem`` is set
    when evaluation passed over a rule that a condition this engine cannot use disabled (lenient
    mode): the answer may differ from a newer engine's.
    """

    key: str
    value: Any
    variant: str | None
    reason: str
    rule: str | None = None
    prerequisite: str | None = None
    error_code: str | None = None
    problem: RulesetProblem | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result as the JSON object of docs/ruleset-format.md §5."""
        return {
            "key": self.key,
            "value": self.value,
            "variant": self.variant,
            "reason": self.reason,
            "rule": self.rule,
            "prerequisite": self.prerequisite,
            "error_code": self.error_code,
            "problem": _problem_dict(self.problem),
        }

    @property
    def is_error(self) -> bool:
        """Whether evaluation failed (the flag is unknown or the context is not an object)."""
        return self.error_code is not None


def _problem_dict(problem: RulesetProblem | None) -> dict[str, Any] | None:
    if problem is None:
        return None
    return {"code": problem.code, "path": problem.path, "message": problem.message}


def error_result(key: Any, code: str) -> EvaluationResult:
    """Build the result for a failed evaluation of ``key``."""
    return EvaluationResult(
        key=key if isinstance(key, str) else repr(key),
        value=None,
        variant=None,
        reason=Reason.ERROR,
        error_code=code,
    )
