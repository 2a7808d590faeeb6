"""The four workloads: ruleset documents for the engine and, for each, a hand-written baseline.

Every baseline function is written for exactly one flag: constants are captured, operators are
written out, and nothing is interpreted at evaluation time. ``run.py`` checks that each baseline
gives the engine's answer on every benchmark context before anything is timed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mmh3

from bench.engine.baseline import (
    BUCKETS,
    DEFAULT,
    DISABLED,
    PREREQUISITE_FAILED,
    SPLIT,
    STATIC,
    TARGETING_MATCH,
    Result,
    as_number,
    canonical,
    must_semver,
    semver_key,
)
from bench.engine.contexts import Context

Doc = dict[str, Any]
FlagFn = Callable[[Context], Result]
AllFn = Callable[[Context], dict[str, Result]]

# Bound once: a global lookup of ``mmh3.hash`` per call would be an attribute load the engine can
# avoid too, and a hand-written evaluator would do the same.
_hash = mmh3.hash

BOOL_VARIANTS: dict[str, bool] = {"on": True, "off": False}

# The ten countries of W3's membership rule: smaller markets, so that the rule matches some users
# (about one in seven) and later rules and the default split still see most traffic.
W3_COUNTRIES: tuple[str, ...] = ("CH", "AT", "BE", "DK", "NO", "IE", "PT", "SE", "PL", "NL")
EU_COUNTRIES: tuple[str, ...] = ("DE", "FR", "ES", "IT", "NL", "PL", "SE", "AT", "BE", "IE", "PT")
NORTH_AMERICA: tuple[str, ...] = ("US", "CA", "MX")

PRO_ADULTS_SEGMENT: Doc = {
    "conditions": [
        {"attribute": "plan", "operator": "in", "values": ["pro"]},
        {"attribute": "age", "operator": "num_gte", "values": [18]},
        {"attribute": "beta", "operator": "in", "values": [True]},
    ]
}


def _bool_flag(rules: list[Doc], default: str, *, enabled: bool = True) -> Doc:
    flag: Doc = {
        "kind": "boolean",
        "variants": dict(BOOL_VARIANTS),
        "enabled": enabled,
        "off_variant": "off",
        "default_serve": {"variant": default},
    }
    if rules:
        flag["rules"] = rules
    return flag


def _cond(attribute: str, operator: str, values: list[Any], **extra: Any) -> Doc:
    return {"attribute": attribute, "operator": operator, "values": values, **extra}


def _str_attr(ctx: Context, name: str) -> str | None:
    """Canonical string of an attribute: the slow path for non-``str`` values, rare in practice."""
    value = ctx.get(name)
    return value if type(value) is str else canonical(value)


# --- segments, hand-written once and shared by the flags that use them ----------------------------


def seg_pro_adults(ctx: Context) -> bool:
    """``plan in ["pro"]`` and ``age num_gte 18`` and ``beta in [true]``."""
    plan = ctx.get("plan")
    if plan != "pro" and (type(plan) is str or canonical(plan) != "pro"):
        return False
    age = ctx.get("age")
    number = age if type(age) is int else as_number(age)
    if number is None or number < 18:
        return False
    beta = ctx.get("beta")
    # The canonical string of ``true`` is "true", so the string "true" is in the list too.
    return beta is True or beta == "true"


def seg_internal(ctx: Context) -> bool:
    """``email str_ends_with "@example.com"``."""
    email = ctx.get("email")
    return type(email) is str and email.endswith("@example.com")


_EU = frozenset(EU_COUNTRIES)


def seg_eu(ctx: Context) -> bool:
    """``country in EU_COUNTRIES``."""
    country = ctx.get("country")
    if type(country) is not str:
        country = canonical(country)
    return country in _EU


_V3 = must_semver("3.0.0")


def seg_new_app(ctx: Context) -> bool:
    """``app_version semver_gte "3.0.0"``."""
    key = semver_key(ctx.get("app_version"))
    return key is not None and key >= _V3


def seg_young(ctx: Context) -> bool:
    """``age num_lt 25``."""
    age = ctx.get("age")
    number = age if type(age) is int else as_number(age)
    return number is not None and number < 25


SEGMENTS: dict[str, tuple[Doc, Callable[[Context], bool]]] = {
    "pro-adults": (PRO_ADULTS_SEGMENT, seg_pro_adults),
    "internal": ({"conditions": [_cond("email", "str_ends_with", ["@example.com"])]}, seg_internal),
    "eu": ({"conditions": [_cond("country", "in", list(EU_COUNTRIES))]}, seg_eu),
    "new-app": ({"conditions": [_cond("app_version", "semver_gte", ["3.0.0"])]}, seg_new_app),
    "young": ({"conditions": [_cond("age", "num_lt", [25])]}, seg_young),
}


# --- W1, W2, W3 -----------------------------------------------------------------------------------

W1_KEY = "w1-static"
W2_KEY = "w2-rollout"
W3_KEY = "w3-experiment"


def single_flag_ruleset() -> Doc:
    """The ruleset of W1, W2 and W3: one flag per workload, and W3's segment."""
    return {
        "format": 1,
        "project": "bench",
        "environment": "bench",
        "version": 1,
        "segments": {"pro-adults": PRO_ADULTS_SEGMENT},
        "flags": {
            W1_KEY: _bool_flag([], "on"),
            W2_KEY: _bool_flag(
                [{"id": "rollout-25", "rollout": 25000, "serve": {"variant": "on"}}], "off"
            ),
            W3_KEY: {
                "kind": "string",
                "variants": {"control": "control", "treatment": "treatment", "special": "special"},
                "enabled": True,
                "off_variant": "control",
                "rules": [
                    {
                        "id": "internal-email",
                        "conditions": [_cond("email", "str_ends_with", ["@example.com"])],
                        "serve": {"variant": "special"},
                    },
                    {
                        "id": "small-markets",
                        "conditions": [_cond("country", "in", list(W3_COUNTRIES))],
                        "serve": {"variant": "special"},
                    },
                    {
                        "id": "pro-adults",
                        "segments": ["pro-adults"],
                        "serve": {"variant": "special"},
                    },
                ],
                "default_serve": {
                    "split": [
                        {"variant": "control", "weight": 50000},
                        {"variant": "treatment", "weight": 50000},
                    ]
                },
            },
        },
    }


