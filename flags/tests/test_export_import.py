"""Project export and import (docs/export-format.md): round trip, dry run, refusals, modes, API.

The round trip is the promise that matters: a project exported, wiped and imported into a database
that no longer holds it gives every flag, in every environment, the same evaluation result for
10 000 contexts, and exports the same document again.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from bench.engine.contexts import make_contexts
from flags import documents, services
from flags.management import demo
from flags.models import (
    ChangeEvent,
    Condition,
    Environment,
    Flag,
    FlagState,
    Prerequisite,
    Project,
    Rule,
    Segment,
    Tag,
    Variant,
)
from flags.tests import awkward_data
from flags.tests.api_clients import client_for
from flagship_sdk.engine import Ruleset

CONTEXTS = 10_000
COUNTED = (Project, Environment, Tag, Segment, Flag, Variant, FlagState, Rule, Condition)


# --- helpers --------------------------------------------------------------------------------------


def rich_project(actor: User) -> Project:
    """The demo shop with the awkward flags added (every kind, splits, prerequisites, segments)."""
    project = demo.seed_project(demo.Report(), actor)
    awkward_data.populate(project, actor)
    return project


def snapshot() -> dict[str, Any]:
    """Everything an import may change: row counts, ruleset versions, events, every export."""
    return {
        "counts": {model.__name__: model.objects.count() for model in COUNTED},
        "prerequisites": Prerequisite.objects.count(),
        "events": ChangeEvent.objects.count(),
        "versions": dict(Environment.objects.values_list("pk", "ruleset_version")),
        "exports": {p.key: services.project_export(p) for p in Project.objects.all()},
    }


def as_json(document: dict[str, Any]) -> dict[str, Any]:
    """The document as it travels (through JSON text)."""
    travelled: dict[str, Any] = json.loads(json.dumps(document))
    return travelled


def contexts() -> list[dict[str, Any]]:
    """The benchmark's contexts with the attributes the awkward rules read, some left out."""
    result = make_contexts(CONTEXTS)
    for n, context in enumerate(result):
        if n % 3:
            context["companyId"] = f"company-{n % 97}"
        if n % 4 == 0:
            context["appVersion"] = f"1.{n % 5}.{n % 11}"
        if n % 5 == 0:
            context["ip"] = f"10.0.{n % 256}.1"
        if n % 7 == 0:
            context["signup"] = "2024-06-01T00:00:00Z"
    return result


def results(project: Project, people: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every flag's result per environment and context: value, variant, reason, error code."""
    found: dict[str, list[Any]] = {}
    for environment in project.environments.order_by("key"):
        ruleset = Ruleset.from_dict(documents.environment_ruleset(environment), strict=True)
        for key in sorted(
            Flag.objects.filter(project=project, archived=False).values_list("key", flat=True)
        ):
            found[f"{environment.key}/{key}"] = [
                json.dumps(
                    [r.value, r.variant, str(r.reason), r.error_code], sort_keys=True, default=str
                )
                for r in (ruleset.evaluate(key, context) for context in people)
            ]
    return found


# --- the round trip -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_project_import__export_into_empty_database__same_results_for_10000_contexts(
    administrator: User,
) -> None:
    # Given a rich project, its export, and every flag's results over 10 000 contexts
    project = rich_project(administrator)
    services.flag_archive(flag=Flag.objects.get(project=project, key="dark-mode"), actor=None)
    exported = as_json(services.project_export(project))
    people = contexts()
    before = results(project, people)
    # ... and a database that no longer holds the project nor its tags
    project.delete()
    Tag.objects.all().delete()
    products = Project.objects.filter(system=False)
    flags = Flag.objects.filter(project__system=False)
    assert (flags.count(), Segment.objects.count(), products.count()) == (0, 0, 0)

    # When the export is imported
    plan = services.project_import(exported, actor=administrator)

    # Then the project is back, every flag gives the same results everywhere
    imported = Project.objects.get(key=exported["project"]["key"])
    assert plan.created is True
    after = results(imported, people)
    assert sorted(after) == sorted(before)
    differing = [key for key in before if before[key] != after[key]]
    assert differing == []
    assert len(before) == 3 * (len(exported["flags"]) - 1)  # the archived flag is not served
    # ... and exporting again gives the same document
    assert as_json(services.project_export(imported)) == exported


