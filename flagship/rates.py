"""Every rate limit's setting and production default, read per call (never at import).

A rate is ``"<count>/<period>"``: ``N/s``, ``N/m``, ``N/h``, ``N/d`` or ``N/<k><unit>`` such as
``100/5m``; an empty rate turns its limit off. ``flagship/settings.py`` reads each from the
environment and leaves it ``None`` when the variable is unset; ``rate`` then falls back to
``DEFAULTS``, unless ``FLAGSHIP_DEFAULT_RATES_ON`` is false (the test suite), where an unset limit
is off. Why each default is what it is: docs/operations.md, "Rate limits".
"""

from __future__ import annotations

from django.conf import settings

AUTH = "FLAGSHIP_AUTH_RATE"
ADMIN_LOGIN = "FLAGSHIP_ADMIN_LOGIN_RATE"
MANAGEMENT = "FLAGSHIP_MANAGEMENT_RATE"
SERVER_KEY = "FLAGSHIP_SERVER_KEY_RATE"
CLIENT_KEY = "FLAGSHIP_CLIENT_KEY_RATE"
CLIENT_ADDRESS = "FLAGSHIP_CLIENT_ADDRESS_RATE"
STREAM_KEY = "FLAGSHIP_STREAM_KEY_RATE"
STREAM_ADDRESS = "FLAGSHIP_STREAM_ADDRESS_RATE"
# Deprecated (issue 11): the one per-key evaluation rate of every key, before server and client
# keys had their own. When set it stands for both key rates, unless those are set themselves.
EVALUATION = "FLAGSHIP_EVALUATION_RATE"

DEFAULTS: dict[str, str] = {
    AUTH: "10/m",  # per client address, the JWT endpoints
    ADMIN_LOGIN: "10/m",  # per client address, POST /admin/login/
    MANAGEMENT: "600/m",  # per signed-in user
    # Evaluation per server key: 20 000 requests/s over a minute, about 5 times the most one
    # FlagShip instance served in bench/server (4 285 requests/s, 2 cores): never below what
    # one instance can serve, so a customer's backend is not throttled by its own traffic.
    SERVER_KEY: "1200000/m",
    # Evaluation per client key, all addresses together: as for server keys.
    CLIENT_KEY: "1200000/m",
    # Evaluation per client key and client address: 20 requests/s over a minute. A browser or
    # app asks a few times a minute; a public key must not be exhausted by one address.
    CLIENT_ADDRESS: "1200/m",
    # New stream connections per key (any kind): about 4 times the 240 connections/s one stream
    # process accepted in bench/server (1 000 streams in 4.2 s).
    STREAM_KEY: "60000/m",
    # New stream connections per client key and client address: two a second.
    STREAM_ADDRESS: "120/m",
}
ALIASES: dict[str, str] = {SERVER_KEY: EVALUATION, CLIENT_KEY: EVALUATION}


def rate(name: str) -> str:
    """The rate of the limit ``name`` (a setting named in ``DEFAULTS``); ``""`` when it is off."""
    value = getattr(settings, name, None)
    if value is None and name in ALIASES:
        value = getattr(settings, ALIASES[name], None)
    if value is None:
        value = DEFAULTS[name] if getattr(settings, "FLAGSHIP_DEFAULT_RATES_ON", True) else ""
    return str(value)