# Every outcome of a flag is known in advance, so a hand-written evaluator returns shared,
# pre-built results instead of allocating one per call (the engine does the same).
_ON_STATIC = Result(True, "on", STATIC)


def baseline_w1(ctx: Context) -> Result:
    """W1 by hand: the flag is on for everyone."""
    return _ON_STATIC


_W2_PREFIX = W2_KEY + ":"
_W2_HIT = Result(True, "on", TARGETING_MATCH, "rollout-25")
_W2_MISS = Result(False, "off", DEFAULT)


def baseline_w2(ctx: Context) -> Result:
    """W2 by hand: on for the 25 % whose participation bucket of ``targetingKey`` is below 25000."""
    key = ctx.get("targetingKey")
    if type(key) is not str:
        key = canonical(key)
    if key is not None and _hash(_W2_PREFIX + key, 0, False) * BUCKETS >> 32 < 25000:
        return _W2_HIT
    return _W2_MISS


_W3_COUNTRIES = frozenset(W3_COUNTRIES)
_W3_PREFIX = W3_KEY + ":"
_W3_EMAIL = Result("special", "special", TARGETING_MATCH, "internal-email")
_W3_COUNTRY = Result("special", "special", TARGETING_MATCH, "small-markets")
_W3_SEGMENT = Result("special", "special", TARGETING_MATCH, "pro-adults")
_W3_NO_KEY = Result("control", "control", DEFAULT)
_W3_CONTROL = Result("control", "control", SPLIT)
_W3_TREATMENT = Result("treatment", "treatment", SPLIT)


