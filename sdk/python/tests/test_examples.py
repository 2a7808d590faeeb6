"""The examples in examples/ compile, and the script runs against a FlagShip-like server.

No Django here: the Django example is only compiled (it is checked by ruff and mypy).
"""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_openfeature_provider import SERVER_KEY, FakeFlagShip

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PYTHON_FILES = sorted(EXAMPLES.rglob("*.py"))


@pytest.fixture
def fake_server() -> Iterator[FakeFlagShip]:
    server = FakeFlagShip()
    yield server
    server.close()


def test_examples__present() -> None:
    names = {path.relative_to(EXAMPLES).as_posix() for path in PYTHON_FILES}
    assert {"script.py", "django_view/apps.py", "django_view/views.py"} <= names
    assert (EXAMPLES / "README.md").is_file()
    assert (EXAMPLES / "browser" / "index.html").is_file()


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda path: path.name)
def test_example__compiles(path: Path, tmp_path: Path) -> None:
    py_compile.compile(str(path), cfile=str(tmp_path / "compiled.pyc"), doraise=True)


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLAGSHIP_")}
    return subprocess.run(  # noqa: S603
        [sys.executable, str(EXAMPLES / "script.py"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_script__environment_missing__explains_and_exits_2() -> None:
    answer = run_script({})
    assert answer.returncode == 2
    assert "FLAGSHIP_URL" in answer.stdout


def test_script__server__prints_evaluations(fake_server: FakeFlagShip) -> None:
    answer = run_script(
        {"FLAGSHIP_URL": fake_server.url, "FLAGSHIP_SERVER_KEY": SERVER_KEY},
        "--user",
        "user-1",
        "--ready-timeout",
        "10",
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "ready: True" in answer.stdout
    assert "banner-text:" in answer.stdout
    assert "by-user: True (on, TARGETING_MATCH)" in answer.stdout
