"""The Postman collection (docs/flagship.postman_collection.json) as Postman users run it.

The structural tests read the collection. The newman test runs it end to end, in the pinned
newman (tools/postman, ``make postman``), against a fresh server started by ``make run`` itself
(migrate, seed_demo, runserver) on its own SQLite file and a free loopback port, with nothing
given but ``baseUrl`` and the demo password; it fails on any failed assertion.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flagship.tests.required_services import NEWMAN, REPOSITORY

COLLECTION = REPOSITORY / "docs" / "flagship.postman_collection.json"
GIVEN = {"baseUrl", "username", "password"}  # the only variables a user sets
START_TIMEOUT = 240.0  # seconds for `make run` to migrate a new SQLite file, seed and answer
NEWMAN_TIMEOUT = 300  # seconds for the whole collection
# The routes whose canonical form has no trailing slash (docs/api.md): evaluation and the stream.
WITHOUT_SLASH = re.compile(r"^/(ofrep/v1/|api/v1/(evaluate|ruleset|sdk/|stream))")
SETS = re.compile(r"collectionVariables\.set\('(\w+)'")
REQUEST_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) HTTP/1\.1"')


def requests(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every request of a collection or folder, in run order."""
    for item in items:
        if "item" in item:
            yield from requests(item["item"])
        else:
            yield item


def collection() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(COLLECTION.read_text())
    return loaded


def script(item: dict[str, Any], listen: str) -> str:
    return "\n".join(
        "\n".join(event["script"]["exec"])
        for event in item.get("event", [])
        if event["listen"] == listen
    )


def test_collection__every_request__tests_its_status_and_body() -> None:
    # Given the collection
    items = list(requests(collection()["item"]))

    # Then every request checks its status, and every answer with a body something in it
    assert len(items) > 100
    for item in items:
        tests = script(item, "test")
        assert re.search(r"pm\.response\.to\.have\.status\(\d{3}\)", tests), item["name"]
        assert tests.count("pm.test(") >= 2, item["name"]


def test_collection__structured_urls__keep_the_canonical_trailing_slash() -> None:
    for item in requests(collection()["item"]):
        url = item["request"]["url"]
        path = "/" + "/".join(url["path"])

        # Then the path segments and the raw URL name the same route; management routes end
        # with an empty segment (Postman's trailing slash), evaluation and OFREP with none
        assert url["host"] == ["{{baseUrl}}"]
        assert url["raw"].split("?")[0] == "{{baseUrl}}" + path, item["name"]
        if WITHOUT_SLASH.match(path):
            assert url["path"][-1] != "", item["name"]
        else:
            assert url["path"][-1] == "", item["name"]


def test_collection__variables__only_base_url_username_and_password_given() -> None:
    variables = {variable["key"]: variable["value"] for variable in collection()["variable"]}

    assert {key for key, value in variables.items() if value} == {"baseUrl", "username"}
    assert variables["password"] == ""
    assert variables.keys() >= GIVEN


