"""Text arguments may not hold NUL (U+0000): PostgreSQL cannot store or compare it.

REST's serializers refuse it field by field (DRF's ``ProhibitNullCharactersValidator``); here the
root fields' arguments are checked by their declared types before any resolver runs: every
``String`` and ``ID``, in lists and input objects too. ``JSON`` values (a context, a serve) are
left as they are: they are data, never a key to look up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLResolveInfo,
    GraphQLScalarType,
)
from strawberry.extensions import SchemaExtension

from .errors import failure

TEXT_SCALARS = frozenset({"String", "ID"})


def nul_at(value: Any, kind: GraphQLInputType, path: str) -> str | None:
    """Where ``value`` (of GraphQL input type ``kind``) holds a NUL, if it does."""
    while isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    if value is None:
        return None
    if isinstance(kind, GraphQLList):
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            found = nul_at(item, kind.of_type, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(kind, GraphQLInputObjectType) and isinstance(value, Mapping):
        for name, field in kind.fields.items():
            key = field.out_name or name
            if key in value:
                found = nul_at(value[key], field.type, f"{path}.{name}")
                if found:
                    return found
        return None
    if isinstance(kind, GraphQLScalarType) and kind.name in TEXT_SCALARS:
        return path if isinstance(value, str) and "\x00" in value else None
    return None


class NoNulInArguments(SchemaExtension):
    """Refuses a root field whose text arguments hold NUL, with REST's ``invalid``."""

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Check the arguments of root fields; every other field resolves untouched."""
        if info.path.prev is None and kwargs:
            definitions = info.parent_type.fields[info.field_name].args
            for name, argument in definitions.items():
                key = argument.out_name or name
                found = nul_at(kwargs.get(key), argument.type, name) if key in kwargs else None
                if found:
                    raise failure(
                        "invalid",
                        f"{found} holds a NUL character (U+0000), which no text here may hold.",
                        errors=[
                            {
                                "field": found,
                                "code": "null_characters_not_allowed",
                                "message": "Null characters are not allowed.",
                            }
                        ],
                    )
        return _next(root, info, *args, **kwargs)
