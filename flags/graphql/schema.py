"""The schema: queries, mutations, and the extensions every operation passes through.

``OperationLimits`` refuses abusive documents before they run, ``DjangoOptimizerExtension``
turns selections into joins and prefetches, and ``ProblemErrors`` gives every error the REST
API's code. ``docs/schema.graphql`` is :func:`printed` of this schema (``manage.py
graphql_schema --check`` compares them; CI runs it).
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry_django.optimizer import DjangoOptimizerExtension

from .arguments import NoNulInArguments
from .errors import ProblemErrors
from .limits import OperationLimits
from .mutations import Mutation
from .queries import Query


class QuerysetOptimizer(DjangoOptimizerExtension):
    """strawberry-django's optimizer, for its own fields only.

    Its fields optimize the querysets they resolve themselves (through the optimizer this
    extension sets for the operation); its ``resolve`` hook, which also optimizes querysets that
    plain resolvers return, wraps every field of every answer, and none of ours returns one: in
    an evaluation of 200 flags (1,400 fields) it took a fifth of the time under cProfile.
    """

    resolve = SchemaExtension.resolve  # type: ignore[assignment]  # the base's: no hook


class FlagShipSchema(strawberry.Schema):
    """Logs nothing itself: ``ProblemErrors`` logs unexpected errors, with the request id."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Expected errors (permissions, validation) are answers, not incidents."""


schema = FlagShipSchema(
    query=Query,
    mutation=Mutation,
    extensions=[OperationLimits, NoNulInArguments, QuerysetOptimizer, ProblemErrors],
    config=StrawberryConfig(disable_field_suggestions=True),
)


def printed() -> str:
    """The schema in SDL, as ``docs/schema.graphql`` holds it."""
    return schema.as_str() + "\n"
