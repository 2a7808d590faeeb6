"""The test run's services: which of PostgreSQL, Redis and Chromium it has, and what to do without.

A pytest plugin (registered with ``-p flagship.tests.required_services`` in pyproject.toml's
``addopts``). Mark a test with what it needs; without it the test is skipped with the reason and
listed in a loud summary at the end of the run, or, when ``FLAGSHIP_REQUIRE_SERVICES=1`` (CI),
fails::

    @pytest.mark.requires_postgres  # the database is PostgreSQL (DATABASE_URL)
    @pytest.mark.requires_redis  # REDIS_URL is set and answers
    def test_snapshot_cached_in_redis() -> None: ...


    @pytest.mark.requires_browser  # headless Chromium is installed; the fixture gives its path
    def test_admin_in_a_browser(chromium_executable: str) -> None: ...


    @pytest.mark.requires_caddy  # the reverse proxy of docker-compose.prod.yml is installed
    def test_behind_the_proxy() -> None: ...

``.ci/with-services`` provides the services where it can (make test wraps pytest in it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# pytest-django loads the settings before any conftest.py is imported, so the test mode must be set
# here, by the plugin pytest imports first (`make test` also sets it).
os.environ.setdefault("DJANGO_ENV", "test")

REQUIRE_VARIABLE = "FLAGSHIP_REQUIRE_SERVICES"
CHROMIUM_VARIABLE = "FLAGSHIP_CHROMIUM"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
REPOSITORY = Path(__file__).resolve().parents[2]
# newman, pinned by tools/postman/package-lock.json and installed there by `make postman` (npm ci).
NEWMAN = REPOSITORY / "tools" / "postman" / "node_modules" / ".bin" / "newman"


@dataclass(frozen=True)
class Service:
    """Something a test may need that a bare machine lacks."""

    marker: str
    name: str
    hint: str
    probe: Callable[[], str | None]  # None when available, else why not

    def missing(self) -> str | None:
        """Why this run lacks the service, or ``None`` when it has it (probed once per run)."""
        return _probe(self)


def services_required() -> bool:
    """Whether a missing service fails the tests that need it (``FLAGSHIP_REQUIRE_SERVICES=1``)."""
    return os.environ.get(REQUIRE_VARIABLE, "") == "1"


def postgres_missing() -> str | None:
    """Why the test database is not PostgreSQL, or ``None`` when it is."""
    from django.conf import settings  # noqa: PLC0415  # settings are configured by pytest-django
    from django.core.exceptions import ImproperlyConfigured  # noqa: PLC0415

    try:
        engine = settings.DATABASES["default"]["ENGINE"]
    except ImproperlyConfigured:
        return "Django is not configured (DJANGO_SETTINGS_MODULE)"
    if engine in ("django.db.backends.postgresql", "flagship.db.postgresql"):
        return None
    return f"the database is {engine.rsplit('.', 1)[-1]}, not PostgreSQL"


def redis_missing() -> str | None:
    """Why Redis cannot be used (unset or not answering), or ``None`` when it answers."""
    import redis  # noqa: PLC0415  # only runs that probe Redis need the client

    url = os.environ.get("REDIS_URL", "")
    if not url:
        return "REDIS_URL is not set"
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        parts = urlsplit(url)
        return f"Redis at {parts.hostname}:{parts.port} does not answer ({error})"
    finally:
        client.close()
    return None


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable to drive headless, if there is one."""
    configured = os.environ.get(CHROMIUM_VARIABLE, "")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_missing() -> str | None:
    """Why no browser can be driven, or ``None`` when one is installed."""
    if chromium_path() is not None:
        return None
    configured = os.environ.get(CHROMIUM_VARIABLE, "")
    if configured:
        return f"{CHROMIUM_VARIABLE}={configured} is not an executable"
    return "no chromium executable on PATH"


def newman_missing() -> str | None:
    """Why newman cannot run the Postman collection (no Node.js, no npm ci), or ``None``."""
    if shutil.which("node") is None:
        return "no node executable on PATH"
    if not os.access(NEWMAN, os.X_OK):
        return f"newman is not installed ({NEWMAN.relative_to(REPOSITORY)} is missing)"
    return None


