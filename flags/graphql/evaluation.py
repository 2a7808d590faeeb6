"""``evaluate``: what a context gets, from the same compiled ruleset as the evaluation API.

Environment keys evaluate in their own environment (naming it is a check, not a choice): a server
key every flag, a client key client-visible flags only, a hidden flag answered exactly like a
missing one; their evaluations are counted as the evaluation API counts them. People (and admin
tokens) with ``view_flagstate`` evaluate in any environment of a project they may see, as the
admin's "Evaluate as" page does, without counting.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from flagship_sdk.engine import ErrorCode, EvaluationResult

from .. import capabilities
from ..delivery.compiled import CompiledRuleset, compiled_ruleset
from ..evaluation.counting import counted
from ..models import FlagState, Project
from .access import context_of, require
from .errors import failure

CLIENT = "client"


@strawberry.type(name="EvaluationResult")
class EvaluationResultType:
    """One flag's value for the context, and why (the evaluation API's fields)."""

    key: str
    value: JSON | None
    variant: str | None
    reason: str
    rule: str | None = strawberry.field(description="The matching rule's id, if one matched.")
    prerequisite: str | None = strawberry.field(description="The prerequisite that failed.")
    error_code: str | None = strawberry.field(description="FLAG_NOT_FOUND and the like.")

    @classmethod
    def of(cls, key: str, result: EvaluationResult) -> EvaluationResultType:
        """The engine's result as a GraphQL object."""
        return cls(
            key=key,
            value=result.value,
            variant=result.variant,
            reason=str(result.reason),
            rule=result.rule,
            prerequisite=result.prerequisite,
            error_code=None if result.error_code is None else str(result.error_code),
        )


@strawberry.type(name="Evaluation")
class EvaluationType:
    """The results of one evaluation, at one ruleset version."""

    version: int = strawberry.field(description="The ruleset version evaluated.")
    flags: list[EvaluationResultType]


def _ruleset(
    info: Info[Any, Any], project: str | None, environment: str
) -> tuple[CompiledRuleset, str | None]:
    """The compiled ruleset to evaluate with, and the key kind asking (``None``: a person)."""
    key = context_of(info).environment_key
    if key is not None and key.environment is not None:
        compiled = compiled_ruleset(key.environment)
        document = compiled.document  # names its project and environment by key
        if document.get("environment") != environment or project not in (
            None,
            document.get("project"),
        ):
            raise failure(
                "environment_mismatch",
                "An environment key evaluates in its own environment only.",
                status=403,
            )
        return compiled, str(key.kind)
    user = require(info, FlagState)
    if project is None:
        raise failure(
            "project_required",
            "Give the project: environment keys are unique within a project only.",
        )
    found = capabilities.visible(Project.objects.filter(key=project), user, "").first()
    place = None if found is None else found.environments.filter(key=environment).first()
    if place is None:
        raise failure(
            "not_found",
            f"There is no environment {environment!r} in project {project!r}.",
            status=404,
        )
    return compiled_ruleset(place), None


def evaluate(
    info: Info[Any, Any],
    environment: str,
    context: JSON | None = None,
    project: str | None = None,
    flags: list[str] | None = None,
) -> EvaluationType:
    """Evaluate every flag (or those in ``flags``, in that order) for ``context``."""
    given: Any = {} if context is None else context
    if not isinstance(given, dict):
        raise failure("invalid", "The context must be an object.")
    compiled, kind = _ruleset(info, project, environment)
    ruleset = compiled.ruleset
    client = kind == CLIENT
    if flags is None:
        results = ruleset.evaluate_all(given, client_visible_only=client)
        served = list(results.values())
        answers = [EvaluationResultType.of(key, results[key]) for key in sorted(results)]
    else:
        served, answers = [], []
        for key in flags:
            hidden = client and not ruleset.client_visible(key)
            result = ruleset.evaluate("\0" if hidden else key, given)
            if result.error_code != ErrorCode.FLAG_NOT_FOUND:
                served.append(result)
            answers.append(EvaluationResultType.of(key, result))
    if kind is not None:
        counted(compiled, served)  # as the evaluation API counts
    return EvaluationType(version=compiled.version, flags=answers)
