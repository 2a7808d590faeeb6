"""What lenient mode reads past instead of refusing (docs/ruleset-format.md §7).

A newer server may send what this engine does not know: a newer minor format version, members it
does not have, operators it does not implement, values in forms it cannot use. Each is recorded
as a ``RulesetProblem``. Unknown members are ignored in both modes (as they always were); a newer
minor version and an unusable condition are errors in strict mode only, and in lenient mode the
condition is false whatever its ``negate``, so its rule (or segment) never matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

from .conditions import OPERATORS, PRESENCE, Condition, compile_condition
from .errors import ProblemCode, RulesetError, RulesetProblem, member_path
from .reading import MEMBERS, as_object, invalid, non_empty_key, optional, required

FORMAT: Final = 1
# The newest minor version of FORMAT this engine reads in full; newer minors only add what lenient
# mode can read past (operators, value forms, members), so they are read with problems.
FORMAT_MINOR: Final = 0


class LenientReader:
    """Reads the parts of a document that newer formats extend, recording what it reads past."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.problems: list[RulesetProblem] = []

    def format_minor(self, minor: int) -> None:
        """Check the minor format version: a newer one is a problem (strict mode: an error)."""
        if minor < 0:
            raise invalid("format_minor", "'format_minor' must be 0 or more")
        if minor <= FORMAT_MINOR:
            return
        if self.strict:
            raise RulesetError(
                "unsupported_format",
                "format_minor",
                f"this engine reads ruleset format {FORMAT}.{FORMAT_MINOR}, not {FORMAT}.{minor}",
            )
        self.problems.append(
            RulesetProblem(
                ProblemCode.NEWER_FORMAT,
                None,
                "format_minor",
                f"format {FORMAT}.{minor} is newer than this engine's {FORMAT}.{FORMAT_MINOR}: "
                "what it does not know is ignored or never matches",
            )
        )

    def members(self, obj: Mapping[str, Any], kind: str, path: str, flag: str | None) -> None:
        """Record each member of ``obj`` that objects of ``kind`` do not have; it is ignored."""
        known = MEMBERS[kind]
        if known.issuperset(obj):
            return
        for name in obj:
            if name not in known:
                text = name if isinstance(name, str) else repr(name)
                self.problems.append(
                    RulesetProblem(
                        ProblemCode.UNKNOWN_FIELD,
                        flag,
                        member_path(path, text),
                        f"unknown member {text!r} ignored",
                    )
                )

    def conditions(
        self, docs: list[Any], path: str, flag: str | None
    ) -> tuple[tuple[Condition, ...], RulesetProblem | None]:
        """Compile the conditions found at ``path``.

        Return the usable ones and the problem of the first one this engine cannot use (lenient
        mode only; strict mode raises): with such a problem, the conditions never all hold.
        """
        predicates = []
        unusable: RulesetProblem | None = None
        for index, doc in enumerate(docs):
            outcome = self._condition(doc, f"{path}.conditions[{index}]", flag)
            if isinstance(outcome, RulesetProblem):
                self.problems.append(outcome)
                unusable = unusable or outcome
            else:
                predicates.append(outcome)
        return tuple(predicates), unusable

    def _condition(self, doc: Any, path: str, flag: str | None) -> Condition | RulesetProblem:
        """Compile one condition or, in lenient mode, say why its operator or values are unusable.

        A condition's frame (an object with a string ``operator`` and ``attribute``, a boolean
        ``negate`` and ``case_insensitive``) is fixed by the format, so an error there is one in
        both modes; the operator and its values are what newer formats extend.
        """
        obj = as_object(doc, path)
        operator = required(obj, "operator", path, str)
        strict = self.strict
        # Strict mode checks in the order it always has, so that its errors stay the same.
        values: Sequence[Any] = _values(obj, operator, path) if strict else ()
        attribute = non_empty_key(obj.get("attribute"), f"{path}.attribute", "an attribute")
        negate = optional(obj, "negate", path, bool, False)
        case_insensitive = optional(obj, "case_insensitive", path, bool, False)
        if not strict:
            if operator not in OPERATORS:
                return RulesetProblem(
                    ProblemCode.UNKNOWN_OPERATOR,
                    flag,
                    f"{path}.operator",
                    f"unknown operator {operator!r}; the condition never matches",
                )
            try:
                values = _values(obj, operator, path)
            except RulesetError as error:
                return _unusable(error, flag)
        try:
            condition = compile_condition(
                attribute=attribute,
                operator=operator,
                values=values,
                negate=negate,
                case_insensitive=case_insensitive,
                path=path,
            )
        except RulesetError as error:
            if strict:
                raise
            return _unusable(error, flag)
        self.members(obj, "condition", path, flag)
        return condition


def _values(obj: Mapping[str, Any], operator: str, path: str) -> list[Any]:
    """A condition's ``values``; only the presence operators may leave them out."""
    if operator in PRESENCE:
        return cast(list[Any], optional(obj, "values", path, list, []))
    return cast(list[Any], required(obj, "values", path, list))


def _unusable(error: RulesetError, flag: str | None) -> RulesetProblem:
    """The problem of a condition that strict mode refuses with ``error``."""
    message = f"{error.message}; the condition never matches"
    return RulesetProblem(error.code, flag, error.path, message)
