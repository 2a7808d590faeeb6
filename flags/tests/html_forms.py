"""Submitting a rendered HTML form the way a browser does, for tests that must send back exactly
what a page shows (not what a test believes the page posts).

``submission(html, form_id)`` builds the form's entry list as the HTML standard describes it
(https://html.spec.whatwg.org/#constructing-the-form-data-set): controls owned by the form (inside
it, or elsewhere with ``form="<id>"``), minus disabled ones; checked boxes only; the selected
options (the first one when a single select has none selected); text inputs without line breaks;
text boxes with CRLF line breaks; colours in lower case; only the submit button pressed.

(No tests here; the name keeps it with the tests it serves.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}\Z")
_NO_VALUE_TYPES = {"submit", "image", "button", "reset", "file"}
_ONE_LINE_TYPES = {"text", "search", "tel", "url", "email", "password"}


@dataclass
class _Control:
    kind: str  # input type, "select", "select-multiple" or "textarea"
    name: str
    owner: str | None  # the id of the form it belongs to
    disabled: bool
    value: str = ""
    checked: bool = False
    options: list[tuple[str, bool, bool]] = field(default_factory=list)  # value, selected, disabled


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[_Control] = []
        self.forms: dict[str, dict[str, str | None]] = {}
        self._form: str | None = None
        self._select: _Control | None = None
        self._option: list[Any] | None = None  # [value or None, selected, disabled, text]
        self._textarea: _Control | None = None

    def _owner(self, attrs: dict[str, str | None]) -> str | None:
        return attrs.get("form") or self._form

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs_list)
        disabled = "disabled" in attrs
        if tag == "form":
            self._form = attrs.get("id") or f"form-{len(self.forms)}"
            self.forms[self._form] = attrs
        elif tag == "input":
            kind = (attrs.get("type") or "text").lower()
            self.controls.append(
                _Control(
                    kind=kind,
                    name=attrs.get("name") or "",
                    owner=self._owner(attrs),
                    disabled=disabled,
                    value=attrs.get("value") or "",
                    checked="checked" in attrs,
                )
            )
        elif tag == "button":
            kind = (attrs.get("type") or "submit").lower()
            self.controls.append(
                _Control(
                    kind=f"button-{kind}",
                    name=attrs.get("name") or "",
                    owner=self._owner(attrs),
                    disabled=disabled,
                    value=attrs.get("value") or "",
                )
            )
        elif tag == "select":
            kind = "select-multiple" if "multiple" in attrs else "select"
            self._select = _Control(kind, attrs.get("name") or "", self._owner(attrs), disabled)
            self.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._close_option()
            self._option = [attrs.get("value"), "selected" in attrs, disabled, ""]
        elif tag == "textarea":
            self._textarea = _Control(
                "textarea", attrs.get("name") or "", self._owner(attrs), disabled
            )
            self.controls.append(self._textarea)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data
        elif self._option is not None:
            self._option[3] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "option":
            self._close_option()
        elif tag == "select":
            self._close_option()
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # The HTML parser drops one line break right after <textarea>.
            if self._textarea.value.startswith("\n"):
                self._textarea.value = self._textarea.value[1:]
            self._textarea = None

    def _close_option(self) -> None:
        if self._option is not None and self._select is not None:
            value, selected, disabled, label = self._option
            text = " ".join(label.split())
            self._select.options.append((text if value is None else value, selected, disabled))
        self._option = None


def forms_of(html: str) -> dict[str, dict[str, str | None]]:
    """The forms of a page, by id, with their attributes (action, method, ...)."""
    reader = _FormReader()
    reader.feed(html)
    return reader.forms


def submission(html: str, form_id: str, submitter: str | None = None) -> list[tuple[str, str]]:
    """The entries a browser sends when ``form_id`` is submitted with the button ``submitter``.

    ``submitter`` is a button's (or submit input's) name; None submits without one.
    """
    reader = _FormReader()
    reader.feed(html)
    assert form_id in reader.forms, f"no form {form_id!r} on the page: {sorted(reader.forms)}"
    entries: list[tuple[str, str]] = []
    pressed = False
    for control in reader.controls:
        if control.owner != form_id or control.disabled or not control.name:
            continue
        kind = control.kind
        if kind in ("submit", "image", "button-submit"):
            if submitter is not None and control.name == submitter and not pressed:
                entries.append((control.name, control.value))
                pressed = True
            continue
        if kind in _NO_VALUE_TYPES or kind.startswith("button-"):
            continue
        if kind in ("checkbox", "radio"):
            if control.checked:
                entries.append((control.name, control.value or "on"))
        elif kind == "select":
            enabled = [option for option in control.options if not option[2]]
            chosen = [option for option in control.options if option[1]]
            picked = chosen[-1:] or enabled[:1]
            entries.extend((control.name, value) for value, _, _ in picked)
        elif kind == "select-multiple":
            entries.extend(
                (control.name, value) for value, selected, _ in control.options if selected
            )
        elif kind == "textarea":
            entries.append((control.name, _LINE_BREAKS.sub("\r\n", control.value)))
        elif kind in _ONE_LINE_TYPES:
            value = control.value.replace("\r", "").replace("\n", "")
            if kind in ("url", "email"):
                value = value.strip()
            entries.append((control.name, value))
        elif kind == "color":
            value = control.value.lower() if _COLOR.match(control.value) else "#000000"
            entries.append((control.name, value))
        else:  # hidden, number, date, ...: the value attribute as it is
            entries.append((control.name, control.value))
    if submitter is not None:
        assert pressed, f"no enabled submit button named {submitter!r} in form {form_id!r}"
    return entries


def encoded(entries: list[tuple[str, str]]) -> str:
    """The entries as an application/x-www-form-urlencoded body."""
    return urlencode(entries)


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
