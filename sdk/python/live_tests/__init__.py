"""Live tests of the SDK against a real FlagShip process (see harness.py).

They need the server's repository (``flagship.faults``, ``manage.py``), so the repository root is
put on ``sys.path`` here: pytest may run them under either configuration, the root's
(``pytest sdk/python/live_tests flags/...``) or the SDK's own (``pytest sdk/python/live_tests``,
whose sdk/python/pyproject.toml sets no ``pythonpath``).
"""

import sys
from pathlib import Path

REPOSITORY = str(Path(__file__).resolve().parents[3])
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)
