"""Refuse abusive operations before they run: size, depth, aliases and cost.

Counted on the operation that will execute, with every fragment spread expanded where it is
spread (an alias inside a fragment spread ten times counts ten times: the bypass of strawberry's
``MaxAliasesLimiter`` fixed in 0.315.7, CVE-2026-47707, is the reason to count it this way). Each
fragment is measured once per type it is spread on, so a document that spreads fragments into
fragments costs linear time to measure, not exponential. Introspection (``__schema``, ``__type``)
counts like any field, but its depth has a limit of its own (:data:`INTROSPECTION_DEPTH`), as the
standard introspection query GraphiQL sends is deeper than any query of FlagShip's data needs.

Cost: each field costs 1; a list multiplies what it holds by its width, which is the page size
(``pagination: {limit}``, at most 100) for a paginated field, and :data:`LIST_WIDTH` for the
unpaginated lists inside an object (environments, states, rules, conditions, variants).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.language import Lexer, Source, TokenKind
from strawberry.extensions import SchemaExtension

from .. import conf
from .errors import failure

LIST_WIDTH = 3  # assumed length of a list that is not paginated (3 environments by default)
PAGE_LIMIT = 100  # strawberry-django's PAGINATION_MAX_LIMIT (and default)
PAGE_TYPE_SUFFIX = (
    "OffsetPaginated",
    "Page",
)  # a page's ``results`` is as wide as the field that asked for the page
# The root fields of introspection, and their types.
INTROSPECTION = {"__schema": "__Schema", "__type": "__Type"}
# How deep introspection may nest: the standard introspection query (graphql-core's
# get_introspection_query, as GraphiQL sends it) is 15 levels deep, its TypeRef fragment following
# ofType 8 times; one more level of ofType is allowed.
INTROSPECTION_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Measure:
    """What a selection set costs: fields (with lists' widths), levels, aliases."""

    cost: int = 0
    depth: int = 0
    aliases: int = 0
    introspection_depth: int = 0  # levels under __schema / __type, limited on their own

    def __add__(self, other: Measure) -> Measure:
        return Measure(
            self.cost + other.cost,
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            max(self.introspection_depth, other.introspection_depth),
        )

    def worst(self, other: Measure) -> Measure:
        """Each figure's larger value (of two operations, one of which will run)."""
        return Measure(
            max(self.cost, other.cost),
            max(self.depth, other.depth),
            max(self.aliases, other.aliases),
            max(self.introspection_depth, other.introspection_depth),
        )


ZERO = Measure()


def _unwrapped(field: GraphQLField) -> tuple[GraphQLNamedType, bool]:
    """The field's named type, and whether it is a list."""
    kind: Any = field.type
    is_list = False
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(kind, GraphQLList)
        kind = kind.of_type
    return kind, is_list


def _int(node: Any, variables: Mapping[str, Any]) -> int | None:
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, VariableNode):
        value = variables.get(node.name.value)
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


def page_limit(field: FieldNode, variables: Mapping[str, Any]) -> int:
    """The page size a paginated field asks for (``pagination: {limit}``), capped."""
    for argument in field.arguments or ():
        if argument.name.value != "pagination":
            continue
        value = argument.value
        limit: int | None = None
        if isinstance(value, ObjectValueNode):
            for member in value.fields:
                if member.name.value == "limit":
                    limit = _int(member.value, variables)
        elif isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            if isinstance(given, Mapping):
                raw = given.get("limit")
                limit = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        if limit is not None and 0 <= limit < PAGE_LIMIT:
            return limit
    return PAGE_LIMIT