@pytest.mark.django_db
def test_project_import__export_under_new_key__same_results_and_original_untouched(
    administrator: User,
) -> None:
    # Given a rich project and its export
    project = rich_project(administrator)
    exported = as_json(services.project_export(project))
    people = contexts()[:1000]

    # When it is imported under another key (a copy next to the original)
    services.project_import(exported, actor=administrator, project_key="copy")

    # Then the copy evaluates as the original and exports the same apart from its key
    copy_project = Project.objects.get(key="copy")
    assert results(copy_project, people) == results(project, people)
    again = as_json(services.project_export(copy_project))
    assert again == {**exported, "project": {**exported["project"], "key": "copy"}}
    assert as_json(services.project_export(project)) == exported


@pytest.mark.django_db
def test_project_import__archived_prerequisite_chain__round_trips_and_reimports_unchanged(
    administrator: User,
) -> None:
    # Given awkward-json requiring awkward-number, both archived (dependant first), and the export
    project = services.project_create(key="odd", name="Odd")
    awkward_data.populate(project, administrator)
    services.flag_archive(flag=Flag.objects.get(key="awkward-json"), actor=None)
    services.flag_archive(flag=Flag.objects.get(key="awkward-number"), actor=None)
    exported = as_json(services.project_export(project))

    # When it is imported into a new project, and again over the original
    services.project_import(exported, actor=None, project_key="odd-copy")
    again = services.project_import(exported, actor=None)

    # Then the copy holds the same archived chain, and the original needed no change
    copied = as_json(services.project_export(Project.objects.get(key="odd-copy")))
    assert copied == {**exported, "project": {**exported["project"], "key": "odd-copy"}}
    assert again.lines() == ["(no changes)"]


# --- dry run and apply ----------------------------------------------------------------------------


def edited(document: dict[str, Any]) -> dict[str, Any]:
    """The demo export with a flag renamed, one state changed, a flag and a segment added."""
    changed = copy.deepcopy(document)
    changed["project"]["description"] = "Edited."
    flags = {flag["key"]: flag for flag in changed["flags"]}
    flags["banner-text"]["name"] = "Banner"
    flags["dark-mode"]["states"]["staging"]["enabled"] = not flags["dark-mode"]["states"][
        "staging"
    ]["enabled"]
    new = copy.deepcopy(flags["dark-mode"])
    new.update(key="dark-mode-2", name="Dark mode 2", owner=None)
    changed["flags"].append(new)
    changed["segments"].append(
        {"key": "germans", "name": "Germans", "description": "", "conditions": []}
    )
    # In the export's order (by key), so that the project exports as this document once applied.
    changed["flags"].sort(key=lambda flag: flag["key"])
    changed["segments"].sort(key=lambda segment: segment["key"])
    return changed


@pytest.mark.django_db
def test_project_import__dry_run__returns_the_diff_and_writes_nothing(
    administrator: User,
) -> None:
    # Given the demo project and an edited export of it
    project = rich_project(administrator)
    document = edited(as_json(services.project_export(project)))
    before = snapshot()

    # When the import is only planned
    plan = services.project_import(document, actor=administrator, dry_run=True)

    # Then the plan names each change, and nothing at all was written
    assert plan.dry_run is True
    assert plan.flags == {"created": ["dark-mode-2"], "changed": ["banner-text"]}
    assert plan.states == {"changed": ["dark-mode/staging"]}
    assert plan.segments == {"created": ["germans"]}
    assert plan.environments == {}
    assert plan.project_changed is True
    assert "~ flag banner-text (changed)" in plan.lines()
    assert snapshot() == before


