"""Check that the golden vectors and property tests catch deliberate engine bugs.

Each mutant is one textual change to a copy of the engine's source; the SDK's tests then run
against that copy and must fail. Run from the repository root with ``make mutants``. Exit status 0
means every mutant was killed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SDK = Path(__file__).resolve().parents[1]
ENGINE = "flagship_sdk/engine"

# (description, file under the engine, text to replace, replacement)
MUTANTS: list[tuple[str, str, str, str]] = [
    (
        "participation uses the split seed",
        "bucketing.py",
        "PARTICIPATION_SEED: Final = 0",
        "PARTICIPATION_SEED: Final = 1",
    ),
    (
        "bucket by modulo instead of the shift",
        "ruleset.py",
        "if (digest * BUCKETS) >> 32 >= rollout:",
        "if digest % BUCKETS >= rollout:",
    ),
    (
        "salt and value joined without the colon",
        "compiler.py",
        'prefix=f"{salt}:",',
        "prefix=salt,",
    ),
    (
        "participation inclusive at the boundary",
        "ruleset.py",
        "if (digest * BUCKETS) >> 32 >= rollout:",
        "if (digest * BUCKETS) >> 32 > rollout:",
    ),
    (
        "split ranges off by one",
        "ruleset.py",
        "bisect_right(split.thresholds",
        "bisect_left(split.thresholds",
    ),
    (
        "date_after inclusive",
        "conditions.py",
        "return instant > bound if after else instant < bound",
        "return instant >= bound if after else instant < bound",
    ),
    ("num_gte becomes num_gt", "conditions.py", '"num_gte": ">=",', '"num_gte": ">",'),
    (
        "missing attribute makes not_in false",
        "conditions.py",
        "    on_missing = flip\n",
        "    on_missing = False\n",
    ),
    (
        "case_insensitive ignored for membership",
        "conditions.py",
        "members.add(text.lower() if case_insensitive else text)",
        "members.add(text)",
    ),
    (
        "pre-releases sort above releases",
        "values.py",
        "return (int(major), int(minor), int(patch), 1, ())",
        "return (int(major), int(minor), int(patch), -1, ())",
    ),
    (
        "canonical float keeps .0",
        "values.py",
        "    if value.is_integer():\n        return str(int(value))\n",
        "",
    ),
    (
        "prerequisite ignores the off variant",
        "ruleset.py",
        "holds = served.variant != parent.off_variant",
        "holds = True",
    ),
    (
        "an unusable condition is dropped, not its rule",
        "compiler.py",
        "if dead or unusable is not None or rollout == 0:",
        "if dead or rollout == 0:",
    ),
    (
        "results after an unusable rule do not name it",
        "compiler.py",
        "passed = passed or unusable",
        "passed = passed or None",
    ),
    (
        "a child does not carry its parent's problem",
        "ruleset.py",
        "if served.problem is not None:",
        "if False:",
    ),
]

TESTS = ["test_vectors.py", "test_properties.py", "test_compiler.py"]


def run_mutant(description: str, file: str, old: str, new: str) -> bool:
    """Apply one mutant to a copy of the engine; return True when the tests fail (it is killed).

    The tests import the copy (PYTHONPATH comes before the editable install); the control run, with
    no change, must pass, which also shows that the copy is what they import.
    """
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "src"
        shutil.copytree(SDK / "src", source)
        target = source / ENGINE / file
        text = target.read_text()
        if old and old not in text:
            print(f"  ! {description}: the text to mutate is gone from {file}; update this tool")
            return False
        target.write_text(text.replace(old, new, 1) if old else text + new)
        env = {**os.environ, "PYTHONPATH": str(source)}
        tests = [str(SDK / "tests" / name) for name in TESTS]
        command = [sys.executable, "-m", "pytest", "-q", "-x", "--no-cov", "-p", "no:cacheprovider"]
        completed = subprocess.run(  # noqa: S603  # this interpreter, fixed arguments
            [*command, *tests], env=env, capture_output=True, text=True, check=False, timeout=600
        )
        return completed.returncode != 0


def main() -> int:
    """Run every mutant and report which survived."""
    # Control: the unchanged copy passes, and a copy that cannot be imported fails - so the tests
    # really run against the copy, not the installed engine.
    if run_mutant("control", "results.py", "", ""):
        print("the unchanged engine fails its tests: fix that first")
        return 1
    if not run_mutant("import check", "results.py", "", "\nraise ImportError('mutant copy')\n"):
        print("the tests did not import the mutated copy")
        return 1
    survivors = []
    for description, file, old, new in MUTANTS:
        killed = run_mutant(description, file, old, new)
        print(f"{'killed  ' if killed else 'SURVIVED'} {description}")
        if not killed:
            survivors.append(description)
    print(f"{len(MUTANTS) - len(survivors)} of {len(MUTANTS)} mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
