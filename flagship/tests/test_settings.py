"""Settings: every variable documented, production refuses to start unsafely, check --deploy clean.

The settings module is read once per process, so each configuration is tried in a subprocess with
a clean environment (and no .env file).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flags import conf

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "flagship" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
SECRET = "k7Qv2m9XpLr4sTz8bNw3cYh6dJf1gAe5uKo0iPq7vRx2nMl4sBt9"  # noqa: S105  # test-only
WEBHOOK_KEY = "PwUoRG0p5k3c3kR6m3e9oE8dBvVf2cHk6mZbQ1xJY0s="  # a Fernet key, tests only
# Where variables are read outside settings.py (commands, test plumbing, scripts).
READERS = [
    ROOT / "flags" / "management",
    ROOT / "flagship" / "testing.py",
    ROOT / ".ci",
    ROOT / "Makefile",
    ROOT / "gunicorn.conf.py",  # PROMETHEUS_MULTIPROC_DIR
    # The deployment: the image, Compose, the env profiles, Caddy (POSTGRES_*, UVICORN_*...).
    ROOT / "Dockerfile",
    ROOT / "docker-compose.dev.yml",
    ROOT / "docker-compose.prod.yml",
    ROOT / "deploy",
]
_CONFIG_PREFIXES = ("DJANGO_", "DATABASE_", "REDIS_", "CACHE_", "SQLITE_", "FLAGSHIP_")


def settings_variables() -> set[str]:
    """Names settings.py reads: the first argument of every env(...), env.<cast>(...) and
    _rate(...) call."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        function = node.func
        reads_env = (isinstance(function, ast.Name) and function.id in ("env", "_rate")) or (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == "env"
        )
        first = node.args[0]
        if reads_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def documented_variables() -> set[str]:
    """Names .env.example documents, as ``NAME=`` or ``# NAME=`` lines."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", flags=re.MULTILINE)
    return set(pattern.findall(ENV_EXAMPLE.read_text()))


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without FlagShip's configuration, plus ``variables``."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_CONFIG_PREFIXES) or name == "DJANGO_SETTINGS_MODULE"
    }
    environment["DJANGO_ENV_FILE"] = str(ROOT / "no-such.env")
    environment.update(variables)
    return environment


def run(code_or_args: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own interpreter and manage.py
        [sys.executable, *code_or_args],
        cwd=ROOT,
        env=clean_environment(**variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_settings(**variables: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], "
        "settings.DEBUG)"
    )
    return run(["-c", code], DJANGO_SETTINGS_MODULE="flagship.settings", **variables)


def test_env_example__documents_every_variable_settings_reads() -> None:
    read = settings_variables()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= read  # the parser finds them

    assert sorted(read - documented_variables()) == []


def test_env_example__documents_only_variables_that_something_reads() -> None:
    sources = [SETTINGS.read_text()]
    for reader in READERS:
        files = [reader] if reader.is_file() else sorted(reader.rglob("*"))
        # Source only: a child process may have left bytecode in __pycache__ meanwhile.
        sources += [path.read_text() for path in files if path.is_file() and path.suffix != ".pyc"]
    text = "\n".join(sources)
    per_user = {
        f"FLAGSHIP_DEMO_{name}_PASSWORD"
        for name in ("VIEWER", "EDITOR", "RELEASE_MANAGER", "ADMINISTRATOR", "ADMIN")
    }

    stale = {name for name in documented_variables() - per_user if name not in text}

    assert sorted(stale) == []


def test_env_example__rate_defaults__those_of_flagship_rates() -> None:
    pattern = re.compile(r"^#?\s*(FLAGSHIP_[A-Z_]+_RATE)=(.*)$", flags=re.MULTILINE)
    documented = dict(pattern.findall(ENV_EXAMPLE.read_text()))

    assert {name: documented.get(name) for name in conf.RATE_DEFAULTS} == conf.RATE_DEFAULTS
    assert documented[conf.EVALUATION_RATE] == ""  # deprecated: no default


def test_embedded_default__nothing_configured__sqlite_and_local_memory_cache() -> None:
    result = load_settings()

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "True",
    ]


def test_urls_configured__postgresql_and_redis() -> None:
    result = load_settings(
        DATABASE_URL="postgres://flagship@db.invalid:5432/flagship",
        REDIS_URL="redis://cache.invalid:6379/0",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "flagship.db.postgresql",
        "flagship.metrics_cache.RedisCache",  # django-redis, its gets counted (metrics on)
        "True",
    ]


def test_metrics_off__plain_django_redis() -> None:
    # Given metrics turned off
    # When the settings load with Redis configured
    result = load_settings(
        DATABASE_URL="postgres://flagship@db.invalid:5432/flagship",
        REDIS_URL="redis://cache.invalid:6379/0",
        FLAGSHIP_METRICS_ENABLED="false",
    )

    # Then the cache is django-redis's own backend
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "django_redis.cache.RedisCache"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param(
            {"DJANGO_ALLOWED_HOSTS": "flagship.example.com"},
            "Set the DJANGO_SECRET_KEY environment variable",
            id="no secret key",
        ),
        pytest.param(
            {"DJANGO_SECRET_KEY": SECRET},
            "Set the DJANGO_ALLOWED_HOSTS environment variable",
            id="no allowed hosts",
        ),
        pytest.param(
            {"DJANGO_SECRET_KEY": "short", "DJANGO_ALLOWED_HOSTS": "flagship.example.com"},
            "DJANGO_SECRET_KEY must be at least 50 random characters",
            id="short secret key",
        ),
        pytest.param(
            {
                "DJANGO_SECRET_KEY": SECRET,
                "DJANGO_ALLOWED_HOSTS": "flagship.example.com",
                "DJANGO_DEBUG": "true",
            },
            "DJANGO_DEBUG must be off in production",
            id="debug on",
        ),
        pytest.param(
            {
                "DJANGO_SECRET_KEY": SECRET,
                "DJANGO_ALLOWED_HOSTS": "flagship.example.com",
                "FLAGSHIP_GRAPHIQL": "true",
            },
            "FLAGSHIP_GRAPHIQL is for development",
            id="graphiql on",
        ),
    ],
)
def test_production__unsafe_configuration__refuses_to_start(
    variables: dict[str, str], message: str
) -> None:
    result = load_settings(DJANGO_ENV="production", **variables)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production__secret_hosts_and_webhook_key__check_deploy_has_no_issues() -> None:
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=SECRET,
        DJANGO_ALLOWED_HOSTS="flagship.example.com",
        FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS=WEBHOOK_KEY,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_production__no_webhook_encryption_key__check_deploy_warns() -> None:
    # Given production settings without FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS
    # When check --deploy runs
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=SECRET,
        DJANGO_ALLOWED_HOSTS="flagship.example.com",
    )
    # Then it fails at the warning level, naming the setting
    assert result.returncode != 0
    assert "flagship.W001" in result.stdout + result.stderr


def test_production__no_rate_configured__every_limit_at_its_default() -> None:
    code = (
        "import json, django; django.setup(); from flags import conf; "
        "print(json.dumps({name: conf.rate(name) for name in conf.RATE_DEFAULTS}))"
    )
    result = run(
        ["-c", code],
        DJANGO_SETTINGS_MODULE="flagship.settings",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=SECRET,
        DJANGO_ALLOWED_HOSTS="flagship.example.com",
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == conf.RATE_DEFAULTS
    assert conf.RATE_DEFAULTS[conf.SERVER_KEY_RATE] == "1200000/m"


def test_unknown_environment__refuses_to_start() -> None:
    result = load_settings(DJANGO_ENV="staging")

    assert result.returncode != 0
    assert "DJANGO_ENV must be development, test or production" in result.stderr


def test_test_run__settings__in_test_mode() -> None:
    # flagship.tests.required_services sets DJANGO_ENV=test before pytest-django reads the settings
    from django.conf import settings  # noqa: PLC0415  # read at run time, as the test runs

    assert settings.ENVIRONMENT == "test"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"DJANGO_ENV": "development"}, "True"),
        ({"DJANGO_ENV": "test"}, "False"),
        (
            {
                "DJANGO_ENV": "production",
                "DJANGO_SECRET_KEY": SECRET,
                "DJANGO_ALLOWED_HOSTS": "flagship.example.com",
            },
            "False",
        ),
    ],
    ids=["development", "test", "production"],
)
def test_graphiql__on_in_development_only(variables: dict[str, str], expected: str) -> None:
    code = "import django; from django.conf import settings; print(settings.FLAGSHIP_GRAPHIQL)"
    result = run(["-c", code], DJANGO_SETTINGS_MODULE="flagship.settings", **variables)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "None"), ("", "''"), ("5/m", "'5/m'")],
    ids=["unset", "empty", "set"],
)
def test_rate_variable__empty_turns_the_limit_off(value: str | None, expected: str) -> None:
    # Given FLAGSHIP_MANAGEMENT_RATE unset, set empty (off, as .env.example says) or set
    variables = {} if value is None else {"FLAGSHIP_MANAGEMENT_RATE": value}
    code = (
        "import django; from django.conf import settings; from flags import conf; django.setup(); "
        "print(repr(settings.FLAGSHIP_MANAGEMENT_RATE), repr(conf.rate(conf.MANAGEMENT_RATE)))"
    )

    # When the settings are read in production
    result = run(
        ["-c", code],
        DJANGO_SETTINGS_MODULE="flagship.settings",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=SECRET,
        DJANGO_ALLOWED_HOSTS="flagship.example.com",
        **variables,
    )

    # Then unset keeps the default, empty turns the limit off (django-environ alone read it as
    # unset), and a value is kept
    assert result.returncode == 0, result.stderr
    effective = {"unset": "'600/m'", "empty": "''", "set": "'5/m'"}
    name = "unset" if value is None else "empty" if value == "" else "set"
    assert result.stdout.split() == [expected, effective[name]]
