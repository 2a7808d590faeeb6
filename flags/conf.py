"""Every FlagShip setting the code reads (``FLAGSHIP_*`` and ``REDIS_URL``), with its default.

``flagship/settings.py`` turns environment variables into settings; this module is the one place
code reads them back. Each function reads ``django.conf.settings`` when called, never at import,
so ``override_settings`` (and pytest-django's ``settings`` fixture) take effect at once, as with
DRF's ``api_settings`` and waffle's ``get_setting``. A setting that is missing, or ``None``, has
the default written here. This module imports nothing of FlagShip's, so ``flagship/`` may use it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

# Every setting's default: for a setting the settings module lacks or leaves ``None``.
DEFAULTS: dict[str, Any] = {
    "REDIS_URL": "",  # "": the embedded default (in-process cache, nothing to subscribe to)
    "FLAGSHIP_CACHE_ALIAS": "default",
    "FLAGSHIP_RULESET_CACHE_SECONDS": 86_400,
    "FLAGSHIP_VERSION_CACHE_SECONDS": 30,
    "FLAGSHIP_KEY_CACHE_SECONDS": 30,
    "FLAGSHIP_KEY_LOCAL_CACHE_SECONDS": 5.0,
    "FLAGSHIP_CHANNEL_PREFIX": "flagship",
    "FLAGSHIP_STREAM_HEARTBEAT": 15.0,
    "FLAGSHIP_STREAM_MAX_AGE": 3600.0,
    "FLAGSHIP_STREAM_URL": "",  # "": the stream is not advertised
    "FLAGSHIP_MAX_JSON_DEPTH": 64,
    "FLAGSHIP_READYZ_TIMEOUT": 0.8,
    "FLAGSHIP": {"ADMIN_FLAGS_PER_PAGE": 50},
    "FLAGSHIP_DEFAULT_RATES_ON": True,
    "FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS": [],  # []: a key derived from SECRET_KEY
    "FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS": [],
    "FLAGSHIP_WEBHOOK_TIMEOUT": 10.0,
    "FLAGSHIP_WEBHOOK_MAX_ATTEMPTS": 12,
    "FLAGSHIP_WEBHOOK_BACKOFF_SECONDS": 5.0,
    "FLAGSHIP_WEBHOOK_MAX_BACKOFF_SECONDS": 3600.0,
    "FLAGSHIP_WORKER_CONCURRENCY": 8,
    "FLAGSHIP_WORKER_POLL_SECONDS": 1.0,
    "FLAGSHIP_EVENT_RETENTION_DAYS": 90,
    "FLAGSHIP_COUNT_EVALUATIONS": True,
    "FLAGSHIP_COUNT_FLUSH_SECONDS": 5.0,
    "FLAGSHIP_COUNT_MAX_PENDING": 100_000,
    # Days after which a flag of each lifecycle is stale; None: never (docs/operations.md).
    "FLAGSHIP_STALE_DAYS": {
        "release": 30,
        "experiment": 30,
        "operational": None,
        "permanent": None,
    },
    "FLAGSHIP_LEAN_PATH": True,  # flagship/lean.py
    # --- GraphQL (docs/graphql.md, "Limits") ---
    "FLAGSHIP_GRAPHQL_MAX_DEPTH": 8,
    "FLAGSHIP_GRAPHQL_MAX_ALIASES": 20,
    "FLAGSHIP_GRAPHQL_MAX_COST": 30_000,
    "FLAGSHIP_GRAPHQL_MAX_TOKENS": 2_000,
    "FLAGSHIP_GRAPHIQL": False,  # GraphiQL at /graphql for browsers (development only)
    # --- Prometheus metrics (docs/operations.md, "Metrics") ---
    "FLAGSHIP_METRICS_ENABLED": True,
    "FLAGSHIP_METRICS_TOKEN": "",  # "": no bearer token is accepted
    "FLAGSHIP_METRICS_ALLOW": [],  # CIDRs whose clients may scrape without the token
    "FLAGSHIP_METRICS_FLAG_LABEL": True,  # False: evaluations counted without the flag label
    "FLAGSHIP_METRICS_FLUSH_SECONDS": 1.0,
    "FLAGSHIP_WORKER_METRICS_PORT": 0,  # 0: the worker serves no metrics
    "FLAGSHIP_WORKER_METRICS_ADDRESS": "127.0.0.1",
}


def _setting(name: str) -> Any:
    value = getattr(settings, name, None)
    return DEFAULTS[name] if value is None else value


# --- Redis and the shared cache ---------------------------------------------------------------
def redis_url() -> str:
    """The Redis of the shared cache and of pub/sub (``REDIS_URL``; ``""``: none)."""
    return str(_setting("REDIS_URL"))


def cache_alias() -> str:
    """The cache alias of the shared stores (``FLAGSHIP_CACHE_ALIAS``)."""
    return str(_setting("FLAGSHIP_CACHE_ALIAS"))


def ruleset_cache_seconds() -> int:
    """Seconds a ruleset document stays in the shared cache; 0: not cached.

    ``FLAGSHIP_RULESET_CACHE_SECONDS``.
    """
    return int(_setting("FLAGSHIP_RULESET_CACHE_SECONDS"))


def version_cache_seconds() -> int:
    """Seconds a cached current version is trusted; 0: always read from the database.

    ``FLAGSHIP_VERSION_CACHE_SECONDS``; at 0 no version pushed through pub/sub is trusted either.
    """
    return int(_setting("FLAGSHIP_VERSION_CACHE_SECONDS"))


def key_cache_seconds() -> int:
    """Seconds API key essentials stay in the shared cache (the bound on revocation delay).

    ``FLAGSHIP_KEY_CACHE_SECONDS``; 0: not cached, in the shared cache nor in processes.
    """
    return int(_setting("FLAGSHIP_KEY_CACHE_SECONDS"))


def key_local_cache_seconds() -> float:
    """Seconds a process keeps key essentials (``FLAGSHIP_KEY_LOCAL_CACHE_SECONDS``)."""
    return float(_setting("FLAGSHIP_KEY_LOCAL_CACHE_SECONDS"))


def channel_prefix() -> str:
    """Prefix of the pub/sub channels (``FLAGSHIP_CHANNEL_PREFIX``)."""
    return str(_setting("FLAGSHIP_CHANNEL_PREFIX"))


# --- The change stream ------------------------------------------------------------------------
def stream_heartbeat_seconds() -> float:
    """Seconds between heartbeats of an idle stream (``FLAGSHIP_STREAM_HEARTBEAT``)."""
    return float(_setting("FLAGSHIP_STREAM_HEARTBEAT"))


def stream_max_age_seconds() -> float:
    """Seconds after which a stream is closed (``FLAGSHIP_STREAM_MAX_AGE``)."""
    return float(_setting("FLAGSHIP_STREAM_MAX_AGE"))


def stream_url() -> str:
    """Where clients reach the stream: a URL, a path on the request's host, or ``""`` (none).

    ``FLAGSHIP_STREAM_URL``.
    """
    return str(_setting("FLAGSHIP_STREAM_URL")).strip()


# --- Requests, probes and the admin -----------------------------------------------------------
def max_json_depth() -> int:
    """How deep JSON from clients may nest, at least 1 (``FLAGSHIP_MAX_JSON_DEPTH``)."""
    return max(1, int(_setting("FLAGSHIP_MAX_JSON_DEPTH")))


def readyz_timeout() -> float:
    """Seconds ``/readyz`` waits for its checks (``FLAGSHIP_READYZ_TIMEOUT``)."""
    return float(_setting("FLAGSHIP_READYZ_TIMEOUT"))


def admin_flags_per_page() -> int:
    """Flags per page of the admin's flag list (``FLAGSHIP["ADMIN_FLAGS_PER_PAGE"]``)."""
    name = "ADMIN_FLAGS_PER_PAGE"
    value = _setting("FLAGSHIP").get(name)
    return int(DEFAULTS["FLAGSHIP"][name] if value is None else value)


