"""Reading the members of a ruleset document, and the members each object of the format has.

Required and optional members of a type, keys and bucket-by lists: every reader raises
``RulesetError`` with code ``invalid_document`` and the member's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .errors import RulesetError

# The members of every object of format 1.0, by the name docs/ruleset.schema.json gives its
# definition ("document" is the root); the schema lists the same (a test compares them).
MEMBERS: Final[dict[str, frozenset[str]]] = {
    "document": frozenset(
        {"format", "format_minor", "version", "project", "environment", "segments", "flags"}
    ),
    "segment": frozenset({"conditions"}),
    "flag": frozenset(
        {
            "kind",
            "variants",
            "enabled",
            "off_variant",
            "rules",
            "default_serve",
            "prerequisites",
            "salt",
            "client_visible",
        }
    ),
    "rule": frozenset({"id", "conditions", "segments", "rollout", "bucket_by", "serve"}),
    "variantServe": frozenset({"variant"}),
    "splitServe": frozenset({"split", "bucket_by"}),
    "splitEntry": frozenset({"variant", "weight"}),
    "prerequisite": frozenset({"flag", "variants"}),
    "condition": frozenset({"attribute", "operator", "values", "negate", "case_insensitive"}),
}


def invalid(path: str, message: str) -> RulesetError:
    """An ``invalid_document`` error at ``path``."""
    return RulesetError("invalid_document", path, message)


def required(obj: Mapping[str, Any], name: str, path: str, kind: type | tuple[type, ...]) -> Any:
    """The member ``name`` of ``obj`` (at ``path``), which must be present and of ``kind``."""
    where = f"{path}.{name}" if path else name
    if name not in obj:
        raise invalid(where, f"{name!r} is required")
    value = obj[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise invalid(where, f"{name!r} must be {_describe(kind)}")
    return value


def optional(
    obj: Mapping[str, Any], name: str, path: str, kind: type | tuple[type, ...], default: Any
) -> Any:
    """The member ``name`` of ``obj`` (of ``kind``) when present and not null, else ``default``."""
    if obj.get(name) is None:
        return default
    return required(obj, name, path, kind)


def _describe(kind: type | tuple[type, ...]) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true or false",
        int: "an integer",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def as_object(value: Any, path: str) -> Mapping[str, Any]:
    """``value``, which must be a JSON object."""
    if not isinstance(value, Mapping):
        raise invalid(path, "must be an object")
    return value


def non_empty_key(value: Any, path: str, what: str) -> str:
    """``value``, which must be a non-empty string (``what`` names it in the message)."""
    if not isinstance(value, str) or not value:
        raise invalid(path, f"{what} must be a non-empty string")
    return value


def attribute_list(value: Any, path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A ``bucket_by``: one attribute name or a non-empty list of them (``None``: ``default``)."""
    if value is None:
        return default
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise invalid(path, "bucket_by must be an attribute name or a non-empty list of them")