def baseline_w3(ctx: Context) -> Result:
    """W3 by hand: three targeting rules serving "special", else a 50/50 control/treatment split."""
    email = ctx.get("email")
    if type(email) is str and email.endswith("@example.com"):
        return _W3_EMAIL
    country = ctx.get("country")
    if type(country) is not str:
        country = canonical(country)
    if country in _W3_COUNTRIES:
        return _W3_COUNTRY
    if seg_pro_adults(ctx):
        return _W3_SEGMENT
    key = ctx.get("targetingKey")
    if type(key) is not str:
        key = canonical(key)
    if key is None:
        return _W3_NO_KEY
    if _hash(_W3_PREFIX + key, 1, False) * BUCKETS >> 32 < 50000:
        return _W3_CONTROL
    return _W3_TREATMENT


# --- W4: 200 mixed flags --------------------------------------------------------------------------


@dataclass(frozen=True)
class MixedFlags:
    """W4: a ruleset of many flags, a hand-written function per flag, and their evaluate_all."""

    document: Doc
    baselines: dict[str, FlagFn]
    evaluate_all: AllFn
    # How many flags of each archetype, for the report.
    mix: dict[str, int]


@dataclass
class _Builder:
    rng: random.Random
    flags: dict[str, Doc]
    baselines: dict[str, FlagFn]
    # Boolean flags that prerequisites may name.
    parents: list[str]

    def add(self, key: str, doc: Doc, fn: FlagFn, *, parent: bool = False) -> None:
        self.flags[key] = doc
        self.baselines[key] = fn
        if parent:
            self.parents.append(key)


_BOOL_DEFAULT_OFF = Result(False, "off", DEFAULT)


def _static(b: _Builder, key: str) -> None:
    default = "on" if b.rng.random() < 0.75 else "off"
    result = Result(default == "on", default, STATIC)

    def fn(ctx: Context) -> Result:
        return result

    b.add(key, _bool_flag([], default), fn, parent=True)


_DISABLED = Result(False, "off", DISABLED)


def _disabled(b: _Builder, key: str) -> None:
    rules = [{"id": "internal", "segments": ["internal"], "serve": {"variant": "on"}}]

    def fn(ctx: Context) -> Result:
        return _DISABLED

    b.add(key, _bool_flag(rules, "on", enabled=False), fn, parent=True)


def _rollout(b: _Builder, key: str) -> None:
    rollout = b.rng.choice((1000, 5000, 10000, 25000, 50000, 75000, 100000))
    salted = b.rng.random() < 0.3
    salt = f"{key}-v2" if salted else key
    prefix = salt + ":"
    rule_id = f"pct-{rollout}"
    doc = _bool_flag([{"id": rule_id, "rollout": rollout, "serve": {"variant": "on"}}], "off")
    if salted:
        doc["salt"] = salt
    hit = Result(True, "on", TARGETING_MATCH, rule_id)

    def fn(ctx: Context) -> Result:
        tk = ctx.get("targetingKey")
        if type(tk) is not str:
            tk = canonical(tk)
        if tk is not None and _hash(prefix + tk, 0, False) * BUCKETS >> 32 < rollout:
            return hit
        return _BOOL_DEFAULT_OFF

    b.add(key, doc, fn, parent=True)


def _email_suffix(b: _Builder, key: str) -> None:
    suffixes = ("@example.com",) if b.rng.random() < 0.6 else ("@example.com", "@acme.io")
    insensitive = b.rng.random() < 0.5
    cond = _cond("email", "str_ends_with", list(suffixes))
    if insensitive:
        cond["case_insensitive"] = True
    doc = _bool_flag([{"id": "staff", "conditions": [cond], "serve": {"variant": "on"}}], "off")
    hit = Result(True, "on", TARGETING_MATCH, "staff")

    if insensitive:
        lowered = tuple(s.lower() for s in suffixes)

        def fn(ctx: Context) -> Result:
            email = ctx.get("email")
            if type(email) is str and email.lower().endswith(lowered):
                return hit
            return _BOOL_DEFAULT_OFF

    else:

        def fn(ctx: Context) -> Result:
            email = ctx.get("email")
            if type(email) is str and email.endswith(suffixes):
                return hit
            return _BOOL_DEFAULT_OFF

    b.add(key, doc, fn, parent=True)


