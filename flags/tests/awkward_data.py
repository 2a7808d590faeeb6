"""Data at the edges of every value the admin shows: for tests that save forms unchanged.

``populate(project, actor)`` writes, through the services (as the API would), flags of every kind
with values a form must not alter: floats that look like integers, huge integers, strings with
spaces, line breaks and quotes, JSON of every shape, splits listed out of variant order with 0 %
shares and their own bucket_by, rollouts of 0.001 % and 33.333 %, conditions with numbers,
booleans and strings that look like numbers, prerequisites naming variants out of order.

(No tests here; the name keeps it with the tests it serves.)
"""

from __future__ import annotations

from typing import Any

from flags import services
from flags.models import Flag, Project, Segment

NUMBERS = [("int", 2), ("float", 2.0), ("huge", 10**20), ("neg", -0.5), ("tiny", 1e-7)]
STRINGS = [
    ("empty", ""),
    ("padded", "  padded  "),
    ("lines", "line one\nline two"),
    ("quoted", '"quoted" and number: 3'),
    ("unicode", "Grüße ✓ 日本"),
]
JSONS = [
    ("object", {"b": 1, "a": [1, 2.0, "x", None], "nested": {"deep": {"er": True}}}),
    ("array", [[], {}, "", 0]),
    ("text", "just text"),
    ("bool", False),
    ("float", 1.5),
]
THIRD_SPLIT = [
    {"variant": "unicode", "weight": 33333},
    {"variant": "empty", "weight": 0},
    {"variant": "padded", "weight": 33333},
    {"variant": "lines", "weight": 33334},
]
CONDITIONS: list[dict[str, Any]] = [
    {"attribute": "country", "operator": "in", "values": [" DE", 42, True, "1.0", "number: 3", ""]},
    {"attribute": "age", "operator": "num_gte", "values": [18, "18.5", 1e3]},
    {
        "attribute": "signup",
        "operator": "date_after",
        "values": ["2024-01-01T00:00:00Z", 1700000000],
    },
    {"attribute": "appVersion", "operator": "semver_lt", "values": ["1.2.3-alpha.10"]},
    {"attribute": "ip", "operator": "in_cidr", "values": ["10.0.0.0/8", "2001:db8::1"]},
    {"attribute": "email", "operator": "regex", "values": ["^a.*\\d+$"], "case_insensitive": True},
    {"attribute": "plan", "operator": "str_contains", "values": ["pro\tplus"], "negate": True},
    {"attribute": "beta", "operator": "exists", "values": []},
]


def populate(project: Project, actor: Any) -> list[Flag]:
    """Flags, segments, rules and prerequisites with awkward values, in ``project``."""
    segment = services.segment_create(
        project=project,
        key="awkward-segment",
        name="Awkward segment",
        description="Line one\nline two, with  double  spaces",
        conditions=CONDITIONS[:3],
        actor=actor,
    )
    number = services.flag_create(
        project=project,
        key="awkward-number",
        name="Awkward number",
        kind=Flag.Kind.NUMBER,
        variants=NUMBERS,
        description="First line\n\nThird line",
        salt="salty",
        client_visible=True,
        owner=actor,
        actor=actor,
    )
    string = services.flag_create(
        project=project,
        key="awkward-string",
        name="Awkward string",
        kind=Flag.Kind.STRING,
        variants=STRINGS,
        actor=actor,
    )
    json_flag = services.flag_create(
        project=project,
        key="awkward-json",
        name="Awkward JSON",
        kind=Flag.Kind.JSON,
        variants=JSONS,
        actor=actor,
    )
    boolean = services.flag_create(
        project=project, key="awkward-boolean", name="Awkward boolean", actor=actor
    )
    for environment in project.environments.all():
        _target(number, environment.pk, segment, actor)
        state = string.states.get(environment=environment)
        services.flag_state_update(
            state=state,
            actor=None,
            enabled=True,
            default_serve={"split": THIRD_SPLIT, "bucket_by": ["companyId", "targetingKey"]},
        )
        services.rule_create(
            state=state,
            serve={"variant": "lines"},
            conditions=CONDITIONS[3:],
            rollout=1,
            bucket_by="companyId, targetingKey",
            description="The 0.001 % with every operator",
            actor=None,
        )
        state = json_flag.states.get(environment=environment)
        services.flag_state_update(
            state=state, actor=None, enabled=True, default_serve={"variant": "bool"}
        )
        services.prerequisite_add(state=state, parent=number, variants=["tiny", "int"], actor=None)
        state = boolean.states.get(environment=environment)
        services.flag_state_update(
            state=state,
            actor=None,
            enabled=True,
            default_serve={
                "split": [{"variant": "off", "weight": 100000}, {"variant": "on", "weight": 0}]
            },
        )
    return [number, string, json_flag, boolean]


def _target(flag: Flag, environment_id: int, segment: Segment, actor: Any) -> None:
    state = flag.states.get(environment_id=environment_id)
    services.flag_state_update(
        state=state,
        actor=None,
        enabled=True,
        off_variant=flag.variants.get(key="neg"),
        default_serve={
            "split": [{"variant": "huge", "weight": 66667}, {"variant": "float", "weight": 33333}]
        },
    )
    services.rule_create(
        state=state,
        serve={"variant": "float"},
        segments=[segment],
        rollout=33333,
        actor=None,
    )
    services.rule_create(
        state=state,
        serve={
            "split": [{"variant": "tiny", "weight": 50000}, {"variant": "int", "weight": 50000}]
        },
        conditions=CONDITIONS[:1],
        rollout=100000,
        description="Everyone, split",
        actor=None,
    )