class Measurer:
    """Measures one document's operations against the schema (see the module's docstring)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.known: dict[tuple[str, str], Measure] = {}
        self.open: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> Measure:
        """The measure of one operation."""
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root) if root else ZERO

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None
    ) -> Measure:
        """The measure of a selection set on ``parent`` (``None``: a type we cannot see)."""
        total = ZERO
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, kind)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.spread(selection.name.value)
        return total

    def spread(self, name: str) -> Measure:
        """A named fragment's measure, computed once (a cycle, which validation refuses, is 0)."""
        fragment = self.fragments.get(name)
        if fragment is None or name in self.open:
            return ZERO
        kind = self.schema.get_type(fragment.type_condition.name.value)
        key = (name, kind.name if kind else "")
        if key not in self.known:
            self.open.add(name)
            self.known[key] = self.selections(fragment.selection_set, kind)
            self.open.discard(name)
        return self.known[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> Measure:
        """One field: 1, plus what it holds times its width; one level deeper."""
        alias = 1 if node.alias is not None else 0
        name = node.name.value
        fields = getattr(parent, "fields", None)
        definition = fields.get(name) if fields else None
        if name in INTROSPECTION:
            kind = self.schema.get_type(INTROSPECTION[name])
            inner = self.selections(node.selection_set, kind)
            return Measure(
                cost=1 + inner.cost,
                aliases=alias + inner.aliases,
                introspection_depth=1 + max(inner.depth, inner.introspection_depth),
            )
        if definition is None:  # __typename, or a field validation will refuse
            inner = self.selections(node.selection_set, None)
            return Measure(1 + inner.cost, 1 + inner.depth, alias + inner.aliases)
        kind, is_list = _unwrapped(definition)
        width = 1
        if "pagination" in definition.args:
            width = page_limit(node, self.variables)
        elif is_list and not getattr(parent, "name", "").endswith(PAGE_TYPE_SUFFIX):
            width = LIST_WIDTH
        inner = self.selections(node.selection_set, kind)
        return Measure(
            cost=1 + width * inner.cost,
            depth=1 + inner.depth,
            aliases=alias + inner.aliases,
            introspection_depth=inner.introspection_depth,
        )


def executed_operations(document: Any, operation_name: str | None) -> list[OperationDefinitionNode]:
    """The operation that will run (all of them when the name does not pick one)."""
    operations = [
        node for node in document.definitions if isinstance(node, OperationDefinitionNode)
    ]
    if operation_name:
        named = [node for node in operations if node.name and node.name.value == operation_name]
        return named or operations
    return operations


def measure(
    schema: GraphQLSchema, document: Any, operation_name: str | None, variables: Mapping[str, Any]
) -> Measure:
    """The largest measure among the operations that may run."""
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    measurer = Measurer(schema, fragments, variables)
    worst = ZERO
    for operation in executed_operations(document, operation_name):
        worst = worst.worst(measurer.operation(operation))
    return worst


def refusal(found: Measure) -> GraphQLError | None:
    """The error for the first limit ``found`` exceeds, if any."""
    depth, aliases, cost = (
        conf.graphql_max_depth(),
        conf.graphql_max_aliases(),
        conf.graphql_max_cost(),
    )
    if found.depth > depth:
        return failure(
            "query_too_deep",
            f"The query nests fields {found.depth} levels deep; the limit is {depth}.",
            depth=found.depth,
            limit=depth,
        )
    if found.introspection_depth > INTROSPECTION_DEPTH:
        return failure(
            "query_too_deep",
            f"The introspection nests {found.introspection_depth} levels deep; the limit is "
            f"{INTROSPECTION_DEPTH} (the standard introspection query fits).",
            depth=found.introspection_depth,
            limit=INTROSPECTION_DEPTH,
        )
    if found.aliases > aliases:
        return failure(
            "too_many_aliases",
            f"The query uses {found.aliases} aliases (counting each fragment where it is "
            f"spread); the limit is {aliases}.",
            aliases=found.aliases,
            limit=aliases,
        )
    if found.cost > cost:
        return failure(
            "query_too_complex",
            f"The query would resolve about {found.cost} fields (lists count once per item they "
            f"may hold: their page size, or {LIST_WIDTH}); the limit is {cost}. Ask for fewer "
            "fields or smaller pages.",
            cost=found.cost,
            limit=cost,
        )
    return None


def count_tokens(query: str, most: int) -> int:
    """The tokens of ``query``, counting no further than ``most + 1``."""
    lexer = Lexer(Source(query))
    count = 0
    try:
        while count <= most and lexer.advance().kind != TokenKind.EOF:
            count += 1
    except GraphQLSyntaxError:  # the parser reports it, with its place
        pass
    return count


class OperationLimits(SchemaExtension):
    """Refuses what is too large before parsing, and too deep, wide or costly before running.

    The token limit is checked before parsing; depth, aliases and cost before validation.
    """

    def on_parse(self) -> Iterator[None]:
        """Before parsing: the size, in tokens (parsing costs time in proportion to it)."""
        query = self.execution_context.query
        most = conf.graphql_max_tokens()
        if query and len(query) > most and count_tokens(query, most) > most:
            raise failure(
                "query_too_large",
                f"The query has more than {most} tokens; the limit is {most}.",
                limit=most,
            )
        yield

    def on_validate(self) -> Iterator[None]:
        """Before validation: depth, aliases and cost of the operation that will run."""
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            found = measure(
                context.schema._schema, document, context.operation_name, context.variables or {}
            )
            error = refusal(found)
            if error is not None:
                context.pre_execution_errors = [error]
        yield
