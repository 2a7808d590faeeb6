"""The GraphQL API at ``/graphql`` (strawberry-graphql-django), beside the REST API.

It reads and writes through the same selectors, services and permissions as ``/api/v1/``;
``docs/graphql.md`` is its guide and ``docs/schema.graphql`` its schema, checked against this code.
"""