# --- Webhooks and the worker (docs/webhooks.md) ---------------------------------------------
def webhook_encryption_keys() -> list[str]:
    """Fernet keys of webhook secrets; the first encrypts (``FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS``)."""
    return [str(key) for key in _setting("FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS") if key]


def webhook_allowed_networks() -> list[str]:
    """Private networks deliveries may reach anyway (``FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS``)."""
    return [str(network).strip() for network in _setting("FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS")]


def webhook_timeout() -> float:
    """Seconds one delivery attempt may take (``FLAGSHIP_WEBHOOK_TIMEOUT``)."""
    return float(_setting("FLAGSHIP_WEBHOOK_TIMEOUT"))


def webhook_max_attempts() -> int:
    """Attempts before a delivery is dead (``FLAGSHIP_WEBHOOK_MAX_ATTEMPTS``)."""
    return int(_setting("FLAGSHIP_WEBHOOK_MAX_ATTEMPTS"))


def webhook_backoff_seconds() -> float:
    """The first retry's step (``FLAGSHIP_WEBHOOK_BACKOFF_SECONDS``)."""
    return float(_setting("FLAGSHIP_WEBHOOK_BACKOFF_SECONDS"))


def webhook_max_backoff_seconds() -> float:
    """The longest wait before a retry (``FLAGSHIP_WEBHOOK_MAX_BACKOFF_SECONDS``)."""
    return float(_setting("FLAGSHIP_WEBHOOK_MAX_BACKOFF_SECONDS"))


