"""Text arguments may not hold NUL (U+0000): PostgreSQL cannot store or compare it.

REST's serializers refuse it field by field (DRF's ``ProhibitNullCharactersValidator``); here the
arguments of the operation's root fields are checked by their declared types once, before
anything runs: every ``String`` and ``ID``, in lists and input objects too. ``JSON`` values (a
context, a serve) are left as they are: they are data, never a key to look up. Checked once per
operation rather than around every resolver: a hook on each field would cost every field of
every answer (about 1,400 of them in an evaluation of 200 flags).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from graphql.utilities import value_from_ast_untyped
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
            member = value.get(name)  # as sent: GraphQL's names
            found = nul_at(member, field.type, f"{path}.{name}")
            if found:
                return found
        return None
    if isinstance(kind, GraphQLScalarType) and kind.name in TEXT_SCALARS:
        return path if isinstance(value, str) and "\x00" in value else None
    return None


def root_fields(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[FieldNode]:
    """The fields of a root selection set, through inline fragments and fragment spreads."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from root_fields(fragment.selection_set, fragments, seen)


class NoNulInArguments(SchemaExtension):
    """Refuses an operation whose root fields' text arguments hold NUL, with REST's ``invalid``."""

    def on_execute(self) -> Iterator[None]:
        """Before execution: every root field's arguments, literals and variables alike."""
        context = self.execution_context
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name) if document else None
        root = context.schema._schema.get_root_type(operation.operation) if operation else None
        if operation is not None and root is not None and document is not None:
            fragments = {
                node.name.value: node
                for node in document.definitions
                if isinstance(node, FragmentDefinitionNode)
            }
            for node in root_fields(operation.selection_set, fragments, set()):
                definition = root.fields.get(node.name.value)
                if definition is None:
                    continue
                variables = context.variables or {}
                for given in node.arguments or ():
                    name = given.name.value
                    argument = definition.args.get(name)
                    if argument is None:
                        continue  # validation refused it already
                    found = nul_at(
                        value_from_ast_untyped(given.value, variables), argument.type, name
                    )
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
        yield
