"""Seed the benchmark database and print what the load generator needs, as one JSON line.

Run by ``bench.server.run`` in a subprocess (``python -m bench.server.fixture SIZE [SIZE ...]``)
with ``DATABASE_URL``/``REDIS_URL`` pointing at the benchmark's own database. For each SIZE (a
multiple of 200) it creates a project ``bench-<SIZE>`` and imports into its ``production``
environment (``flags.services.importing``) the engine benchmark's W4 mix (``bench.engine.workloads
.mixed_flags``): 200 flags of every archetype, with segments, splits and prerequisites. Larger
sizes repeat the W4 archetypes with other seeds and distinct keys (``<key>.<n>``), the
segments shared. Then it issues one server and one client key per environment.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

W4_SIZE = 200
# A rule-bearing boolean flag of the W4 mix (a case-insensitive email-suffix condition): the
# single-flag endpoint's flag, present at every size.
SINGLE_FLAG = "email-suffix-085"
# A static boolean flag toggled by the propagation measurement.
TOGGLE_FLAG = "static-000"
ENVIRONMENT = "production"


def project_key(size: int) -> str:
    """The project holding ``size`` flags."""
    return f"bench-{size}"


def scaled_document(size: int) -> dict[str, Any]:
    """A ruleset document of ``size`` flags: W4, then W4 again with other seeds and key suffixes."""
    from bench.engine.workloads import mixed_flags  # noqa: PLC0415

    if size <= 0 or size % W4_SIZE:
        raise ValueError(f"the flag count must be a multiple of {W4_SIZE}, not {size}")
    document = mixed_flags().document
    flags: dict[str, Any] = {}
    for copy in range(size // W4_SIZE):
        source = document if copy == 0 else mixed_flags(seed=7 + copy).document
        suffix = "" if copy == 0 else f".{copy}"
        for key, flag in source["flags"].items():
            renamed = dict(flag)
            if "prerequisites" in flag:
                renamed["prerequisites"] = [
                    {**prerequisite, "flag": prerequisite["flag"] + suffix}
                    for prerequisite in flag["prerequisites"]
                ]
            flags[key + suffix] = renamed
    return {**document, "project": "bench", "environment": ENVIRONMENT, "flags": flags}


def main(argv: list[str]) -> int:
    """Seed each size, issue keys, print ``{"sizes": {"200": {...}}, "single_flag": ...}``."""
    sizes = [int(arg) for arg in argv] or [W4_SIZE]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")
    import django  # noqa: PLC0415

    django.setup()
    from accounts.models import ApiKey  # noqa: PLC0415
    from accounts.services import api_key_issue  # noqa: PLC0415
    from flags import services  # noqa: PLC0415
    from flags.services.importing import import_ruleset  # noqa: PLC0415

    result: dict[str, Any] = {
        "sizes": {},
        "single_flag": SINGLE_FLAG,
        "toggle_flag": TOGGLE_FLAG,
        "toggle_project": project_key(sizes[0]),
    }
    for size in sizes:
        document = scaled_document(size)
        started = time.perf_counter()
        project = services.project_create(key=project_key(size), name=f"Bench {size}")
        environment = project.environments.get(key=ENVIRONMENT)
        imported = import_ruleset(document=document, environment=environment)
        seconds = time.perf_counter() - started
        _, server_key = api_key_issue(
            kind=ApiKey.Kind.SERVER, name="bench", environment=environment
        )
        _, client_key = api_key_issue(
            kind=ApiKey.Kind.CLIENT, name="bench", environment=environment
        )
        result["sizes"][str(size)] = {
            "server_key": server_key,
            "client_key": client_key,
            "environment_id": environment.pk,
            "flags": imported.flags,
            "rules": imported.rules,
            "import_seconds": round(seconds, 2),
        }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