def _string_op(b: _Builder, key: str) -> None:
    hit = Result(True, "on", TARGETING_MATCH, "match")
    if b.rng.random() < 0.5:
        prefix = f"user-{b.rng.randint(1, 9)}"
        cond = _cond("targetingKey", "str_starts_with", [prefix])

        def fn(ctx: Context) -> Result:
            tk = ctx.get("targetingKey")
            if type(tk) is str and tk.startswith(prefix):
                return hit
            return _BOOL_DEFAULT_OFF

    else:
        needle = b.rng.choice(("kumar", "lopez", ".ito"))
        cond = _cond("email", "str_contains", [needle])

        def fn(ctx: Context) -> Result:
            email = ctx.get("email")
            if type(email) is str and needle in email:
                return hit
            return _BOOL_DEFAULT_OFF

    doc = _bool_flag([{"id": "match", "conditions": [cond], "serve": {"variant": "on"}}], "off")
    b.add(key, doc, fn)


_EU_PRICING = Result("eu-pricing", "eu", TARGETING_MATCH, "eu")
_NA_PRICING = Result("na-pricing", "na", TARGETING_MATCH, "na")
_ROW_PRICING = Result("global-pricing", "row", DEFAULT)


def _country_list(b: _Builder, key: str) -> None:
    doc: Doc = {
        "kind": "string",
        "variants": {"eu": "eu-pricing", "na": "na-pricing", "row": "global-pricing"},
        "enabled": True,
        "off_variant": "row",
        "rules": [
            {
                "id": "eu",
                "conditions": [_cond("country", "in", list(EU_COUNTRIES))],
                "serve": {"variant": "eu"},
            },
            {
                "id": "na",
                "conditions": [_cond("country", "in", list(NORTH_AMERICA))],
                "serve": {"variant": "na"},
            },
        ],
        "default_serve": {"variant": "row"},
    }
    eu = frozenset(EU_COUNTRIES)
    na = frozenset(NORTH_AMERICA)

    def fn(ctx: Context) -> Result:
        country = ctx.get("country")
        if type(country) is not str:
            country = canonical(country)
        if country in eu:
            return _EU_PRICING
        if country in na:
            return _NA_PRICING
        return _ROW_PRICING

    b.add(key, doc, fn)


def _not_in(b: _Builder, key: str) -> None:
    conditions = [
        _cond("country", "not_in", list(NORTH_AMERICA)),
        _cond("plan", "in", ["pro", "enterprise"]),
    ]
    rules = [{"id": "intl-paid", "conditions": conditions, "serve": {"variant": "on"}}]
    doc = _bool_flag(rules, "off")
    na = frozenset(NORTH_AMERICA)
    plans = frozenset(("pro", "enterprise"))
    hit = Result(True, "on", TARGETING_MATCH, "intl-paid")

    def fn(ctx: Context) -> Result:
        # A missing country is "not in" the list, so None must pass: canonical(None) is None.
        if _str_attr(ctx, "country") not in na and _str_attr(ctx, "plan") in plans:
            return hit
        return _BOOL_DEFAULT_OFF

    b.add(key, doc, fn)


def _numeric(b: _Builder, key: str) -> None:
    threshold = b.rng.choice((18, 21, 25, 30, 40, 65))
    at_least = b.rng.random() < 0.6
    op = "num_gte" if at_least else "num_lt"
    rule = {"id": "age", "conditions": [_cond("age", op, [threshold])], "serve": {"variant": "on"}}
    doc = _bool_flag([rule], "off")
    hit = Result(True, "on", TARGETING_MATCH, "age")

    if at_least:

        def fn(ctx: Context) -> Result:
            age = ctx.get("age")
            number = age if type(age) is int else as_number(age)
            if number is not None and number >= threshold:
                return hit
            return _BOOL_DEFAULT_OFF

    else:

        def fn(ctx: Context) -> Result:
            age = ctx.get("age")
            number = age if type(age) is int else as_number(age)
            if number is not None and number < threshold:
                return hit
            return _BOOL_DEFAULT_OFF

    b.add(key, doc, fn)