@pytest.mark.django_db
def test_project_import__apply_after_dry_run__makes_exactly_the_planned_changes(
    administrator: User,
) -> None:
    # Given the demo project, an edited export, and the dry run's plan
    project = rich_project(administrator)
    document = edited(as_json(services.project_export(project)))
    planned = services.project_import(document, actor=administrator, dry_run=True)
    events = ChangeEvent.objects.count()

    # When it is applied
    applied = services.project_import(document, actor=administrator)

    # Then the same changes were made, the project now exports as the document, and once
    assert applied.as_dict() == {**planned.as_dict(), "dry_run": False}
    project.refresh_from_db()
    assert as_json(services.project_export(project)) == document
    imported = ChangeEvent.objects.filter(kind="project.imported")
    assert imported.count() == 1
    assert ChangeEvent.objects.count() > events
    # ... and applying it again changes nothing, and announces nothing
    events = ChangeEvent.objects.count()
    assert services.project_import(document, actor=administrator).lines() == ["(no changes)"]
    assert ChangeEvent.objects.count() == events


# --- refusals change nothing ----------------------------------------------------------------------


def refused(document: Any, **options: Any) -> ValidationError:
    """The refusal of an import, having checked it changed nothing."""
    before = snapshot()
    with pytest.raises(ValidationError) as caught:
        services.project_import(document, actor=None, **options)
    assert snapshot() == before
    return caught.value


@pytest.mark.django_db
def test_project_import__rule_names_unknown_variant_in_last_flag__refused_nothing_changed(
    administrator: User,
) -> None:
    # Given an edited export whose last flag has a rule serving a variant it lacks
    project = rich_project(administrator)
    document = edited(as_json(services.project_export(project)))
    last = document["flags"][-1]["states"]["production"]
    last["rules"].append(
        {**last["rules"][0], "serve": {"variant": "nope"}}
        if last["rules"]
        else {
            "description": "",
            "conditions": [],
            "segments": [],
            "rollout": None,
            "bucket_by": "targetingKey",
            "serve": {"variant": "nope"},
        }
    )

    # When it is imported, Then it is refused with its code, and nothing changed
    assert refused(document).code == "unknown_variant"


@pytest.mark.django_db
def test_project_import__prerequisite_cycle__refused_by_the_engine(administrator: User) -> None:
    # Given an export where two flags require each other in staging
    project = rich_project(administrator)
    document = as_json(services.project_export(project))
    flags = {flag["key"]: flag for flag in document["flags"]}
    flags["dark-mode"]["states"]["staging"]["prerequisites"] = [
        {"flag": "new-checkout", "variants": []}
    ]
    flags["new-checkout"]["states"]["staging"]["prerequisites"] = [
        {"flag": "dark-mode", "variants": []}
    ]

    # When it is imported, Then the engine refuses it, and nothing changed
    assert refused(document).code == "prerequisite_cycle"


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("not an object", "invalid_document"),
        ({"format": "flagship-project", "version": 2}, "unsupported_version"),
        ({"format": "flagship-project", "version": 1, "project": {"key": "x"}}, "invalid_document"),
    ],
)
@pytest.mark.django_db
def test_project_import__malformed_document__refused_with_code(document: Any, code: str) -> None:
    # Given a malformed document, When imported, Then refused with its code, nothing changed
    assert refused(document).code == code


@pytest.mark.django_db
def test_project_import__failure_midway__rolls_everything_back(administrator: User) -> None:
    # Given an edited export whose last flag changes kind (refused only once writes have begun)
    project = rich_project(administrator)
    document = edited(as_json(services.project_export(project)))
    flags = {flag["key"]: flag for flag in document["flags"]}
    flags["search-results-per-page"]["kind"] = "string"
    flags["search-results-per-page"]["variants"] = [
        {**variant, "value": str(variant["value"])}
        for variant in flags["search-results-per-page"]["variants"]
    ]

    # When it is imported, Then it is refused and the earlier changes are undone too
    assert refused(document).code == "kind_mismatch"


