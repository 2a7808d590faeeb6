"""``docs/schema.graphql`` is the schema the code builds, and the check that says so can fail."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from flags.graphql.errors import INVALID_QUERY
from flags.graphql.schema import printed
from flags.graphql.view import HTTP_CODES

DOCS_SCHEMA = Path(settings.BASE_DIR) / "docs" / "schema.graphql"


def test_checked_in_schema__is_the_codes() -> None:
    # When the schema the code builds is printed
    # Then docs/schema.graphql holds exactly it (`manage.py graphql_schema` rewrites it)
    assert DOCS_SCHEMA.read_text(encoding="utf-8") == printed()


def test_check__schema_file_out_of_date__fails_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a schema file missing one field of the code's schema
    stale = tmp_path / "schema.graphql"
    stale.write_text(printed().replace("  rulesetVersion: Int!\n", ""), encoding="utf-8")

    # When it is checked
    with pytest.raises(CommandError, match="is not the code's schema"):
        call_command("graphql_schema", "--check", "--output", str(stale))

    # Then the diff names the missing field
    assert "+  rulesetVersion: Int!" in capsys.readouterr().err


def test_write_then_check__passes(tmp_path: Path) -> None:
    # When the schema is written to a file and checked
    target = tmp_path / "schema.graphql"
    call_command("graphql_schema", "--output", str(target))
    call_command("graphql_schema", "--check", "--output", str(target))

    # Then the file is the printed schema
    assert target.read_text(encoding="utf-8") == printed()


def _codes_in_code() -> set[str]:
    """Every code the GraphQL package can answer: ``failure(...)``, ``error_response(...)``,
    ``_Refusal(...)`` and the view's table of strawberry's refusals."""
    found: set[str] = {INVALID_QUERY, *HTTP_CODES.values()}
    package = Path(settings.BASE_DIR) / "flags" / "graphql"
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            position = {"failure": 0, "error_response": 1, "_Refusal": 1}.get(node.func.id)
            if position is None or len(node.args) <= position:
                continue
            argument = node.args[position]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.add(argument.value)
    return found


def test_docs__every_graphql_error_code_documented() -> None:
    # Given every code the GraphQL package raises itself
    codes = _codes_in_code()

    # When docs/graphql.md is read
    documented = (Path(settings.BASE_DIR) / "docs" / "graphql.md").read_text(encoding="utf-8")

    # Then each code is in it (as `code`)
    assert len(codes) >= 15  # the scan finds them
    assert sorted(code for code in codes if f"`{code}`" not in documented) == []