def _semver(b: _Builder, key: str) -> None:
    version = f"{b.rng.randint(1, 4)}.{b.rng.randint(0, 12)}.0"
    at_least = b.rng.random() < 0.7
    op = "semver_gte" if at_least else "semver_lt"
    rule = {
        "id": "app",
        "conditions": [_cond("app_version", op, [version])],
        "serve": {"variant": "on"},
    }
    doc = _bool_flag([rule], "off")
    bound = must_semver(version)
    hit = Result(True, "on", TARGETING_MATCH, "app")

    if at_least:

        def fn(ctx: Context) -> Result:
            v = semver_key(ctx.get("app_version"))
            if v is not None and v >= bound:
                return hit
            return _BOOL_DEFAULT_OFF

    else:

        def fn(ctx: Context) -> Result:
            v = semver_key(ctx.get("app_version"))
            if v is not None and v < bound:
                return hit
            return _BOOL_DEFAULT_OFF

    b.add(key, doc, fn)


_SEGMENT_CHOICES: tuple[tuple[str, ...], ...] = (
    ("pro-adults",),
    ("internal",),
    ("new-app",),
    ("eu", "pro-adults"),
    ("young", "eu"),
)


def _segment(b: _Builder, key: str) -> None:
    names = b.rng.choice(_SEGMENT_CHOICES)
    doc = _bool_flag([{"id": "seg", "segments": list(names), "serve": {"variant": "on"}}], "off")
    hit = Result(True, "on", TARGETING_MATCH, "seg")

    if len(names) == 1:
        only = SEGMENTS[names[0]][1]

        def fn(ctx: Context) -> Result:
            return hit if only(ctx) else _BOOL_DEFAULT_OFF

    else:
        first, second = (SEGMENTS[n][1] for n in names)

        def fn(ctx: Context) -> Result:
            return hit if first(ctx) and second(ctx) else _BOOL_DEFAULT_OFF

    b.add(key, doc, fn, parent=True)


def _split_default(b: _Builder, key: str) -> None:
    shapes: tuple[tuple[tuple[str, int], ...], ...] = (
        (("control", 50000), ("treatment", 50000)),
        (("control", 90000), ("treatment", 10000)),
        (("control", 34000), ("treatment", 33000), ("variant-b", 33000)),
    )
    shape = b.rng.choice(shapes)
    doc: Doc = {
        "kind": "string",
        "variants": {v: v for v, _ in shape},
        "enabled": True,
        "off_variant": "control",
        "default_serve": {"split": [{"variant": v, "weight": w} for v, w in shape]},
    }
    prefix = key + ":"
    no_key = Result(shape[0][0], shape[0][0], DEFAULT)

    if len(shape) == 2:
        cut = shape[0][1]
        low = Result(shape[0][0], shape[0][0], SPLIT)
        high = Result(shape[1][0], shape[1][0], SPLIT)

        def fn(ctx: Context) -> Result:
            tk = ctx.get("targetingKey")
            if type(tk) is not str:
                tk = canonical(tk)
            if tk is None:
                return no_key
            return low if _hash(prefix + tk, 1, False) * BUCKETS >> 32 < cut else high

    else:
        upper = 0
        ranges: list[tuple[int, Result]] = []
        for variant, weight in shape:
            upper += weight
            ranges.append((upper, Result(variant, variant, SPLIT)))

        def fn(ctx: Context) -> Result:
            tk = ctx.get("targetingKey")
            if type(tk) is not str:
                tk = canonical(tk)
            if tk is None:
                return no_key
            bucket = _hash(prefix + tk, 1, False) * BUCKETS >> 32
            for limit, result in ranges:
                if bucket < limit:
                    return result
            raise AssertionError("weights sum to 100000")

    b.add(key, doc, fn)