def caddy_missing() -> str | None:
    """Why the reverse proxy cannot be run (``caddy`` not on PATH), or ``None`` when it can."""
    if shutil.which("caddy") is not None:
        return None
    return "no caddy executable on PATH"


SERVICES = {
    service.marker: service
    for service in (
        Service(
            "requires_postgres",
            "PostgreSQL",
            "set DATABASE_URL=postgres://..., or install PostgreSQL and run `make test`",
            postgres_missing,
        ),
        Service(
            "requires_redis",
            "Redis",
            "set REDIS_URL=redis://..., or install redis-server and run `make test`",
            redis_missing,
        ),
        Service(
            "requires_browser",
            "Chromium",
            f"install chromium (Debian: apt-get install chromium) or set {CHROMIUM_VARIABLE}",
            chromium_missing,
        ),
        Service(
            "requires_newman",
            "newman",
            "install Node.js 20 or newer and run `make postman` (npm ci in tools/postman)",
            newman_missing,
        ),
        Service(
            "requires_caddy",
            "Caddy",
            "install caddy (Debian: apt-get install caddy; .ci/run does)",
            caddy_missing,
        ),
    )
}
_not_run = pytest.StashKey[dict[Service, list[str]]]()


@cache
def _probe(service: Service) -> str | None:
    return service.probe()


def need(service: Service, stash: pytest.Stash, nodeid: str) -> None:
    """Skip (or, when services are required, fail) the current test if ``service`` is missing.

    Skips are recorded in ``stash`` (the run's ``config.stash``) for the closing summary.
    """
    reason = service.missing()
    if reason is None:
        return
    if services_required():
        pytest.fail(
            f"{service.name} is required ({REQUIRE_VARIABLE}=1) but {reason}", pytrace=False
        )
    stash.setdefault(_not_run, {}).setdefault(service, []).append(nodeid)
    pytest.skip(f"needs {service.name}: {reason} ({service.hint})")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, so --strict-markers accepts them."""
    for service in SERVICES.values():
        config.addinivalue_line(
            "markers",
            f"{service.marker}: needs {service.name}; skipped without it, failed under "
            f"{REQUIRE_VARIABLE}=1",
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Check the services a test is marked with before its fixtures run."""
    for marker in dict.fromkeys(mark.name for mark in item.iter_markers()):
        if marker in SERVICES:
            need(SERVICES[marker], item.config.stash, item.nodeid)


@pytest.fixture
def chromium_executable(request: pytest.FixtureRequest) -> str:
    """The path of headless Chromium; skips (or fails under CI) when none is installed."""
    need(SERVICES["requires_browser"], request.config.stash, request.node.nodeid)
    path = chromium_path()
    assert path is not None  # need() returned, so a browser exists
    return path


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say up front which services this run has."""
    parts = []
    for service in SERVICES.values():
        reason = service.missing()
        parts.append(f"{service.name} {'yes' if reason is None else 'NO (' + reason + ')'}")
    required = "required" if services_required() else "optional"
    return [f"flagship services ({required}): " + "; ".join(parts)]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """List loudly the tests that did not run for want of a service."""
    not_run = config.stash.get(_not_run, {})
    if not not_run:
        return
    total = sum(len(nodeids) for nodeids in not_run.values())
    terminalreporter.write_sep(
        "!", f"{_tests(total)} NOT RUN: services missing", red=True, bold=True
    )
    for service, nodeids in not_run.items():
        terminalreporter.write_line(
            f"{service.name}: {_tests(len(nodeids))} skipped because {service.missing()}; "
            f"to run them, {service.hint}.",
            red=True,
        )
        for nodeid in nodeids[:10]:
            terminalreporter.write_line(f"    {nodeid}")
        if len(nodeids) > 10:
            terminalreporter.write_line(f"    ... and {len(nodeids) - 10} more")


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"
