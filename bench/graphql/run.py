"""GraphQL beside REST, in process: what an operation costs against the REST call it stands for.

Run from the repository root::

    .venv/bin/python -m bench.graphql.run [--requests N] [--rounds R] [--markdown PATH]

A new PostgreSQL database gets the server benchmark's 200 flags (``bench.server.fixture``: the
engine benchmark's W4 mix in ``bench-200``/``production``), then a child process with the
production settings of ``bench.server.run`` (Redis, metrics, evaluation counting; rate limits off)
calls the WSGI application gunicorn serves (``flagship.wsgi``) in process: no socket, no server.
Each row is timed for N requests after a warm-up, R rounds interleaved; the table gives the median
of the rounds' medians, the spread of those medians, each round's p99 at its worst, and SQL
queries per request. Pairs:

- **evaluate, 200 flags** (server key): ``POST /api/v1/evaluate`` against ``evaluate(environment)``
  selecting the same members;
- **one flag state** (admin token): ``GET …/flags/{key}/environments/production/`` against
  ``flagState`` selecting REST's fields;
- **the endpoint's floor**: ``{ __typename }`` through FlagShip's view (authentication, throttles,
  limits, error codes) against the same document through strawberry's own Django view over a
  one-field schema, nothing of FlagShip's (the ceiling), both called as views without middleware.

Then a dashboard (50 flags with their states, rules and conditions) and the limits' measure of
its document alone. Last, the evaluate pair again over HTTP, from gunicorn (one gthread worker,
one thread, access lines off) at one keep-alive connection: the in-process figures' cross-check.

The child is started by importing this module (``python -c``), as gunicorn imports the
application. Run as ``__main__`` (``python -m``), its GraphQL rows took 3 to 5 times as long, with
the same threads, garbage collections and no tracer or monitoring tool; why is not known.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

os.environ.setdefault("BENCH_DATABASE", "flagship_bench_graphql")

import argparse
import http.client
import json
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.server.instructions import seeded, wsgi_environ
from bench.server.run import PYTHON, ROOT, machine

PROJECT = "bench-200"
ENVIRONMENT = "production"
WARMUP = 30
# Every member REST's answer has, for the context REST's row sends.
EVALUATE_BODY = (
    '{ evaluate(environment: "production", context: {targetingKey: "user-1"}) { version '
    "flags { key value variant reason rule prerequisite errorCode } } }"
)
STATE_QUERY = """query($flag: String!) { flagState(project: "bench-200", flag: $flag,
  environment: "production") { flag environment { key } enabled offVariant defaultServe version
  updatedAt rules { id description rollout bucketBy serve segments
  conditions { attribute operator values negate caseInsensitive } }
  prerequisites { flag variants } } }"""
DASHBOARD_QUERY = """{ flags(project: "bench-200", pagination: {limit: 50}) { totalCount results {
  key name kind tags states { environment { key } enabled offVariant version
  rules { rollout serve segments conditions { attribute operator values } } } } } }"""
FLOOR_QUERY = "{ __typename }"


# --- The child: in process ------------------------------------------------------------------------
def wsgi_call(
    application: Any, method: str, path: str, body: bytes, headers: dict[str, str]
) -> Callable[[], None]:
    """One request to the WSGI application (must answer 200)."""

    def call() -> None:
        environ = wsgi_environ(method, path, body, headers)
        answered: list[str] = []
        chunks = application(environ, lambda status, _headers, *_: answered.append(status))
        content = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        if not answered[0].startswith("200") or b'"errors"' in content:
            raise SystemExit(f"{method} {path} answered {answered[0]}: {content[:300]!r}")

    return call


def view_call(view: Any, query: str, headers: dict[str, str]) -> Callable[[], None]:
    """One request to a view, called directly (no middleware)."""
    from django.test import RequestFactory  # noqa: PLC0415

    factory = RequestFactory()
    body = json.dumps({"query": query})

    def call() -> None:
        request = factory.post("/graphql", body, content_type="application/json", headers=headers)
        response = view(request)
        if response.status_code != 200 or b'"errors"' in response.content:
            raise SystemExit(f"view answered {response.status_code}: {response.content[:300]!r}")

    return call


def bare_view() -> Any:
    """Strawberry's own Django view over a one-field schema: nothing of FlagShip's."""
    import strawberry  # noqa: PLC0415
    from strawberry.django.views import GraphQLView  # noqa: PLC0415

    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self) -> str:
            return "hello"

    return GraphQLView.as_view(schema=strawberry.Schema(query=Query), graphql_ide=None)


def timed(call: Callable[[], None], requests: int) -> dict[str, float]:
    """Microseconds per request (median, p99) and SQL queries per request."""
    from django.db import connection, reset_queries  # noqa: PLC0415

    for _ in range(WARMUP):
        call()
    connection.force_debug_cursor = True
    reset_queries()
    call()
    queries = len(connection.queries)
    connection.force_debug_cursor = False
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p99": samples[int(len(samples) * 0.99) - 1],
        "queries": queries,
    }


def child(server_key: str, requests: int, rounds: int) -> None:
    """Set up Django, build every row's call, time them round by round; print JSON."""
    import django  # noqa: PLC0415

    django.setup()
    from graphql import parse  # noqa: PLC0415

    from accounts.models import ApiKey, User  # noqa: PLC0415
    from accounts.services import api_key_issue  # noqa: PLC0415
    from flags.graphql import limits  # noqa: PLC0415
    from flags.graphql.schema import schema  # noqa: PLC0415
    from flags.graphql.view import FlagShipGraphQLView  # noqa: PLC0415
    from flags.models import FlagState  # noqa: PLC0415
    from flagship.warmup import warm_up  # noqa: PLC0415
    from flagship.wsgi import application  # noqa: PLC0415

    owner = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.com", "x-not-used-x"
    )
    _, admin_token = api_key_issue(kind=ApiKey.Kind.ADMIN, name="bench", user=owner)
    state = (
        FlagState.objects.filter(flag__project__key=PROJECT, environment__key=ENVIRONMENT)
        .exclude(rules=None)
        .select_related("flag")
        .order_by("flag__key")
        .first()
    )
    if state is None:
        raise SystemExit(f"{PROJECT} has no flag with rules in {ENVIRONMENT}")
    key, person = {"X-API-Key": server_key}, {"X-API-Key": admin_token}
    rest_state = f"/api/v1/projects/{PROJECT}/flags/{state.flag.key}/environments/{ENVIRONMENT}/"
    gql = json.dumps
    rows: dict[str, Callable[[], None]] = {
        "evaluate, 200 flags: REST POST /api/v1/evaluate": wsgi_call(
            application, "POST", "/api/v1/evaluate", b'{"context": {"targetingKey": "user-1"}}', key
        ),
        "evaluate, 200 flags: GraphQL evaluate": wsgi_call(
            application,
            "POST",
            "/graphql",
            gql({"query": EVALUATE_BODY}).encode(),
            key,
        ),
        "one flag state: REST GET": wsgi_call(application, "GET", rest_state, b"", person),
        "one flag state: GraphQL flagState": wsgi_call(
            application,
            "POST",
            "/graphql",
            gql({"query": STATE_QUERY, "variables": {"flag": state.flag.key}}).encode(),
            person,
        ),
        "floor: strawberry's view, nothing of FlagShip's (ceiling)": view_call(
            bare_view(), FLOOR_QUERY, {}
        ),
        "floor: FlagShip's view, server key": view_call(
            FlagShipGraphQLView.as_view(schema=schema), FLOOR_QUERY, key
        ),
        "dashboard: 50 flags with states, rules, conditions": wsgi_call(
            application, "POST", "/graphql", gql({"query": DASHBOARD_QUERY}).encode(), person
        ),
    }
    document = parse(DASHBOARD_QUERY)

    def measure_only() -> None:
        limits.refusal(limits.measure(schema._schema, document, None, {}))

    rows["limits: measuring the dashboard's document"] = measure_only
    warm_up()  # as each gunicorn worker does once loaded: start-up's objects frozen (gc.freeze)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, call in rows.items():
            results[name].append(timed(call, requests))
    print(json.dumps(results))


