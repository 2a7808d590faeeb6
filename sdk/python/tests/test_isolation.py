"""The engine stands alone: installable on its own, and free of any Django import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

SDK = Path(__file__).resolve().parents[1]
PROBE = (
    "import json, sys\n"
    "import flagship_sdk.engine as engine\n"
    "doc = {'format': 1, 'version': 1, 'flags': {'f': {'kind': 'boolean',"
    " 'variants': {'on': True, 'off': False}, 'enabled': True, 'off_variant': 'off',"
    " 'default_serve': {'variant': 'on'}}}}\n"
    "result = engine.Ruleset.from_dict(doc).evaluate('f', {'targetingKey': 'u'})\n"
    "roots = sorted({name.split('.')[0] for name in sys.modules})\n"
    "print(json.dumps({'value': result.value, 'roots': roots}))\n"
)


def _probe(python: Path | str) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603  # a fixed interpreter running a fixed script
        [str(python), "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(completed.stdout)  # type: ignore[no-any-return]  # the probe prints a dict


def test_engine_import__in_this_environment__imports_no_django() -> None:
    # Given an interpreter where Django may well be installed, when only the engine is imported
    observed = _probe(sys.executable)
    # Then it evaluates, and no django module was loaded
    assert observed["value"] is True
    assert not [root for root in observed["roots"] if "django" in str(root)]


def test_sdk__installed_alone_in_a_clean_virtualenv__works_without_django(tmp_path: Path) -> None:
    # Given a clean virtualenv and a copy of sdk/python (so the build leaves nothing in the repo)
    source = tmp_path / "sdk"
    shutil.copytree(
        SDK, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # When flagship-sdk is installed from its path
    subprocess.run(  # noqa: S603  # fixed arguments
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        check=True,
        timeout=600,
    )
    frozen = subprocess.run(  # noqa: S603  # fixed arguments
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout
    installed = {
        line.split("==")[0].split(" @ ")[0].lower() for line in frozen.splitlines() if line
    }
    # Then it holds only the SDK and its two runtime needs, and the engine works with no Django
    assert installed - {"pip", "setuptools", "wheel"} == {"flagship-sdk", "mmh3", "google-re2"}
    observed = _probe(python)
    assert observed["value"] is True
    assert not [root for root in observed["roots"] if "django" in str(root)]
