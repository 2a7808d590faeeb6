"""Deterministic, realistic evaluation contexts shared by every workload."""

from __future__ import annotations

import random
from typing import Any

Context = dict[str, Any]

# Weighted so that membership rules match some users but not most, as real country lists do.
COUNTRIES: tuple[tuple[str, int], ...] = (
    ("US", 30),
    ("DE", 10),
    ("GB", 8),
    ("FR", 7),
    ("IN", 7),
    ("BR", 5),
    ("CA", 4),
    ("JP", 4),
    ("ES", 3),
    ("IT", 3),
    ("NL", 3),
    ("PL", 2),
    ("SE", 2),
    ("AU", 2),
    ("MX", 2),
    ("CH", 1),
    ("AT", 1),
    ("BE", 1),
    ("DK", 1),
    ("NO", 1),
    ("IE", 1),
    ("PT", 1),
    ("KR", 1),
)
PLANS: tuple[tuple[str, int], ...] = (("free", 60), ("pro", 25), ("team", 10), ("enterprise", 5))
EMAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com", "outlook.com", "acme.io", "mail.de")
FIRST_NAMES: tuple[str, ...] = ("ana", "ben", "chen", "dara", "eli", "fatima", "goran", "hana")
LAST_NAMES: tuple[str, ...] = ("ito", "jones", "kumar", "lopez", "meyer", "novak", "okafor")

# Shares of the population, chosen to resemble a consumer product with some anonymous traffic.
EXAMPLE_COM_SHARE = 0.15
NO_EMAIL_SHARE = 0.08
NO_AGE_SHARE = 0.10
NO_APP_VERSION_SHARE = 0.10
PRERELEASE_SHARE = 0.05
BETA_SHARE = 0.20


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _app_version(rng: random.Random) -> str:
    version = f"{rng.randint(1, 4)}.{rng.randint(0, 12)}.{rng.randint(0, 20)}"
    if rng.random() < PRERELEASE_SHARE:
        version += f"-{rng.choice(('alpha', 'beta', 'rc'))}.{rng.randint(1, 12)}"
    return version


def make_contexts(count: int, seed: int = 20240601) -> list[Context]:
    """Return ``count`` distinct contexts, the same ones for the same ``count`` and ``seed``.

    Every context has ``targetingKey`` ``user-<n>``, ``country``, ``plan`` and ``beta``; ``email``,
    ``age`` and ``app_version`` are absent for a share of them, as they are for anonymous users and
    web clients, so that the missing-attribute paths are exercised too.
    """
    rng = random.Random(seed)
    contexts: list[Context] = []
    for n in range(count):
        ctx: Context = {
            "targetingKey": f"user-{n}",
            "country": _weighted(rng, COUNTRIES),
            "plan": _weighted(rng, PLANS),
            "beta": rng.random() < BETA_SHARE,
        }
        roll = rng.random()
        if roll >= NO_EMAIL_SHARE:
            domain = (
                "example.com"
                if roll < NO_EMAIL_SHARE + EXAMPLE_COM_SHARE
                else rng.choice(EMAIL_DOMAINS)
            )
            name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}{n}"
            ctx["email"] = f"{name}@{domain}"
        if rng.random() >= NO_AGE_SHARE:
            ctx["age"] = rng.randint(13, 80)
        if rng.random() >= NO_APP_VERSION_SHARE:
            ctx["app_version"] = _app_version(rng)
        contexts.append(ctx)
    return contexts