_STAFF_TREATMENT = Result("treatment", "treatment", TARGETING_MATCH, "staff")
_EU_CONTROL = Result("control", "control", SPLIT, "eu-half")
_EU_TREATMENT = Result("treatment", "treatment", SPLIT, "eu-half")
_CONTROL_DEFAULT = Result("control", "control", DEFAULT)


def _rule_split(b: _Builder, key: str) -> None:
    doc: Doc = {
        "kind": "string",
        "variants": {"control": "control", "treatment": "treatment"},
        "enabled": True,
        "off_variant": "control",
        "rules": [
            {"id": "staff", "segments": ["internal"], "serve": {"variant": "treatment"}},
            {
                "id": "eu-half",
                "conditions": [_cond("country", "in", list(EU_COUNTRIES))],
                "rollout": 50000,
                "serve": {
                    "split": [
                        {"variant": "control", "weight": 50000},
                        {"variant": "treatment", "weight": 50000},
                    ]
                },
            },
        ],
        "default_serve": {"variant": "control"},
    }
    prefix = key + ":"

    def fn(ctx: Context) -> Result:
        if seg_internal(ctx):
            return _STAFF_TREATMENT
        if seg_eu(ctx):
            tk = ctx.get("targetingKey")
            if type(tk) is not str:
                tk = canonical(tk)
            if tk is not None and _hash(prefix + tk, 0, False) * BUCKETS >> 32 < 50000:
                if _hash(prefix + tk, 1, False) * BUCKETS >> 32 < 50000:
                    return _EU_CONTROL
                return _EU_TREATMENT
        return _CONTROL_DEFAULT

    b.add(key, doc, fn)


_PLAN_LARGE = Result(1000, "large", TARGETING_MATCH, "ent")
_PLAN_MEDIUM = Result(100, "medium", TARGETING_MATCH, "paid")
_PLAN_SMALL = Result(10, "small", DEFAULT)


def _number_plan(b: _Builder, key: str) -> None:
    doc: Doc = {
        "kind": "number",
        # "tiny" is a float that is never served: it checks that the engine keeps the kinds apart.
        "variants": {"small": 10, "medium": 100, "large": 1000, "tiny": 0.5},
        "enabled": True,
        "off_variant": "tiny",
        "rules": [
            {
                "id": "ent",
                "conditions": [_cond("plan", "in", ["enterprise"])],
                "serve": {"variant": "large"},
            },
            {
                "id": "paid",
                "conditions": [_cond("plan", "in", ["pro", "team"])],
                "serve": {"variant": "medium"},
            },
        ],
        "default_serve": {"variant": "small"},
    }
    paid = frozenset(("pro", "team"))

    def fn(ctx: Context) -> Result:
        plan = _str_attr(ctx, "plan")
        if plan == "enterprise":
            return _PLAN_LARGE
        if plan in paid:
            return _PLAN_MEDIUM
        return _PLAN_SMALL

    b.add(key, doc, fn)


_YOUNG_PAID = Result(True, "on", TARGETING_MATCH, "young-paid")
_EMAIL_10 = Result(True, "on", TARGETING_MATCH, "email-10")


def _multi(b: _Builder, key: str) -> None:
    rules: list[Doc] = [
        {
            "id": "young-paid",
            "conditions": [_cond("plan", "in", ["pro", "team"]), _cond("age", "num_lt", [30])],
            "serve": {"variant": "on"},
        },
        {"id": "email-10", "rollout": 10000, "bucket_by": "email", "serve": {"variant": "on"}},
    ]
    doc = _bool_flag(rules, "off")
    paid = frozenset(("pro", "team"))
    prefix = key + ":"

    def fn(ctx: Context) -> Result:
        if _str_attr(ctx, "plan") in paid:
            age = ctx.get("age")
            number = age if type(age) is int else as_number(age)
            if number is not None and number < 30:
                return _YOUNG_PAID
        email = _str_attr(ctx, "email")
        if email is not None and _hash(prefix + email, 0, False) * BUCKETS >> 32 < 10000:
            return _EMAIL_10
        return _BOOL_DEFAULT_OFF

    b.add(key, doc, fn)


