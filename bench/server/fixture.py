"""Seed the benchmark database and print what the load generator needs, as one JSON line.

Run by ``bench.server.run`` in a subprocess (``python -m bench.server.fixture TOTAL``) with
``DATABASE_URL``/``REDIS_URL`` pointing at the benchmark's own database: ``seed_demo`` (the demo
shop's hand-written flags, with rules, segments, splits and prerequisites) plus generated flags
up to ``TOTAL`` flags in the project, then one server and one client key for ``production``.
"""

from __future__ import annotations

import io
import json
import os
import sys


def main(argv: list[str]) -> int:
    """Seed, issue keys, print ``{"server_key": ..., "client_key": ..., ...}``."""
    total = int(argv[0]) if argv else 200
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")
    import django  # noqa: PLC0415

    django.setup()
    from django.core.management import call_command  # noqa: PLC0415

    from accounts.models import ApiKey  # noqa: PLC0415
    from accounts.services import api_key_issue  # noqa: PLC0415
    from flags.management import demo  # noqa: PLC0415
    from flags.models import Environment, Flag  # noqa: PLC0415

    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    hand_written = Flag.objects.filter(project__key=demo.PROJECT_KEY).count()
    if total > hand_written:
        call_command(
            "seed_demo", flags=total - hand_written, stdout=io.StringIO(), stderr=io.StringIO()
        )
    environment = Environment.objects.get(project__key=demo.PROJECT_KEY, key="production")
    _, server_key = api_key_issue(kind=ApiKey.Kind.SERVER, name="bench", environment=environment)
    _, client_key = api_key_issue(kind=ApiKey.Kind.CLIENT, name="bench", environment=environment)
    generated = (
        Flag.objects.filter(project__key=demo.PROJECT_KEY, key__startswith=demo.GENERATED_PREFIX)
        .order_by("key")
        .values_list("key", flat=True)
        .first()
    )
    result = {
        "server_key": server_key,
        "client_key": client_key,
        "environment_id": environment.pk,
        "flags": Flag.objects.filter(project__key=demo.PROJECT_KEY).count(),
        "hand_written_flags": hand_written,
        "toggle_flag": generated or "new-checkout",
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
