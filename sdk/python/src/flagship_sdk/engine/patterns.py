"""RE2 regular expressions: linear-time matching for the ``regex`` operator (one typed wrapper)."""

from __future__ import annotations

from collections.abc import Callable

import re2


def compile_pattern(pattern: str, *, case_insensitive: bool) -> Callable[[str], bool]:
    """Compile ``pattern`` with RE2 and return an unanchored search test.

    Raises ``ValueError`` with RE2's explanation when RE2 cannot compile the pattern (for example a
    back-reference or a look-around, which need backtracking).
    """
    options = re2.Options()
    options.log_errors = False  # RE2 would print every rejected pattern to standard error
    options.case_sensitive = not case_insensitive
    try:
        compiled = re2.compile(pattern, options=options)
    except re2.error as error:
        reason = error.args[0] if error.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None
    search = compiled.search

    def matches(text: str) -> bool:
        return search(text) is not None

    return matches