# --- The parent ---------------------------------------------------------------------------------
HTTP_PORT = 18_917


def over_http(env: dict[str, str], server_key: str, requests: int) -> dict[str, float]:
    """Median µs of the evaluate pair at one connection to a one-worker gunicorn."""
    server = subprocess.Popen(  # noqa: S603  # our own gunicorn
        [
            str(Path(PYTHON).with_name("gunicorn")),
            "flagship.wsgi",
            "--workers=1",
            "--threads=1",
            f"--bind=127.0.0.1:{HTTP_PORT}",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_ACCESS_LOG_LEVEL": "WARNING", "GUNICORN_WORKER_CLASS": "gthread"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bodies = {
        "REST POST /api/v1/evaluate": (
            "/api/v1/evaluate",
            '{"context": {"targetingKey": "user-1"}}',
        ),
        "GraphQL evaluate": ("/graphql", json.dumps({"query": EVALUATE_BODY})),
    }
    try:
        deadline = time.monotonic() + 60
        connection = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
        while True:
            try:
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                connection.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        medians = {}
        headers = {"X-API-Key": server_key, "Content-Type": "application/json"}
        for name, (path, body) in bodies.items():
            samples = []
            for number in range(WARMUP + requests):
                start = time.perf_counter()
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                content = response.read()
                if response.status != 200 or b'"errors"' in content:
                    raise SystemExit(f"{path} over HTTP answered {response.status}")
                if number >= WARMUP:
                    samples.append((time.perf_counter() - start) * 1e6)
            medians[name] = statistics.median(samples)
        connection.close()
        return medians
    finally:
        server.terminate()
        server.wait(timeout=30)


def report(
    results: dict[str, list[dict[str, float]]],
    requests: int,
    rounds: int,
    http: dict[str, float] | None = None,
) -> str:
    """The results as a markdown table."""
    lines = [
        f"{machine().split('; load generator')[0]}; {requests} requests a row per round, "
        f"{rounds} rounds, in process "
        "(flagship.wsgi, production settings, rate limits off).",
        "",
        "| row | median µs | round medians | worst p99 µs | per core req/s | SQL queries |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        medians = [run["median"] for run in runs]
        median = statistics.median(medians)
        spread = f"{min(medians):,.0f} to {max(medians):,.0f}"
        worst = max(run["p99"] for run in runs)
        lines.append(
            f"| {name} | {median:,.0f} | {spread} | {worst:,.0f} | {1e6 / median:,.0f} | "
            f"{int(runs[0]['queries'])} |"
        )
    pairs = (
        (
            "evaluate, 200 flags: GraphQL evaluate",
            "evaluate, 200 flags: REST POST /api/v1/evaluate",
        ),
        ("one flag state: GraphQL flagState", "one flag state: REST GET"),
        (
            "floor: FlagShip's view, server key",
            "floor: strawberry's view, nothing of FlagShip's (ceiling)",
        ),
    )
    lines.append("")
    for ours, base in pairs:
        ratio = statistics.median(r["median"] for r in results[ours]) / statistics.median(
            r["median"] for r in results[base]
        )
        lines.append(f"- {ours} / {base}: **{ratio:.2f}x** the time")
    if http:
        graphql_us, rest_us = http["GraphQL evaluate"], http["REST POST /api/v1/evaluate"]
        lines.append(
            f"- over HTTP (gunicorn, one worker, one connection), evaluate, 200 flags: REST "
            f"{rest_us:,.0f} µs, GraphQL {graphql_us:,.0f} µs: **{graphql_us / rest_us:.2f}x**"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Seed, run the child, print (and write) the report."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--child"]:
        child(arguments[1], int(arguments[2]), int(arguments[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests a row (300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, interleaved (3)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args(arguments)
    with seeded(args, "flagship-bench-graphql-") as (seeded_env, server_key):
        # Rate limits off: thousands of requests a second from one token are the point here.
        env = {**seeded_env, "FLAGSHIP_MANAGEMENT_RATE": "", "FLAGSHIP_SERVER_KEY_RATE": ""}
        output = subprocess.run(  # noqa: S603  # our own interpreter and module
            [
                PYTHON,
                "-c",
                "import sys; from bench.graphql.run import main; sys.exit(main(sys.argv[1:]))",
                "--child",
                server_key,
                str(args.requests),
                str(args.rounds),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if output.returncode != 0:
            sys.stderr.write(output.stderr[-4000:] + output.stdout[-2000:])
            return 1
        http = over_http(env, server_key, args.requests)
    results = json.loads(output.stdout.strip().splitlines()[-1])
    text = report(results, args.requests, args.rounds, http)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
