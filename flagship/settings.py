"""FlagShip settings: one module, every value from the environment (django-environ).

With nothing configured FlagShip runs on SQLite and an in-process cache (the embedded default).
``DATABASE_URL`` and ``REDIS_URL`` switch it to PostgreSQL (psycopg 3, pooled) and Redis.
``DJANGO_ENV=production`` turns on the production checks: no default secret, secure cookies, HSTS,
and a refusal to start without ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``. Every variable
is listed in ``.env.example``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets generic Django classes be subscripted at runtime (ModelAdmin[Flag], ModelForm[Rule]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Variables already in the environment win over the file's (overwrite=False).
ENV_FILE = Path(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)

ENVIRONMENT = env.str("DJANGO_ENV", default="development")
if ENVIRONMENT not in ("development", "test", "production"):
    raise ImproperlyConfigured("DJANGO_ENV must be development, test or production")
PRODUCTION = ENVIRONMENT == "production"

# --- Security --------------------------------------------------------------------------------
if PRODUCTION:
    # No production default for a secret: refuse to start instead of running with a known key.
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 random characters")
else:
    SECRET_KEY = env.str(
        "DJANGO_SECRET_KEY", default="insecure-development-key-do-not-use-in-production"
    )
    ALLOWED_HOSTS = env.list(
        "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"]
    )

DEBUG = env.bool("DJANGO_DEBUG", default=ENVIRONMENT == "development")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production")

CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=PRODUCTION)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=PRODUCTION)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
    else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Applications ----------------------------------------------------------------------------
INSTALLED_APPS = [
    # django.contrib.admin, with FlagShip's site (the audit log, recent changes by everyone).
    "flagship.apps.FlagShipAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_filters",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "accounts",
    "flags",
]

MIDDLEWARE = [
    # First: every response and log line carries the request id.
    "flagship.middleware.RequestIdMiddleware",
    # Second: times everything inside it (Server-Timing) and logs one request.finished line.
    "flagship.access.AccessLogMiddleware",
    # "FlagShip-Degraded: database,redis" on responses served while a dependency is down.
    "flagship.breakers.DegradedHeaderMiddleware",
    # Problem details for any error under /api/, and the API-Version header.
    "flagship.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and scripts) straight from the process: no separate file
    # server in the image (docs/deployment.md). Before everything that reads sessions or the body.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # 413 for oversized declared bodies on /api/ and /ofrep/, before a view reads them.
    "flagship.middleware.BodySizeLimitMiddleware",
    "flagship.middleware.AdminLoginRateLimitMiddleware",
    # Database down: the admin (every non-API page) answers a 503 page, not a 500. Before
    # SessionMiddleware, so it also covers the session, CSRF, auth and message layers.
    "flagship.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records the acting user on every history row written during a request.
    "simple_history.middleware.HistoryRequestMiddleware",
]
# History rows keep the reason a person gave for a change (flags.history.recording) in full.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

ROOT_URLCONF = "flagship.urls"
WSGI_APPLICATION = "flagship.wsgi.application"
ASGI_APPLICATION = "flagship.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "admin:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- Database --------------------------------------------------------------------------------
def _database() -> dict[str, Any]:
    url = env.str("DATABASE_URL", default="")
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    config: dict[str, Any] = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend behind the database circuit breaker (flagship/db/postgresql/base.py).
        config["ENGINE"] = "flagship.db.postgresql"
        config["OPTIONS"] = {
            # psycopg 3's pool: connections are reused across requests within a process.
            "pool": {
                "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
                "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
                "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
            },
            "connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=5),
            "application_name": "flagship",
        }
        config["CONN_HEALTH_CHECKS"] = True
        config["CONN_MAX_AGE"] = 0  # the pool owns connection lifetime
    config["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default=None)}
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache -----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="flagship"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "flagship",
        }
    }

# --- FlagShip's own settings ------------------------------------------------------------------
# Each FLAGSHIP_* setting is read from its environment variable here. Unset, it stays None and
# flags.conf supplies its default (flags.conf.DEFAULTS, the one place defaults live), read at
# call time; only where the test suite needs another default is one given here.

# --- Change stream (docs/streaming.md) -------------------------------------------------------
# Seconds between SSE heartbeat comments on idle streams.
FLAGSHIP_STREAM_HEARTBEAT = env.float("FLAGSHIP_STREAM_HEARTBEAT", default=None)
# Seconds after which a stream is closed so the client reconnects and its key is checked again.
FLAGSHIP_STREAM_MAX_AGE = env.float("FLAGSHIP_STREAM_MAX_AGE", default=None)
# Where the ASGI stream server answers, advertised in OFREP bulk responses; empty: not advertised.
FLAGSHIP_STREAM_URL = env.str("FLAGSHIP_STREAM_URL", default=None)
# Prefix of the Redis pub/sub channels (<prefix>:ruleset-changed, <prefix>:api-key-changed):
# deployments sharing one Redis keep their notices apart with different prefixes.
FLAGSHIP_CHANNEL_PREFIX = env.str("FLAGSHIP_CHANNEL_PREFIX", default=None)
# Seconds a process trusts an environment key's essentials without asking Redis (revocations
# through FlagShip reach every process at once through pub/sub; this bounds the rest).
FLAGSHIP_KEY_LOCAL_CACHE_SECONDS = env.float("FLAGSHIP_KEY_LOCAL_CACHE_SECONDS", default=None)

# --- Webhooks and the worker (docs/webhooks.md; defaults in flags.conf.DEFAULTS) -------------
# Fernet keys (comma-separated; the first encrypts, all decrypt: rotate by putting a new key first)
# that encrypt webhook signing secrets in the database. Empty: one derived from SECRET_KEY, which
# `check --deploy` warns about (a dump plus the SECRET_KEY would then reveal the secrets).
FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS = env.list("FLAGSHIP_WEBHOOK_ENCRYPTION_KEYS", default=None)
# Networks deliveries may reach although private, loopback or link-local (CIDRs, comma-separated).
FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS = env.list(
    "FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS",
    default=["127.0.0.0/8", "::1/128"] if ENVIRONMENT == "test" else None,
)
# Seconds a delivery may take (connecting, sending and reading the answer).
FLAGSHIP_WEBHOOK_TIMEOUT = env.float("FLAGSHIP_WEBHOOK_TIMEOUT", default=None)
# Attempts before a delivery is dead, and the backoff: base * 2^(attempt-1), half of it jitter,
# capped at the maximum (a receiver's Retry-After is honoured up to the maximum too).
FLAGSHIP_WEBHOOK_MAX_ATTEMPTS = env.int("FLAGSHIP_WEBHOOK_MAX_ATTEMPTS", default=None)
FLAGSHIP_WEBHOOK_BACKOFF_SECONDS = env.float("FLAGSHIP_WEBHOOK_BACKOFF_SECONDS", default=None)
FLAGSHIP_WEBHOOK_MAX_BACKOFF_SECONDS = env.float(
    "FLAGSHIP_WEBHOOK_MAX_BACKOFF_SECONDS", default=None
)
# Deliveries one worker process sends at once (each webhook has at most one in flight).
FLAGSHIP_WORKER_CONCURRENCY = env.int("FLAGSHIP_WORKER_CONCURRENCY", default=None)
# Seconds the worker sleeps when idle; on PostgreSQL a commit wakes it at once (LISTEN/NOTIFY).
FLAGSHIP_WORKER_POLL_SECONDS = env.float("FLAGSHIP_WORKER_POLL_SECONDS", default=None)
# Days change events and finished deliveries are kept (the worker deletes older ones hourly).
FLAGSHIP_EVENT_RETENTION_DAYS = env.int("FLAGSHIP_EVENT_RETENTION_DAYS", default=None)

# --- Evaluation counts and stale flags (docs/operations.md; defaults in flags.conf.DEFAULTS) --
# Count server-side evaluations (REST and OFREP) per flag, environment, variant and hour.
FLAGSHIP_COUNT_EVALUATIONS = env.bool("FLAGSHIP_COUNT_EVALUATIONS", default=None)
# Seconds between a process's flushes of its in-memory counts (to Redis, or to the database
# without Redis). The test suite flushes only when a test asks (0), so no flush lands inside
# another test's query count.
FLAGSHIP_COUNT_FLUSH_SECONDS = env.float(
    "FLAGSHIP_COUNT_FLUSH_SECONDS", default=None if ENVIRONMENT != "test" else 0.0
)
# Distinct counts a process keeps while Redis (or the database) is down; then oldest dropped.
FLAGSHIP_COUNT_MAX_PENDING = env.int("FLAGSHIP_COUNT_MAX_PENDING", default=None)


def _stale_days(raw: str | None) -> dict[str, int | None] | None:
    """``release=30,experiment=30,operational=,permanent=``: an empty value is never stale."""
    if raw is None or not raw.strip():
        return None
    days: dict[str, int | None] = {}
    for item in raw.split(","):
        lifecycle, _, value = item.partition("=")
        value = value.strip()
        days[lifecycle.strip()] = int(value) if value and value.lower() != "none" else None
    return days


# Days after which a flag of each lifecycle is stale (unset lifecycles keep their default).
FLAGSHIP_STALE_DAYS = _stale_days(env.str("FLAGSHIP_STALE_DAYS", default=None))

# --- The lean path (flagship/lean.py) -------------------------------------------------------------
# Evaluation, OFREP and ruleset requests answered before the full middleware stack; false: every
# request through the full stack (for comparison: bench/server).
FLAGSHIP_LEAN_PATH = env.bool("FLAGSHIP_LEAN_PATH", default=None)
# GraphQL at /graphql (docs/graphql.md): limits on each operation, and GraphiQL for browsers,
# which production refuses (its page loads scripts from a CDN; the schema is in docs/ anyway).
FLAGSHIP_GRAPHQL_MAX_DEPTH = env.int("FLAGSHIP_GRAPHQL_MAX_DEPTH", default=None)
FLAGSHIP_GRAPHQL_MAX_ALIASES = env.int("FLAGSHIP_GRAPHQL_MAX_ALIASES", default=None)
FLAGSHIP_GRAPHQL_MAX_COST = env.int("FLAGSHIP_GRAPHQL_MAX_COST", default=None)
FLAGSHIP_GRAPHQL_MAX_TOKENS = env.int("FLAGSHIP_GRAPHQL_MAX_TOKENS", default=None)
FLAGSHIP_GRAPHIQL = env.bool("FLAGSHIP_GRAPHIQL", default=ENVIRONMENT == "development")
if PRODUCTION and FLAGSHIP_GRAPHIQL:
    raise ImproperlyConfigured("FLAGSHIP_GRAPHIQL is for development; production serves no IDE")

# --- Prometheus metrics at /metrics (docs/operations.md, "Metrics") ---------------------------
# Off: no metrics middleware, plain cache and database backends, /metrics is 404.
FLAGSHIP_METRICS_ENABLED = env.bool("FLAGSHIP_METRICS_ENABLED", default=True)
# Who may scrape: a bearer token and/or client networks. Neither set: /metrics is 404.
FLAGSHIP_METRICS_TOKEN = env.str("FLAGSHIP_METRICS_TOKEN", default=None)
FLAGSHIP_METRICS_ALLOW = env.list("FLAGSHIP_METRICS_ALLOW", default=None)
# False drops the flag label of flagship_evaluations_total (cardinality: flags x variants).
FLAGSHIP_METRICS_FLAG_LABEL = env.bool("FLAGSHIP_METRICS_FLAG_LABEL", default=None)
FLAGSHIP_METRICS_FLUSH_SECONDS = env.float("FLAGSHIP_METRICS_FLUSH_SECONDS", default=None)
# The worker (manage.py run_worker: webhooks, schedules) serves its own metrics here; 0: not.
FLAGSHIP_WORKER_METRICS_PORT = env.int("FLAGSHIP_WORKER_METRICS_PORT", default=None)
FLAGSHIP_WORKER_METRICS_ADDRESS = env.str("FLAGSHIP_WORKER_METRICS_ADDRESS", default=None)
if FLAGSHIP_METRICS_ENABLED:
    # Outermost: times and counts every response, the 429s and problem details included.
    MIDDLEWARE.insert(0, "flagship.metrics_http.MetricsMiddleware")
    for _cache in CACHES.values():
        if _cache["BACKEND"] == "django_redis.cache.RedisCache":
            _cache["BACKEND"] = "flagship.metrics_cache.RedisCache"  # get hits and misses

# --- Cache and degradation --------------------------------------------------------------------
# How long cached API key essentials are trusted: the bound on how late a revocation can take
# effect in another process (docs/operations.md). The current ruleset version of an environment
# is set on commit of every change; its TTL only bounds a lost update (Redis down during a write,
# or several processes each with their own in-process cache). Ruleset documents are keyed by
# version, so their TTL only reclaims memory. 0 turns a cache off. The test suite turns all three
# off (commit hooks never run inside a test's transaction); the cache tests turn them on.
_SHARED_CACHES_ON = ENVIRONMENT != "test"
FLAGSHIP_KEY_CACHE_SECONDS = env.int(
    "FLAGSHIP_KEY_CACHE_SECONDS", default=None if _SHARED_CACHES_ON else 0
)
FLAGSHIP_VERSION_CACHE_SECONDS = env.int(
    "FLAGSHIP_VERSION_CACHE_SECONDS", default=None if _SHARED_CACHES_ON else 0
)
FLAGSHIP_RULESET_CACHE_SECONDS = env.int(
    "FLAGSHIP_RULESET_CACHE_SECONDS", default=None if _SHARED_CACHES_ON else 0
)
# PostgreSQL and Redis sit behind circuit breakers (flagship/breakers.py): the first failure opens
# one, a background probe closes it; nothing waits on a dependency that is down meanwhile.
# Seconds /readyz waits for its checks (each runs in its own thread): inside a 1 s probe timeout.
FLAGSHIP_READYZ_TIMEOUT = env.float("FLAGSHIP_READYZ_TIMEOUT", default=None)
# The stores (flags.delivery.shared_cache) use their own alias, which raises errors so they can back
# off; the default alias (rate limits) swallows Redis errors instead of failing requests.
FLAGSHIP_CACHE_ALIAS = "flagship"
CACHES["flagship"] = {**CACHES["default"], "OPTIONS": dict(CACHES["default"].get("OPTIONS", {}))}
if REDIS_URL:
    CACHES["default"]["OPTIONS"]["IGNORE_EXCEPTIONS"] = True
    CACHES["flagship"]["OPTIONS"]["IGNORE_EXCEPTIONS"] = False
else:
    # Another LocMemCache LOCATION is another store: share the default's.
    CACHES["flagship"]["LOCATION"] = CACHES["default"]["LOCATION"]
# Health probes are plain http from the orchestrator: never redirect them to https.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes, scrapes: plain HTTP

# --- Passwords, i18n, static files -----------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if ENVIRONMENT == "test":
    # Hash strength is not under test, and PBKDF2 costs about 0.3 s for every user a test creates.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "var" / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves what `collectstatic` wrote (the image runs it at build time): hashed names
    # cached for ever, with gzip copies. Elsewhere nothing needs collecting.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Outside production whitenoise finds files in the apps, as runserver does, and looks them up per
# request (no collected directory to scan at start-up, so no warning that it is missing).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

# --- Logging ---------------------------------------------------------------------------------
# Every logger (FlagShip's, Django's, libraries') goes through structlog's renderer
# (flagship/logs.py): one JSON object per line in production, readable lines elsewhere; each line
# carries the request id, and secrets are redacted (docs/operations.md, "Logs").
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="json" if PRODUCTION else "console")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured("DJANGO_LOG_FORMAT must be json or console")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "flagship.logs.RequestIdFilter"}},
    "formatters": {"structured": {"()": "flagship.logs.formatter", "fmt": LOG_FORMAT}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # SQL with its parameters: DEBUG only when asked for (and only logged when DEBUG is on).
    "loggers": {
        "django.db.backends": {"level": env.str("DJANGO_DB_LOG_LEVEL", default="WARNING")},
        # The access log (request.finished): WARNING keeps only the 5xx lines.
        "flagship.access": {"level": env.str("DJANGO_ACCESS_LOG_LEVEL", default="INFO")},
    },
}

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser with a nesting limit (flagship.jsonbody): too deep is 400, not 500.
    "DEFAULT_PARSER_CLASSES": ["flagship.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "flagship.errors.exception_handler",
    # Per-user limit on management calls (FLAGSHIP_MANAGEMENT_RATE); evaluation is exempt.
    "DEFAULT_THROTTLE_CLASSES": ["flagship.ratelimits.ManagementRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FlagShip API",
    "DESCRIPTION": "Feature flags: management API (JWT or admin tokens), evaluation with "
    "environment keys, and the OpenFeature Remote Evaluation Protocol.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several serializers have a "kind" or "reason" choice field: name each enum once.
    "ENUM_NAME_OVERRIDES": {
        "ApiKeyKindEnum": "accounts.models.ApiKey.Kind",
        "FlagKindEnum": "flags.models.Flag.Kind",
        "ChangeRequestKindEnum": "flags.models.ChangeRequest.Kind",
        "ChangeRequestStatusEnum": "flags.models.ChangeRequest.Status",
        "EvaluationReasonEnum": [
            "STATIC",
            "DEFAULT",
            "TARGETING_MATCH",
            "SPLIT",
            "DISABLED",
            "PREREQUISITE_FAILED",
        ],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # The change stream, a plain async view drf-spectacular cannot see.
        "flagship.schema.add_stream_operation",
        # Problem-details responses on every /api/ operation.
        "flagship.schema.add_problem_responses",
    ],
}
# CORS only for what browsers call with client keys: evaluation and OFREP.
CORS_URLS_REGEX = r"^/(api/v1/evaluate|ofrep/v1/|api/v1/stream|api/v1/sdk/evaluations)"
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_ALL_ORIGINS = env.bool("CORS_ALLOW_ALL_ORIGINS", default=False)
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "if-none-match", "x-api-key"]
CORS_EXPOSE_HEADERS = ["ETag", "Retry-After", "X-Request-ID", "FlagShip-Degraded"]
# Request bodies larger than this are refused with 413 (JSON APIs need little).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("API_MAX_BODY_BYTES", default=1_048_576)
# How deep JSON objects and arrays may nest in a request body (the API, OFREP, the admin's JSON
# fields); deeper is 400 json_too_deep (OFREP: PARSE_ERROR). flagship.jsonbody reads it.
FLAGSHIP_MAX_JSON_DEPTH = env.int("FLAGSHIP_MAX_JSON_DEPTH", default=None)
# Rate limits ("<count>/<period>", period s, m, h or d; empty turns a limit off). Each is read from
# its environment variable here; unset, it stays None and flags.conf supplies its default
# (flags.conf.RATE_DEFAULTS), per request. Exceeded: 429 with
# Retry-After. Every default is off in the test suite, whose many logins from one address would
# trip them; their tests set them. Sizing: docs/operations.md, "Rate limits".
_RATES_ON = ENVIRONMENT != "test"


def _rate(name: str) -> str | None:
    """A rate's variable as set: unset, None (the default applies); set empty, "" (off).

    django-environ reads an empty variable as unset (its default), which would keep a limit
    someone turned off on; the .env file, when there is one, is in os.environ already.
    """
    return os.environ.get(name)


FLAGSHIP_DEFAULT_RATES_ON = _RATES_ON
FLAGSHIP_AUTH_RATE = _rate("FLAGSHIP_AUTH_RATE")  # per client address
FLAGSHIP_ADMIN_LOGIN_RATE = _rate("FLAGSHIP_ADMIN_LOGIN_RATE")  # per address
FLAGSHIP_MANAGEMENT_RATE = _rate("FLAGSHIP_MANAGEMENT_RATE")  # per user
# Evaluation (evaluation API, evaluation counts and OFREP together) per server key, per client key
# (all addresses), and per client key and client address.
FLAGSHIP_SERVER_KEY_RATE = _rate("FLAGSHIP_SERVER_KEY_RATE")
FLAGSHIP_CLIENT_KEY_RATE = _rate("FLAGSHIP_CLIENT_KEY_RATE")
FLAGSHIP_CLIENT_ADDRESS_RATE = _rate("FLAGSHIP_CLIENT_ADDRESS_RATE")
# New change-stream connections per key, and per client key and client address.
FLAGSHIP_STREAM_KEY_RATE = _rate("FLAGSHIP_STREAM_KEY_RATE")
FLAGSHIP_STREAM_ADDRESS_RATE = _rate("FLAGSHIP_STREAM_ADDRESS_RATE")
# Deprecated: when set, the server and client key rates that are not set themselves.
FLAGSHIP_EVALUATION_RATE = _rate("FLAGSHIP_EVALUATION_RATE")
RATELIMIT_USE_CACHE = "default"
# A counter that cannot be read (Redis down) allows the request: an outage of the cache must not
# lock every user out of the admin and the API (docs/operations.md, "Rate limits").
RATELIMIT_FAIL_OPEN = True

# --- FlagShip --------------------------------------------------------------------------------
FLAGSHIP = {
    # How many flags the admin's flag list shows per page.
    "ADMIN_FLAGS_PER_PAGE": env.int("FLAGSHIP_ADMIN_FLAGS_PER_PAGE", default=None),
}
