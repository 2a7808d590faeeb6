"""What the engine reports about a document: errors, and problems lenient mode reads past.

``RulesetError`` is the one exception the engine raises (docs/ruleset-format.md §6);
``RulesetProblem`` is what a compiled ruleset records instead (§7).
"""

import json
from dataclasses import dataclass
from typing import Final


class RulesetError(ValueError):
    """A ruleset document is invalid; ``code`` is stable, ``path`` names the offending member."""

    def __init__(self, code: str, path: str, message: str) -> None:
        self.code = code
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ProblemCode:
    """Codes of the problems a compiled ruleset records (``Ruleset.problems``).

    The first three are the codes strict mode raises for the same member.
    """

    UNKNOWN_OPERATOR: Final = "unknown_operator"
    INVALID_VALUE: Final = "invalid_value"
    INVALID_DOCUMENT: Final = "invalid_document"  # only for a condition's ``values``
    UNKNOWN_FIELD: Final = "unknown_field"
    NEWER_FORMAT: Final = "newer_format"


@dataclass(frozen=True, slots=True)
class RulesetProblem:
    """Something in a document this engine does not understand and worked around.

    ``flag`` is the flag the member belongs to (``None`` for the document and its segments);
    ``path`` is written like a ``RulesetError``'s.
    """

    code: str
    flag: str | None
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} at {self.path}: {self.message}"


def key_path(parent: str, key: str) -> str:
    """Path of a user-chosen key (flag, segment, variant) under ``parent``."""
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def member_path(parent: str, name: str) -> str:
    """Path of a member named ``name`` of the object at ``parent`` (a key path when not a name)."""
    if name.isidentifier() and name.isascii():
        return f"{parent}.{name}" if parent else name
    return key_path(parent, name)
