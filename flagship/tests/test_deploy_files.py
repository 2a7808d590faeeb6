"""The deployment files: every variable documented, no secret committed, the promised shape.

hadolint, the Compose schema and ``caddy validate`` check the files' syntax (``make
validate-deploy``); test_compose_stack.py runs their commands. These tests check what those tools
cannot know: that an operator finds every variable in ``.env.example``, that the profiles hold no
secret, and that production runs what the deployment guide says it runs.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

import pytest

from flagship.tests import deploy_files as files

PROFILE_NAMES = ("development", "staging", "production")


def referenced_variables() -> dict[str, set[str]]:
    """Every variable the deployment files read or set, by file."""
    found = {
        path.name: files.interpolated_variables(path.read_text())
        for path in (files.COMPOSE_DEV, files.COMPOSE_PROD)
    }
    for path in (files.COMPOSE_DEV, files.COMPOSE_PROD):
        for name, definition in files.compose(path)["services"].items():
            environment = definition.get("environment") or {}
            found[f"{path.name}:{name}"] = set(environment)
    for path in sorted(files.PROFILES.glob("*.env.example")):
        found[path.name] = files.env_file_names(path)
    found["Caddyfile"] = files.caddy_variables(files.CADDYFILE.read_text())
    # The image's own variables, not the interpreter's (PYTHONUNBUFFERED...: in Python's docs)
    found["Dockerfile"] = {
        name for name in files.image_environment() if not name.startswith("PYTHON")
    }
    return found


def test_deployment_files__every_variable__documented_in_env_example() -> None:
    # Given every variable the Compose files, the env profiles, Caddy and the image name
    referenced = referenced_variables()
    # (the parsers find them: interpolation, profiles, Caddy's placeholders, the image's ENV)
    assert {"FLAGSHIP_PROFILE", "FLAGSHIP_IMAGE"} <= referenced["docker-compose.prod.yml"]
    assert {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"} <= referenced["production.env.example"]
    assert {"FLAGSHIP_SITE_ADDRESS", "FLAGSHIP_WEB_HOST"} <= referenced["Caddyfile"]
    assert {"GUNICORN_BIND", "UVICORN_PORT"} <= referenced["Dockerfile"]

    # Then .env.example documents each of them
    undocumented = {
        source: sorted(names - files.documented_variables())
        for source, names in referenced.items()
        if names - files.documented_variables()
    }
    assert undocumented == {}


def test_env_profiles__one_per_profile__chosen_by_flagship_profile() -> None:
    # Given the example profiles
    profiles = {path.name for path in files.PROFILES.glob("*.env.example")}

    # Then there is one per profile, and production's services read the one FLAGSHIP_PROFILE names
    assert profiles == {f"{name}.env.example" for name in PROFILE_NAMES}
    for definition in files.compose(files.COMPOSE_PROD)["services"].values():
        for entry in definition.get("env_file", []):
            assert entry["path"] == "deploy/env/${FLAGSHIP_PROFILE:-production}.env"


@pytest.mark.parametrize("profile", ["staging", "production"])
def test_deployed_profiles__secrets__left_empty(profile: str) -> None:
    # Given a profile an operator copies for a real deployment
    values = files.env_file(files.PROFILES / f"{profile}.env.example")

    # Then it holds no secret: each one is empty until the operator generates it
    secrets = ("DJANGO_SECRET_KEY", "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS", "POSTGRES_PASSWORD")
    assert {name: values[name] for name in secrets} == dict.fromkeys(secrets, "")
    assert values["DATABASE_URL"] == "postgres://flagship:@postgres:5432/flagship"


def test_compose_files__no_password_or_key_written_in_them() -> None:
    for path in (files.COMPOSE_DEV, files.COMPOSE_PROD):
        for name, definition in files.compose(path)["services"].items():
            environment = definition.get("environment") or {}
            assert not [key for key in environment if "PASSWORD" in key or "SECRET" in key], name


def test_production_profile__as_committed__refuses_to_start() -> None:
    # Given the production profile copied but not filled in
    environment = {**files.env_file(files.PROFILES / "production.env.example")}
    environment.update(files.image_environment())
    environment["DJANGO_ENV_FILE"] = str(files.ROOT / "no-such.env")

    # When Django loads its settings with it
    result = subprocess.run(  # our own interpreter
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=files.ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "flagship.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it refuses, naming the empty secret
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be at least 50 random characters" in result.stderr


def test_prod_compose__web_replicated__waits_for_migrations() -> None:
    services = files.compose(files.COMPOSE_PROD)["services"]

    assert services["web"]["deploy"]["replicas"] == 2
    for name in ("web", "stream", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["image"] == "${FLAGSHIP_IMAGE:-flagship:latest}"
    assert services["migrate"]["restart"] == "no"
    for store, volume in (("postgres", "postgres-data"), ("redis", "redis-data")):
        assert services[store]["healthcheck"]["test"]
        assert any(mount.startswith(f"{volume}:") for mount in services[store]["volumes"])
    assert services["proxy"]["volumes"][0] == "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro"


def test_dev_compose__code_mounted__demo_seeded_before_the_servers() -> None:
    services = files.compose(files.COMPOSE_DEV)["services"]

    assert "seed_demo" in services["migrate"]["command"][-1]
    for name in ("web", "stream", "worker"):
        assert ".:/app" in services[name]["volumes"]
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["web"]["command"][-2:] == ["runserver", "0.0.0.0:8000"]
    assert "--reload" in services["stream"]["command"]


@pytest.mark.parametrize("profile", ["staging", "production"])
def test_deployed_profiles__secrets_filled_in__check_deploy_clean(profile: str) -> None:
    # Given a profile with its secrets generated, as the image runs it
    environment = {
        **files.image_environment(),
        **files.env_file(files.PROFILES / f"{profile}.env.example"),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "DJANGO_ENV_FILE": str(files.ROOT / "no-such.env"),
    }

    # When Django's deployment checklist runs
    result = subprocess.run(  # our own interpreter and manage.py
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=files.ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