def worker_concurrency() -> int:
    """Senders per worker process (``FLAGSHIP_WORKER_CONCURRENCY``)."""
    return int(_setting("FLAGSHIP_WORKER_CONCURRENCY"))


def worker_poll_seconds() -> float:
    """Seconds an idle worker sleeps at most (``FLAGSHIP_WORKER_POLL_SECONDS``)."""
    return float(_setting("FLAGSHIP_WORKER_POLL_SECONDS"))


def event_retention_days() -> int:
    """Days change events and finished deliveries are kept (``FLAGSHIP_EVENT_RETENTION_DAYS``)."""
    return int(_setting("FLAGSHIP_EVENT_RETENTION_DAYS"))


# --- Evaluation counts and stale flags (docs/operations.md) -----------------------------------
def count_evaluations() -> bool:
    """Whether server-side evaluations are counted (``FLAGSHIP_COUNT_EVALUATIONS``)."""
    return bool(_setting("FLAGSHIP_COUNT_EVALUATIONS"))


def count_flush_seconds() -> float:
    """Seconds between a process's flushes of its counts; 0: only when asked (tests) and at exit.

    ``FLAGSHIP_COUNT_FLUSH_SECONDS``.
    """
    return float(_setting("FLAGSHIP_COUNT_FLUSH_SECONDS"))


def count_max_pending() -> int:
    """Distinct counts a process keeps while it cannot flush, at least 1.

    ``FLAGSHIP_COUNT_MAX_PENDING``: past it the oldest hours are dropped (logged).
    """
    return max(1, int(_setting("FLAGSHIP_COUNT_MAX_PENDING")))


def stale_days() -> dict[str, int | None]:
    """Days after which a flag of each lifecycle is stale; ``None``: never.

    ``FLAGSHIP_STALE_DAYS``.

    A lifecycle the setting leaves out has its default.
    """
    configured = _setting("FLAGSHIP_STALE_DAYS")
    days: dict[str, int | None] = dict(DEFAULTS["FLAGSHIP_STALE_DAYS"])
    for lifecycle, value in dict(configured).items():
        days[str(lifecycle)] = None if value is None else int(value)
    return days


# --- Rate limits ------------------------------------------------------------------------------
# A rate is "<count>/<period>": N/s, N/m, N/h, N/d or N/<k><unit> such as 100/5m; an empty rate
# turns its limit off. flagship/settings.py leaves each rate None when its variable is unset; it
# then has its default below, unless FLAGSHIP_DEFAULT_RATES_ON is false (the test suite), where an
# unset limit is off. Why each default is what it is: docs/operations.md, "Rate limits".
AUTH_RATE = "FLAGSHIP_AUTH_RATE"
ADMIN_LOGIN_RATE = "FLAGSHIP_ADMIN_LOGIN_RATE"
MANAGEMENT_RATE = "FLAGSHIP_MANAGEMENT_RATE"
SERVER_KEY_RATE = "FLAGSHIP_SERVER_KEY_RATE"
CLIENT_KEY_RATE = "FLAGSHIP_CLIENT_KEY_RATE"
CLIENT_ADDRESS_RATE = "FLAGSHIP_CLIENT_ADDRESS_RATE"
STREAM_KEY_RATE = "FLAGSHIP_STREAM_KEY_RATE"
STREAM_ADDRESS_RATE = "FLAGSHIP_STREAM_ADDRESS_RATE"
# Deprecated (issue 11): the one per-key evaluation rate of every key, before server and client
# keys had their own. When set it stands for both key rates, unless those are set themselves.
EVALUATION_RATE = "FLAGSHIP_EVALUATION_RATE"

