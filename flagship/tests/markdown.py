"""Reading the project's Markdown for the documentation tests: sections, links, anchors, tables."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_CODE = re.compile(r"`+[^`]*`+")


def read(relative: str) -> str:
    """The text of a file of the repository."""
    return (ROOT / relative).read_text(encoding="utf-8")


def prose_lines(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (fence lines included as blank)."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else line)
    return lines


def fenced_blocks(text: str, language: str) -> list[str]:
    """The contents of the fenced code blocks of ``language`` (```mermaid and such)."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None and stripped == f"```{language}":
            current = []
        elif current is not None and stripped.startswith("```"):
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    visible = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    return re.sub(r"[^\w\- ]", "", visible.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown document (repeated headings get -1, -2, ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[str]:
    """The targets of the Markdown links and images of ``text``, outside code."""
    targets: list[str] = []
    for line in prose_lines(text):
        targets.extend(match.group(1) for match in _LINK.finditer(_INLINE_CODE.sub("", line)))
    return targets


def code_spans(text: str) -> list[str]:
    """The contents of the inline code spans of ``text``, outside fenced blocks."""
    spans: list[str] = []
    for line in prose_lines(text):
        spans.extend(match.group(0).strip("`") for match in _INLINE_CODE.finditer(line))
    return spans


def section(text: str, heading: str) -> str:
    """The body of the section titled ``heading`` (any level), up to the next heading as high."""
    lines = text.splitlines()
    prose = prose_lines(text)  # a "# comment" in a code block is no heading
    for index, line in enumerate(prose):
        match = _HEADING.match(line)
        if match and match.group(2) == heading:
            level = len(match.group(1))
            body: list[str] = []
            for number in range(index + 1, len(lines)):
                other = _HEADING.match(prose[number])
                if other and len(other.group(1)) <= level:
                    break
                body.append(lines[number])
            return "\n".join(body)
    raise AssertionError(f"no section {heading!r}")
