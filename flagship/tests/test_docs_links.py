"""The README and docs/ point only at what exists: relative links (with their anchors) and the
repository paths they name in code spans.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from flagship.tests.markdown import ROOT, anchors, code_spans, links, read

DOCUMENTS = ["README.md", *sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))]

# Guides outside docs/ that the README must link to.
TOP_LEVEL_GUIDES = {"CONTRIBUTING.md"}

# Code spans naming a repository path start with one of these (`flags/worker.py`,
# `docs/webhooks.md`, `sdk/vectors/`); other spans are commands, settings and URLs.
REPOSITORY_DIRECTORIES = (
    "flags/",
    "flagship/",
    "accounts/",
    "docs/",
    "sdk/",
    "bench/",
    "examples/",
    "templates/",
    ".ci/",
    ".github/",
)
_PATH = re.compile(r"[\w./\-]+")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)


def _relative(document: str, target: str) -> str:
    """``target`` (relative to ``document``'s folder) as a path from the repository root."""
    folder = (ROOT / document).parent
    resolved = (folder / unquote(target)).resolve()
    return resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else target


def _broken_link(document: str, target: str) -> str | None:
    """Why ``target`` in ``document`` leads nowhere, or ``None`` when it resolves."""
    path, _, anchor = target.partition("#")
    relative = _relative(document, path) if path else document
    if not (ROOT / relative).exists():
        return f"{target}: no file {relative}"
    if anchor and relative.endswith(".md") and anchor not in anchors(read(relative)):
        return f"{target}: no heading #{anchor} in {relative}"
    return None


@pytest.mark.parametrize("document", DOCUMENTS)
def test_relative_links__in_readme_and_docs__resolve_to_files_and_headings(document: str) -> None:
    # Given the relative links of a document (web addresses and site paths are not files)
    targets = [
        target
        for target in links(read(document))
        if not _SCHEME.match(target) and not target.startswith("/")
    ]
    # When each is resolved against the repository
    broken = [reason for target in targets if (reason := _broken_link(document, target))]
    # Then every one names an existing file (and heading)
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS)
def test_repository_paths__named_in_code_spans__exist(document: str) -> None:
    # Given the code spans of a document that name a path of the repository
    paths = [
        span
        for span in code_spans(read(document))
        if span.startswith(REPOSITORY_DIRECTORIES) and _PATH.fullmatch(span)
    ]
    # When each is looked up from the repository root
    missing = [path for path in paths if not (ROOT / path.rstrip("/")).exists()]
    # Then every one exists
    assert missing == []


def test_readme__links__reach_every_guide_in_docs() -> None:
    # Given the README's links, resolved from the repository root
    linked = {
        _relative("README.md", target.partition("#")[0]) for target in links(read("README.md"))
    }
    # When they are compared with the guides in docs/
    guides = {document for document in DOCUMENTS if document.startswith("docs/")}
    # Then the README leads to each one, and to the contributors' guide
    assert guides - linked == set()
    assert TOP_LEVEL_GUIDES - linked == set()