RATE_DEFAULTS: dict[str, str] = {
    AUTH_RATE: "10/m",  # per client address, the JWT endpoints
    ADMIN_LOGIN_RATE: "10/m",  # per client address, POST /admin/login/
    MANAGEMENT_RATE: "600/m",  # per signed-in user
    # Evaluation per server key: 20 000 requests/s over a minute, about 5 times the most one
    # FlagShip instance served in bench/server (4 285 requests/s, 2 cores): never below what
    # one instance can serve, so a customer's backend is not throttled by its own traffic.
    SERVER_KEY_RATE: "1200000/m",
    # Evaluation per client key, all addresses together: as for server keys.
    CLIENT_KEY_RATE: "1200000/m",
    # Evaluation per client key and client address: 20 requests/s over a minute. A browser or
    # app asks a few times a minute; a public key must not be exhausted by one address.
    CLIENT_ADDRESS_RATE: "1200/m",
    # New stream connections per key (any kind): about 4 times the 240 connections/s one stream
    # process accepted in bench/server (1 000 streams in 4.2 s).
    STREAM_KEY_RATE: "60000/m",
    # New stream connections per client key and client address: two a second.
    STREAM_ADDRESS_RATE: "120/m",
}
RATE_ALIASES: dict[str, str] = {SERVER_KEY_RATE: EVALUATION_RATE, CLIENT_KEY_RATE: EVALUATION_RATE}


def rate(name: str) -> str:
    """The rate of the limit ``name`` (a key of ``RATE_DEFAULTS``); ``""`` when it is off."""
    value = getattr(settings, name, None)
    if value is None and name in RATE_ALIASES:
        value = getattr(settings, RATE_ALIASES[name], None)
    if value is None:
        value = RATE_DEFAULTS[name] if _setting("FLAGSHIP_DEFAULT_RATES_ON") else ""
    return str(value)


# --- GraphQL ------------------------------------------------------------------------------------
def graphql_max_depth() -> int:
    """How many levels of fields a GraphQL operation may nest (``FLAGSHIP_GRAPHQL_MAX_DEPTH``)."""
    return max(1, int(_setting("FLAGSHIP_GRAPHQL_MAX_DEPTH")))


def graphql_max_aliases() -> int:
    """How many aliases an operation may use, fragments counted where spread."""
    return max(0, int(_setting("FLAGSHIP_GRAPHQL_MAX_ALIASES")))


def graphql_max_cost() -> int:
    """How many fields an operation may resolve at most, lists counted at their width."""
    return max(1, int(_setting("FLAGSHIP_GRAPHQL_MAX_COST")))


def graphql_max_tokens() -> int:
    """How many tokens a GraphQL document may have (checked before parsing)."""
    return max(1, int(_setting("FLAGSHIP_GRAPHQL_MAX_TOKENS")))


def graphiql() -> bool:
    """Whether browsers get GraphiQL at ``/graphql`` (``FLAGSHIP_GRAPHIQL``; development only)."""
    return bool(_setting("FLAGSHIP_GRAPHIQL"))


def lean_path() -> bool:
    """Whether evaluation requests take the lean path (``FLAGSHIP_LEAN_PATH``, flagship/lean.py)."""
    return bool(_setting("FLAGSHIP_LEAN_PATH"))


# --- Prometheus metrics (docs/operations.md, "Metrics") ----------------------------------------
def metrics_enabled() -> bool:
    """Whether FlagShip records and exposes Prometheus metrics (``FLAGSHIP_METRICS_ENABLED``)."""
    return bool(_setting("FLAGSHIP_METRICS_ENABLED"))


def metrics_token() -> str:
    """The bearer token that may read ``/metrics`` (``FLAGSHIP_METRICS_TOKEN``; ``""``: none)."""
    return str(_setting("FLAGSHIP_METRICS_TOKEN"))


def metrics_allow() -> list[str]:
    """The networks (CIDRs) whose clients may read ``/metrics`` without the token."""
    return [str(network) for network in _setting("FLAGSHIP_METRICS_ALLOW")]


def metrics_flag_label() -> bool:
    """Whether evaluations are counted per flag (``FLAGSHIP_METRICS_FLAG_LABEL``)."""
    return bool(_setting("FLAGSHIP_METRICS_FLAG_LABEL"))


def metrics_flush_seconds() -> float:
    """How often a process moves its buffered values (evaluations, requests) into its metrics."""
    return float(_setting("FLAGSHIP_METRICS_FLUSH_SECONDS"))


def worker_metrics_port() -> int:
    """The port ``run_worker`` serves its metrics on (``FLAGSHIP_WORKER_METRICS_PORT``; 0: off)."""
    return int(_setting("FLAGSHIP_WORKER_METRICS_PORT"))


def worker_metrics_address() -> str:
    """The address ``run_worker`` serves its metrics on (loopback by default)."""
    return str(_setting("FLAGSHIP_WORKER_METRICS_ADDRESS"))