def test_collection__captured_variables__each_set_by_a_request_before_use() -> None:
    # Given the collection, in run order
    set_so_far = set(GIVEN)
    for item in requests(collection()["item"]):
        request = json.dumps(item["request"])
        set_so_far |= set(SETS.findall(script(item, "prerequest")))

        # Then a variable is only used once an earlier request (or this one's pre-request
        # script) has set it
        used = set(re.findall(r"\{\{(\w+)\}\}", request))
        assert used <= set_so_far, (item["name"], used - set_so_far)
        set_so_far |= set(SETS.findall(script(item, "test")))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DemoServer:
    """A server started by `make run`: where it answers, the demo password, and its output."""

    base_url: str
    password: str
    log: Path

    def request_lines(self) -> list[tuple[str, str]]:
        """The (method, path) of each request the development server logged."""
        return REQUEST_LINE.findall(self.log.read_text(errors="replace"))


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # our own server
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[DemoServer]:
    """`make run` (migrate, seed_demo, runserver) on a new SQLite file and a free port.

    FLAGSHIP_DEMO_PASSWORD is set, as a user of the collection would.

    The developer's .env and the test run's own settings are left out, as on a fresh clone;
    the whole process group (make, the reloader and the server) is stopped at teardown.
    """
    password = secrets.token_urlsafe(16)
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
        and not key.startswith(("FLAGSHIP_", "DJANGO_", "COV_", "PYTEST_"))
    }
    environment.update(
        {
            "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
            "DJANGO_ENV_FILE": str(tmp_path / "no.env"),
            "FLAGSHIP_DEMO_PASSWORD": password,
            "PYTHONUNBUFFERED": "1",
        }
    )
    # -o install: the tests already run in the installed .venv; make must not reinstall it (a
    # .venv shared between checkouts would be reinstalled from this one).
    command = ["make", "--no-print-directory", "-o", "install", "run", f"ADDRESS=127.0.0.1:{port}"]
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603  # the repository's own Makefile
            command,
            cwd=REPOSITORY,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DemoServer(f"http://127.0.0.1:{port}", password, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(server.base_url + "/healthz"):
            if process.poll() is not None:
                pytest.fail(f"make run exited ({process.returncode}):\n{tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"make run did not answer in {START_TIMEOUT} s:\n{tail(log)}")
            time.sleep(0.2)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop make and everything it started (one process group), forcefully after 10 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # runserver's reloader child may outlive make for a moment: end the group either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def newman(server: DemoServer, report: Path) -> subprocess.CompletedProcess[str]:
    """Run the collection with only baseUrl and password given."""
    return subprocess.run(  # noqa: S603  # the pinned newman
        [
            str(NEWMAN),
            "run",
            str(COLLECTION),
            "--env-var",
            f"baseUrl={server.base_url}",
            "--env-var",
            f"password={server.password}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--color",
            "off",
            "--timeout-request",
            "30000",
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=NEWMAN_TIMEOUT,
        check=False,
    )


@pytest.mark.requires_newman
def test_newman__fresh_make_run__every_assertion_passes(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    # Given a fresh `make run` server; When newman runs the collection (twice: it must be able
    # to run again against the same server). Each run makes 5 of the 10 sign-in calls a minute
    # that FLAGSHIP_AUTH_RATE allows an address by default (token, verify, refresh, logout,
    # refresh after logout): a sixth would need a pause between the runs.
    for run in (1, 2):
        report_file = tmp_path / f"newman-{run}.json"
        result = newman(demo_server, report_file)

        # Then every request ran and every assertion passed
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        stats = json.loads(report_file.read_text())["run"]["stats"]
        expected = len(list(requests(collection()["item"])))
        assert stats["requests"] == {"total": expected, "pending": 0, "failed": 0}
        assert stats["assertions"]["failed"] == 0
        assert stats["assertions"]["total"] >= 3 * expected
        assert stats["testScripts"]["failed"] == 0
        assert stats["prerequestScripts"]["failed"] == 0

    # And the server saw the management API's paths with their trailing slashes
    lines = demo_server.request_lines()
    api = [path.split("?")[0] for _method, path in lines if path.startswith("/api/")]
    assert len(api) >= expected
    assert "/api/v1/projects/" in api
    assert [path for path in api if not WITHOUT_SLASH.match(path) and not path.endswith("/")] == []


def test_fresh_make_run__admin_history_pages__answer_on_sqlite(demo_server: DemoServer) -> None:
    # Given a fresh `make run` server (SQLite, the demo seeded) and the demo admin signed in
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = demo_server.base_url + "/admin/login/"
    with browser.open(login, timeout=30) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token.group(1),
            "username": "admin",
            "password": demo_server.password,
            "next": "/admin/",
        }
    ).encode()
    request = urllib.request.Request(login, data=form, headers={"Referer": login})  # noqa: S310  # our own server
    with browser.open(request, timeout=30) as response:
        assert response.url.endswith("/admin/")

    def get(path: str) -> str:
        with browser.open(demo_server.base_url + path, timeout=30) as response:
            assert response.status == 200, path
            return str(response.read().decode())

    flag_list = get("/admin/flags/flag/")
    flag_id = re.search(r"/admin/flags/flag/(\d+)/change/", flag_list)
    assert flag_id is not None

    # When the history pages are read (each a union of the history tables, ordered and cut)
    timeline = get(f"/admin/flags/flag/{flag_id.group(1)}/history/")
    audit = get("/admin/audit/")
    get("/admin/audit/?page=2")

    # Then they answer with the seeded changes, as on PostgreSQL
    assert "Timeline of" in timeline
    assert "Created" in audit or "created" in audit
