"""Reading the deployment files as Docker and Compose would: env files, services, the Dockerfile.

No Docker engine runs the tests, so these helpers take from the committed files what Docker would
run: a service's command, its environment (the Dockerfile's ``ENV``, then its env files), the
image's health check and its build steps.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_DEV = ROOT / "docker-compose.dev.yml"
COMPOSE_PROD = ROOT / "docker-compose.prod.yml"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
PROFILES = ROOT / "deploy" / "env"
ENV_EXAMPLE = ROOT / ".env.example"

_ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_file(path: Path) -> dict[str, str]:
    """The variables an env file sets (``NAME=value`` lines; comments are not variables)."""
    values = {}
    for line in path.read_text().splitlines():
        found = _ENV_LINE.match(line.strip())
        if found and not found.group(1):
            values[found.group(2)] = found.group(3)
    return values


def env_file_names(path: Path) -> set[str]:
    """Every variable an env file names, set or shown commented out (``# NAME=``)."""
    return {
        found.group(2)
        for line in path.read_text().splitlines()
        if (found := _ENV_LINE.match(line.strip()))
    }


def documented_variables() -> set[str]:
    """Names ``.env.example`` documents, as ``NAME=`` or ``# NAME=`` lines."""
    return env_file_names(ENV_EXAMPLE)


def compose(path: Path) -> dict[str, Any]:
    """A Compose file as Compose reads it (YAML merge keys ``<<`` resolved)."""
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def service(path: Path, name: str) -> dict[str, Any]:
    """One service of a Compose file."""
    services: dict[str, dict[str, Any]] = compose(path)["services"]
    return services[name]


def interpolated_variables(text: str) -> set[str]:
    """Names Compose interpolates: ``${NAME}``, ``${NAME:-default}``; not escaped ``$${X}``."""
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def caddy_variables(text: str) -> set[str]:
    """Names the Caddyfile reads from the environment: ``{$NAME}`` or ``{$NAME:default}``."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\{\$([A-Za-z_][A-Za-z0-9_]*)", code))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions of its last stage, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        current += " " + line.removesuffix("\\").strip() if current else line.removesuffix("\\")
        if not line.endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            if keyword.upper() == "FROM":
                instructions = []  # a new stage: only the runtime (last) stage counts
            instructions.append((keyword.upper(), rest.strip()))
            current = ""
    return instructions


def image_environment() -> dict[str, str]:
    """The runtime stage's ``ENV`` values (``PATH`` left out: the host's interpreter runs)."""
    values: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                if name != "PATH":
                    values[name] = value
    return values


def healthcheck_command() -> list[str]:
    """The image's ``HEALTHCHECK ... CMD [...]``, as an argv."""
    for keyword, rest in dockerfile_instructions():
        if keyword == "HEALTHCHECK":
            command: list[str] = yaml.safe_load(rest.split(" CMD ", 1)[1])
            return command
    raise AssertionError("the Dockerfile has no HEALTHCHECK")


def run_step(word: str) -> str:
    """The shell command of the runtime stage's ``RUN`` instruction that mentions ``word``."""
    for keyword, rest in dockerfile_instructions():
        if keyword == "RUN" and word in rest:
            return rest
    raise AssertionError(f"the Dockerfile runs no {word}")


def postgres_url(server: dict[str, Any], name: str) -> str:
    """The URL of database ``name`` on the server of a Django database's settings."""
    password = f":{server['PASSWORD']}" if server.get("PASSWORD") else ""
    host, port = server.get("HOST") or "127.0.0.1", server.get("PORT") or 5432
    return f"postgres://{server.get('USER') or 'postgres'}{password}@{host}:{port}/{name}"


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the test's server, dropped afterwards; its URL."""
    import psycopg  # noqa: PLC0415  # the tests' database driver, not compose_run's
    from django.db import connections  # noqa: PLC0415  # settings are configured by then

    server = connections["default"].settings_dict
    name = f"flagship_compose_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url(server, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(server, name)
    finally:
        with psycopg.connect(postgres_url(server, "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(argv: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run a one-off command to its end; its output (fails the test on a non-zero exit)."""
    result = subprocess.run(  # noqa: S603  # the Compose file's own commands
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
    return result.stdout
