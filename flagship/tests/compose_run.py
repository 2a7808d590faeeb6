"""``docker compose run`` and ``exec`` for the deployment guide's tested blocks, without Docker.

    python -m flagship.tests.compose_run compose -f FILE run --rm [--no-deps] SERVICE COMMAND...
    python -m flagship.tests.compose_run compose -f FILE exec -T SERVICE COMMAND...

test_deployment_doc.py defines ``docker`` as this module in the shell that runs a block, so a
block runs as written: COMMAND runs in the current directory (the checkout) with the environment
the service's container would have: the image's ``ENV`` for FlagShip's services (they are built
from the Dockerfile), then the service's env files (``FLAGSHIP_PROFILE`` picks the profile, as in
Compose) and its ``environment``. What the container network would provide comes from
``COMPOSE_RUN_<NAME>`` variables (``COMPOSE_RUN_PGHOST=127.0.0.1`` becomes ``PGHOST``: the postgres
container's own socket). Any other form of ``docker`` exits 127, so a block using it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flagship.tests import deploy_files as files

ALLOWED_OPTIONS = {"run": {"--rm", "--no-deps"}, "exec": {"-T"}}
PREFIX = "COMPOSE_RUN_"


def refuse(message: str) -> int:
    """Say what is not emulated; 127, as a shell says for a missing command."""
    print(f"compose_run: {message}", file=sys.stderr)  # noqa: T201
    return 127


def main(argv: list[str]) -> int:
    """Run the service's command with its environment; its exit status."""
    if argv[:1] != ["compose"]:
        return refuse(f"only `docker compose` is emulated, not {argv[:1]}")
    args, compose_file = argv[1:], "docker-compose.yml"
    while args[:1] == ["-f"]:
        compose_file, args = args[1], args[2:]
    if not args or args[0] not in ALLOWED_OPTIONS:
        return refuse(f"only run and exec are emulated, not {args[:1]}")
    subcommand, args = args[0], args[1:]
    while args and args[0].startswith("-"):
        if args[0] not in ALLOWED_OPTIONS[subcommand]:
            return refuse(f"{subcommand} {args[0]} is not emulated")
        args = args[1:]
    name, command = args[0], args[1:]
    definition = files.compose(Path(compose_file))["services"][name]

    environment = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    if "build" in definition:
        environment.update(files.image_environment())
    profile = os.environ.get("FLAGSHIP_PROFILE", "production")
    for entry in definition.get("env_file", []):
        path = entry["path"].replace("${FLAGSHIP_PROFILE:-production}", profile)
        environment.update(files.env_file(Path(path)))
    environment.update(definition.get("environment") or {})
    environment["DJANGO_ENV_FILE"] = os.devnull
    environment.update(
        {
            key.removeprefix(PREFIX): value
            for key, value in os.environ.items()
            if key.startswith(PREFIX)
        }
    )
    return subprocess.run(command, env=environment, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
