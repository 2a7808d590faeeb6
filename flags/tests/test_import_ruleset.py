"""The ruleset import (``flags.services.importing`` and ``manage.py import_ruleset``)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from bench.engine.contexts import make_contexts
from bench.engine.workloads import mixed_flags
from flags import documents
from flags.models import Environment, Flag, FlagState, Project, Rule, Segment
from flags.services.importing import import_ruleset
from flagship_sdk.engine import Ruleset

CONTEXTS = 300


def _w4() -> dict[str, Any]:
    return copy.deepcopy(mixed_flags().document)


def _flag(**members: Any) -> dict[str, Any]:
    return {
        "kind": "boolean",
        "variants": {"on": True, "off": False},
        "enabled": True,
        "off_variant": "off",
        "default_serve": {"variant": "on"},
        **members,
    }


def _nothing_written(project: Project) -> bool:
    return not Flag.objects.filter(project=project).exists() and not (
        Segment.objects.filter(project=project).exists()
    )


def test_import__w4_mix__stored_ruleset_evaluates_like_the_document(
    production: Environment,
) -> None:
    # Given the engine benchmark's W4 document (200 flags, segments, splits, prerequisites)
    document = _w4()
    version = production.ruleset_version
    # When it is imported into production and the environment's ruleset is rebuilt
    result = import_ruleset(document=document, environment=production)
    stored = documents.environment_ruleset(production)
    # Then everything was written, and the version moved
    assert (result.flags, result.segments_created, result.left_out) == (200, 5, {})
    assert sorted(stored["flags"]) == sorted(document["flags"])
    assert stored["version"] > version
    assert result.rules == Rule.objects.filter(state__environment=production).count()
    # And every flag evaluates as the document does, rule ids mapped back
    original = Ruleset.from_dict(document, strict=True)
    imported = Ruleset.from_dict(stored, strict=True)
    for context in make_contexts(CONTEXTS):
        expected = original.evaluate_all(context)
        observed = imported.evaluate_all(context)
        for key, want in expected.items():
            got = observed[key]
            rule = result.rule_ids[got.rule] if got.rule is not None else None
            assert (got.value, got.variant, got.reason, rule, got.prerequisite) == (
                want.value,
                want.variant,
                want.reason,
                want.rule,
                want.prerequisite,
            ), key


def test_import__other_environments__get_switched_off_states(
    project: Project, production: Environment, staging: Environment
) -> None:
    # Given the W4 document imported into production
    import_ruleset(document=_w4(), environment=production)
    # When staging's states are read
    states = FlagState.objects.filter(environment=staging)
    # Then every flag has one there, off, without rules
    assert states.count() == 200
    assert not states.filter(enabled=True).exists()
    assert not Rule.objects.filter(state__environment=staging).exists()


def test_import__inexpressible_flag__refused_and_nothing_written(
    project: Project, production: Environment
) -> None:
    # Given the W4 document with one flag whose key the model cannot hold
    document = _w4()
    document["flags"]["spaced key"] = _flag()
    # When it is imported
    with pytest.raises(ValidationError) as raised:
        import_ruleset(document=document, environment=production)
    # Then the reason names the flag, and nothing was written
    assert 'flag "spaced key": flag key not URL-safe' in raised.value.messages[0]
    assert _nothing_written(project)


def test_import__skip_inexpressible__leaves_those_flags_out(
    project: Project, production: Environment
) -> None:
    # Given a document with a cycle and a flag depending on a null-valued flag
    document = {
        "format": 1,
        "version": 1,
        "flags": {
            "fine": _flag(),
            "a": _flag(prerequisites=[{"flag": "b"}]),
            "b": _flag(prerequisites=[{"flag": "a"}]),
            "nulled": {
                **_flag(kind="json"),
                "variants": {"n": None},
                "off_variant": "n",
                "default_serve": {"variant": "n"},
            },
            "child": _flag(prerequisites=[{"flag": "nulled"}]),
        },
    }
    # When it is imported leaving out what cannot be stored
    result = import_ruleset(document=document, environment=production, skip_inexpressible=True)
    # Then only the fine flag is there, and the others are reported
    assert list(Flag.objects.filter(project=project).values_list("key", flat=True)) == ["fine"]
    assert sorted(result.left_out) == ["a", "b", "child", "nulled"]


def test_import__flag_key_taken__refused_after_segments_and_nothing_written(
    project: Project, production: Environment
) -> None:
    # Given a project that already has one of the document's flag keys (checked after the
    # segments are created)
    document = _w4()
    taken = next(iter(document["flags"]))
    other = {"format": 1, "version": 1, "flags": {taken: _flag()}}
    import_ruleset(document=other, environment=production)
    # When the document is imported
    with pytest.raises(ValidationError, match=f'Flag "{taken}" already exists'):
        import_ruleset(document=document, environment=production)
    # Then the segments created before the refusal were rolled back too
    assert Flag.objects.filter(project=project).count() == 1
    assert not Segment.objects.filter(project=project).exists()


def test_import__invalid_document__refused_by_the_engine(
    project: Project, production: Environment
) -> None:
    # Given a flag whose default serve names a variant it does not have
    document = {"format": 1, "version": 1, "flags": {"x": _flag(default_serve={"variant": "no"})}}
    # When it is imported
    with pytest.raises(ValidationError) as raised:
        import_ruleset(document=document, environment=production)
    # Then the engine's words, with the flag, are the reason
    assert 'Flag "x"' in raised.value.messages[0]
    assert _nothing_written(project)


def test_import__segment_key_taken_with_other_conditions__refused(
    project: Project, production: Environment
) -> None:
    # Given the W4 document imported once, then a copy whose "internal" segment differs
    import_ruleset(document=_w4(), environment=production)
    document = {
        "format": 1,
        "version": 1,
        "segments": {"internal": {"conditions": []}},
        "flags": {"extra": _flag()},
    }
    # When the copy is imported
    with pytest.raises(ValidationError, match='Segment "internal" already exists'):
        import_ruleset(document=document, environment=production)
    # Then the identical segments could be reused instead
    document["segments"] = {"internal": _w4()["segments"]["internal"]}
    result = import_ruleset(document=document, environment=production)
    assert (result.segments_created, result.segments_reused) == (0, 1)


def test_command__creates_project_and_reports_counts(db: None, tmp_path: Path) -> None:
    # Given the W4 document in a file and no project
    path = tmp_path / "w4.json"
    path.write_text(json.dumps(_w4()))
    out = io.StringIO()
    # When it is imported with --create
    call_command(
        "import_ruleset", str(path), project="bench", environment="load", create=True, stdout=out
    )
    # Then the counts are printed and the flags are there
    assert "Imported into bench/load" in out.getvalue()
    assert "200 flags" in out.getvalue()
    assert "5 segments created" in out.getvalue()
    assert Environment.objects.get(project__key="bench", key="load").states.count() == 200


def test_command__refusal__command_error_with_the_reason(
    production: Environment, tmp_path: Path
) -> None:
    # Given a document with a flag the model cannot hold
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": 1, "version": 1, "flags": {"a b": _flag()}}))
    # When it is imported, or the environment does not exist
    with pytest.raises(CommandError, match="flag key not URL-safe"):
        call_command("import_ruleset", str(path), project="demo", environment="production")
    with pytest.raises(CommandError, match="--create"):
        call_command("import_ruleset", str(path), project="demo", environment="nowhere")
    # Then nothing was written
    assert not Flag.objects.filter(project=production.project).exists()


def test_import__stored_differently__refused_and_nothing_written(
    project: Project, production: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a database that would hand back one flag changed (as PostgreSQL's jsonb turns the
    # float 1e23 into an integer)
    built = documents.environment_ruleset

    def changed(environment: Environment) -> dict[str, Any]:
        document = built(environment)
        document["flags"]["x"]["variants"] = {"big": 100000000000000000000000}
        return document

    monkeypatch.setattr(documents, "environment_ruleset", changed)
    document = {
        "format": 1,
        "version": 1,
        "flags": {
            "x": {
                "kind": "number",
                "variants": {"big": 1e23},
                "enabled": True,
                "off_variant": "big",
                "default_serve": {"variant": "big"},
            }
        },
    }
    # When it is imported
    with pytest.raises(ValidationError, match='Flag "x" would be stored differently'):
        import_ruleset(document=document, environment=production)
    # Then nothing was written
    assert _nothing_written(project)
