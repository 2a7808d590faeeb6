"""API routes answer with or without their trailing slash: the same view, method and body.

Clients drop or add a trailing slash (Postman and newman drop it from a collection's URLs), and
Django's ``APPEND_SLASH`` answers a POST without one with a ``RuntimeError`` in DEBUG and a 301
that clients follow as a GET, without the body, in production. ``slash_optional`` makes each
endpoint match both forms instead, so nothing is redirected. The patterns themselves are kept, so
``reverse()`` and the OpenAPI document still give the canonical form (``projects/``,
``evaluate``). The admin is not wrapped and keeps Django's redirect for GETs.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import ResolverMatch, URLPattern, URLResolver


class SlashOptionalPattern(URLPattern):
    """An endpoint that also matches its path with the trailing slash added or removed.

    A path ending in a slash is tried without it first: a ``<path:...>`` or ``(?P<key>.*)``
    parameter would otherwise take the slash into the key (``evaluate/new-checkout/``).
    """

    def resolve(self, path: str) -> ResolverMatch | None:
        """The match of ``path``, or else of ``path`` with its trailing slash toggled."""
        if path.endswith("/"):
            return super().resolve(path[:-1]) or super().resolve(path)
        return super().resolve(path) or super().resolve(path + "/")


def slash_optional(
    patterns: Iterable[URLPattern | URLResolver],
) -> list[URLPattern | URLResolver]:
    """``patterns`` with every endpoint slash-optional (included URLconfs wrap their own)."""
    return [
        SlashOptionalPattern(item.pattern, item.callback, item.default_args, item.name)
        if isinstance(item, URLPattern)
        else item
        for item in patterns
    ]