# --- merge and replace ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_project_import__merge__leaves_unnamed_flags_and_segments_alone(
    administrator: User,
) -> None:
    # Given a project and an export holding only one of its flags and no segment
    project = rich_project(administrator)
    document = as_json(services.project_export(project))
    document["flags"] = [flag for flag in document["flags"] if flag["key"] == "banner-text"]
    document["flags"][0]["description"] = "Changed."
    document["segments"] = []
    live = Flag.objects.filter(project=project, archived=False).count()

    # When merged
    plan = services.project_import(document, actor=None, mode="merge")

    # Then only that flag changed
    assert plan.flags == {"changed": ["banner-text"]}
    assert plan.segments == {}
    assert Flag.objects.filter(project=project, archived=False).count() == live


@pytest.mark.django_db
def test_project_import__replace__archives_unnamed_flags_and_deletes_unnamed_segments(
    administrator: User,
) -> None:
    # Given the demo project and an export without a flag nobody requires, and a new segment only
    project = demo.seed_project(demo.Report(), administrator)
    services.segment_create(project=project, key="unused", name="Unused", actor=None)
    document = as_json(services.project_export(project))
    document["flags"] = [flag for flag in document["flags"] if flag["key"] != "banner-text"]
    document["segments"] = [s for s in document["segments"] if s["key"] != "unused"]

    # When replaced
    plan = services.project_import(document, actor=None, mode="replace")

    # Then the flag is archived (not deleted) and the segment deleted
    assert plan.flags == {"archived": ["banner-text"]}
    assert plan.segments == {"deleted": ["unused"]}
    assert Flag.objects.get(project=project, key="banner-text").archived is True
    assert not Segment.objects.filter(project=project, key="unused").exists()


@pytest.mark.django_db
def test_project_import__replace__unnamed_flags_archived_together_dependants_first(
    administrator: User,
) -> None:
    # Given the awkward flags (awkward-json requires awkward-number) and an export naming neither
    project = services.project_create(key="odd", name="Odd")
    awkward_data.populate(project, administrator)
    document = as_json(services.project_export(project))
    document["flags"] = [
        flag for flag in document["flags"] if flag["key"] not in ("awkward-number", "awkward-json")
    ]

    # When replaced
    plan = services.project_import(document, actor=None, mode="replace")

    # Then both are archived, whatever order the database lists them in
    assert plan.flags == {"archived": ["awkward-json", "awkward-number"]}


@pytest.mark.django_db
def test_project_import__replace_deleting_a_segment_in_use__refused_nothing_changed(
    administrator: User,
) -> None:
    # Given an archived flag whose rules use a segment, and an export naming neither
    project = services.project_create(key="odd", name="Odd")
    awkward_data.populate(project, administrator)
    services.flag_archive(flag=Flag.objects.get(key="awkward-json"), actor=None)
    services.flag_archive(flag=Flag.objects.get(key="awkward-number"), actor=None)
    document = as_json(services.project_export(project))
    document["flags"] = [
        flag for flag in document["flags"] if flag["key"] not in ("awkward-number", "awkward-json")
    ]
    document["segments"] = []

    # When replaced, Then refused (the archived flag could not be brought back), nothing changed
    assert refused(document, mode="replace").code == "in_use"


# --- commands -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_flags__project__json_on_stdout(administrator: User) -> None:
    # Given the demo project
    project = demo.seed_project(demo.Report(), administrator)

    # When exported by the command
    out = io.StringIO()
    call_command("export_flags", "demo", stdout=out)

    # Then stdout is the export document
    assert json.loads(out.getvalue()) == as_json(services.project_export(project))


