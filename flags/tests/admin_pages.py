"""Admin pages as the admin tests read them: element trees, messages, form errors."""

from __future__ import annotations

from typing import Any

from django.contrib.messages import get_messages
from django.test.html import Element, parse_html

Found = tuple[Element, list[Element]]  # an element and its ancestors, nearest last


def page(response: Any) -> Element:
    """The response body as an element tree."""
    return parse_html(response.content.decode())


def attributes(element: Element) -> dict[str, str | None]:
    """An element's attributes as a dict."""
    return dict(element.attributes)


def text(element: Element | str) -> str:
    """The text inside an element, whitespace collapsed."""
    if isinstance(element, str):
        return element
    return " ".join(" ".join(text(child) for child in element.children).split())


def find_all(root: Element, tag: str | None = None, /, **wanted: str) -> list[Found]:
    """Elements (with their ancestors) whose tag is ``tag`` and whose attributes match.

    Attribute names use ``_`` for ``-``: ``data_testid="x"`` matches ``data-testid="x"``.
    """
    expected = {key.replace("_", "-"): value for key, value in wanted.items()}
    found: list[Found] = []

    def walk(element: Element, ancestors: list[Element]) -> None:
        present = attributes(element)
        if (tag is None or element.name == tag) and all(
            present.get(key) == value for key, value in expected.items()
        ):
            found.append((element, ancestors))
        for child in element.children:
            if isinstance(child, Element):
                walk(child, [*ancestors, element])

    walk(root, [])
    return found


def find_one(root: Element, tag: str | None = None, /, **wanted: str) -> Found:
    """The single element matching, with its ancestors (fails unless exactly one matches)."""
    found = find_all(root, tag, **wanted)
    assert len(found) == 1, f"expected one {tag or 'element'} {wanted}, found {len(found)}"
    return found[0]


def nearest(ancestors: list[Element], name: str) -> Element | None:
    """The closest ancestor with tag ``name``."""
    return next((element for element in reversed(ancestors) if element.name == name), None)


def messages_of(response: Any) -> list[str]:
    """The messages the request added, in order."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def field_errors(response: Any, field: str) -> list[str]:
    """Errors the admin form shows next to ``field``."""
    form = response.context["adminform"].form
    return [str(error) for error in form.errors.get(field, [])]