_HALF = Result(True, "on", TARGETING_MATCH, "half")


def _prerequisite(b: _Builder, key: str) -> None:
    parent = b.rng.choice(b.parents)
    parent_fn = b.baselines[parent]
    explicit = b.rng.random() < 0.5
    prerequisite: Doc = {"flag": parent}
    if explicit:
        prerequisite["variants"] = ["on"]
    doc = _bool_flag([{"id": "half", "rollout": 50000, "serve": {"variant": "on"}}], "off")
    doc["prerequisites"] = [prerequisite]
    prefix = key + ":"
    failed = Result(False, "off", PREREQUISITE_FAILED, None, parent)

    # Every parent is a boolean flag, so "serves anything but its off variant" is "serves on" too;
    # the two spellings are kept apart anyway so that the baseline mirrors the document. The
    # parent is evaluated again rather than looked up: a handful of cheap flags, so this costs the
    # baseline well under 1 % of W4.
    if explicit:

        def holds(ctx: Context) -> bool:
            return parent_fn(ctx).variant == "on"

    else:

        def holds(ctx: Context) -> bool:
            return parent_fn(ctx).variant != "off"

    def fn(ctx: Context) -> Result:
        if not holds(ctx):
            return failed
        tk = _str_attr(ctx, "targetingKey")
        if tk is not None and _hash(prefix + tk, 0, False) * BUCKETS >> 32 < 50000:
            return _HALF
        return _BOOL_DEFAULT_OFF

    b.add(key, doc, fn)


# Archetype, how many flags of it; sums to 200. Prerequisites come last so that their parents
# exist. Mostly simple flags, as in a real environment, with every rule shape represented.
W4_MIX: tuple[tuple[str, Callable[[_Builder, str], None], int], ...] = (
    ("static", _static, 40),
    ("disabled", _disabled, 20),
    ("rollout", _rollout, 25),
    ("email-suffix", _email_suffix, 10),
    ("string-op", _string_op, 5),
    ("country-list", _country_list, 15),
    ("not-in", _not_in, 5),
    ("numeric", _numeric, 10),
    ("semver", _semver, 15),
    ("segment", _segment, 15),
    ("split", _split_default, 15),
    ("rule-split", _rule_split, 10),
    ("number", _number_plan, 5),
    ("multi-rule", _multi, 5),
    ("prerequisite", _prerequisite, 5),
)


def mixed_flags(seed: int = 7) -> MixedFlags:
    """Build W4: 200 flags of the archetypes in ``W4_MIX``, in a shuffled document order."""
    builder = _Builder(random.Random(seed), {}, {}, [])
    index = 0
    for name, make, count in W4_MIX:
        for _ in range(count):
            make(builder, f"{name}-{index:03d}")
            index += 1
    keys = list(builder.flags)
    # Real rulesets list flags in no particular order; parents need not come before children.
    builder.rng.shuffle(keys)
    document: Doc = {
        "format": 1,
        "project": "bench",
        "environment": "bench",
        "version": 1,
        "segments": {name: seg_doc for name, (seg_doc, _) in SEGMENTS.items()},
        "flags": {k: builder.flags[k] for k in keys},
    }
    items = tuple((k, builder.baselines[k]) for k in keys)

    def evaluate_all(ctx: Context) -> dict[str, Result]:
        return {k: fn(ctx) for k, fn in items}

    return MixedFlags(
        document=document,
        baselines=dict(items),
        evaluate_all=evaluate_all,
        mix={name: count for name, _, count in W4_MIX},
    )