@pytest.mark.django_db
def test_import_flags__dry_run_then_apply__prints_the_diff(
    administrator: User, tmp_path: Path
) -> None:
    # Given an edited export in a file
    project = demo.seed_project(demo.Report(), administrator)
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(edited(as_json(services.project_export(project)))))
    before = snapshot()

    # When imported with --dry-run, Then the diff is printed and nothing written
    out = io.StringIO()
    call_command("import_flags", str(path), "--dry-run", stdout=out)
    assert out.getvalue().splitlines()[0] == "Dry run (nothing written): project demo, mode merge."
    assert "+ flag dark-mode-2 (created)" in out.getvalue()
    assert snapshot() == before

    # When imported for real, Then the same diff, and the flag exists
    out = io.StringIO()
    call_command("import_flags", str(path), "--mode", "merge", stdout=out)
    assert "+ flag dark-mode-2 (created)" in out.getvalue()
    assert Flag.objects.filter(project=project, key="dark-mode-2").exists()


@pytest.mark.django_db
def test_export_flags__output_file__imports_from_stdin_under_another_key(
    administrator: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the demo project exported to a file by the command
    project = demo.seed_project(demo.Report(), administrator)
    path = tmp_path / "demo.json"
    call_command("export_flags", "demo", "--output", str(path))

    # When the file is fed to import_flags on stdin, under another key
    monkeypatch.setattr("sys.stdin", io.StringIO(path.read_text()))
    out = io.StringIO()
    call_command("import_flags", "-", "--project", "demo-copy", stdout=out)

    # Then the copy exists, as the original apart from its key, and its history says why
    assert out.getvalue().splitlines()[:2] == [
        "Imported: project demo-copy, mode merge.",
        "+ project demo-copy",
    ]
    copied = as_json(services.project_export(Project.objects.get(key="demo-copy")))
    original = as_json(services.project_export(project))
    assert copied == {**original, "project": {**original["project"], "key": "demo-copy"}}
    flag = Flag.objects.get(project__key="demo-copy", key="banner-text")
    assert flag.history.first().history_change_reason == "Project import (merge)"


@pytest.mark.django_db
def test_export_flags__unknown_project__command_error() -> None:
    # Given no project, When exported, Then the command fails with the reason
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("export_flags", "nope")


@pytest.mark.django_db
def test_import_flags__invalid_file__exit_status_1_and_nothing_changed(
    administrator: User, tmp_path: Path
) -> None:
    # Given an export naming an unknown segment
    project = demo.seed_project(demo.Report(), administrator)
    document = as_json(services.project_export(project))
    document["flags"][0]["states"]["staging"]["rules"] = [
        {
            "description": "",
            "conditions": [],
            "segments": ["nobody"],
            "rollout": None,
            "bucket_by": "targetingKey",
            "serve": {"variant": document["flags"][0]["variants"][0]["key"]},
        }
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    before = snapshot()

    # When imported, Then the command fails with status 1 and the reason, and nothing changed
    with pytest.raises(CommandError) as caught:
        call_command("import_flags", str(path))
    assert caught.value.returncode == 1
    assert str(caught.value).startswith("unknown_segment:")
    assert snapshot() == before


# --- API ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_api__viewer__gets_the_document(administrator: User) -> None:
    # Given the demo project and a Viewer
    project = demo.seed_project(demo.Report(), administrator)
    client = client_for("viewer", project.environments.get(key="staging"))

    # When the Viewer exports it, Then the document
    response = client.get("/api/v1/projects/demo/export/")
    assert response.status_code == 200
    assert response.json() == as_json(services.project_export(project))


@pytest.mark.parametrize("caller", ["viewer", "editor", "release_manager", "server_key"])
@pytest.mark.django_db
def test_import_api__not_an_administrator__403_nothing_changed(
    administrator: User, caller: str
) -> None:
    # Given the demo project, an edited export, and a caller who is not an Administrator
    project = demo.seed_project(demo.Report(), administrator)
    document = edited(as_json(services.project_export(project)))
    client = client_for(caller, project.environments.get(key="staging"))
    before = snapshot()

    # When it imports, Then 403 and nothing changed
    response = client.post("/api/v1/import/", document, format="json")
    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.django_db
def test_export_api__server_key__403(administrator: User) -> None:
    # Given an SDK key, When it asks for an export, Then 403
    project = demo.seed_project(demo.Report(), administrator)
    client = client_for("server_key", project.environments.get(key="staging"))
    assert client.get("/api/v1/projects/demo/export/").status_code == 403


@pytest.mark.django_db
def test_import_api__administrator__dry_run_then_apply(administrator: User) -> None:
    # Given the demo project, an edited export and an Administrator
    project = demo.seed_project(demo.Report(), administrator)
    document = edited(as_json(services.project_export(project)))
    client = client_for("administrator", project.environments.get(key="staging"))
    before = snapshot()

    # When a dry run is asked for, Then the plan, and nothing written
    response = client.post("/api/v1/import/?dry_run=true", document, format="json")
    assert response.status_code == 200
    assert response.json()["flags"] == {"created": ["dark-mode-2"], "changed": ["banner-text"]}
    assert response.json()["dry_run"] is True
    assert snapshot() == before

    # When applied, Then the same plan, written
    response = client.post("/api/v1/import/?mode=merge", document, format="json")
    assert response.status_code == 200
    assert response.json()["dry_run"] is False
    project.refresh_from_db()
    assert as_json(services.project_export(project)) == document


@pytest.mark.parametrize(
    ("body", "query", "code"),
    [
        (b'{"format": ', "", "malformed_json"),
        (b"[]", "", "invalid_document"),
        (b'{"format": "flagship-project", "version": 1}', "", "invalid_document"),
        (b"{}", "?mode=sideways", "invalid_choice"),
    ],
)
@pytest.mark.django_db
def test_import_api__malformed__400_with_code(
    administrator: User, body: bytes, query: str, code: str
) -> None:
    # Given an Administrator, When a malformed import is posted, Then 400 with a code
    project = services.project_create(key="shop", name="Shop")
    client = client_for("administrator", project.environments.get(key="staging"))
    response = client.post(f"/api/v1/import/{query}", body, content_type="application/json")
    assert response.status_code == 400
    assert code in json.dumps(response.json())


def awkward_shapes(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Documents with one member of an odd shape each (a list where a key goes, and so on)."""
    shapes = []
    for path, value in (
        (("rules", 0, "segments"), [["a"]]),
        (("rules", 0, "conditions"), [{"attribute": "x", "operator": "in", "values": {"a": 1}}]),
        (("rules", 0, "rollout"), -5),
        (("rules", 0, "serve"), {"split": "half"}),
        (("prerequisites",), [{"flag": "banner-text", "variants": [{}]}]),
        (("default_serve",), {}),
        (("off_variant",), ""),
    ):
        changed = copy.deepcopy(document)
        state = next(f for f in changed["flags"] if f["key"] == "checkout-config")["states"]
        target: Any = state["production"]
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        shapes.append(changed)
    return shapes


@pytest.mark.django_db
def test_import_api__awkward_shapes__400_never_500_nothing_changed(administrator: User) -> None:
    # Given the demo project's export and an Administrator
    project = demo.seed_project(demo.Report(), administrator)
    document = as_json(services.project_export(project))
    client = client_for("administrator", project.environments.get(key="staging"))
    before = snapshot()

    # When documents with odd shapes are imported, Then each is a 400 and nothing changed
    statuses = [
        client.post("/api/v1/import/", shape, format="json").status_code
        for shape in awkward_shapes(document)
    ]
    assert statuses == [400] * len(statuses)
    assert snapshot() == before
