"""The wire path: a warm, usual evaluation request answered straight from the WSGI environ.

The lean path (``flagship.lean``) still builds Django's request and response objects and runs ten
middleware objects around the fast path; for a 304 of the ruleset those cost more than the answer
(bench/RESULTS.md, issue 16). The wire path is the first thing ``LeanWSGIHandler`` tries on an
evaluation route. It builds no ``WSGIRequest`` (a :class:`WireRequest` holds the environ, the
path, the method and the body), runs no middleware object, and does what each lean middleware
would have done to such a request, in place:

- ``MetricsMiddleware``: the same ``django_http_*`` observation (view, method, status, seconds);
- ``RequestIdMiddleware``: the sane inbound ``X-Request-ID`` or a new one, on the logs and answer;
- ``AccessLogMiddleware``: ``Server-Timing`` and the ``request.finished`` line (one function,
  ``flagship.access.log_request``, writes it on both paths), queries timed the same way;
- ``DegradedHeaderMiddleware``: nothing is down (else the lean path answers);
- ``ApiErrorMiddleware``: ``API-Version: v1`` under ``/api/v1/`` (the fast path answers no errors);
- ``SecurityMiddleware``: its headers (HSTS on a secure request), precomputed; an insecure request
  it would redirect goes to the lean path;
- ``CorsMiddleware``: ``Vary: origin`` on its routes and, for an ``Origin``, the headers
  corsheaders gives it (worked out once per origin);
- ``BodySizeLimitMiddleware``: a declared body over the limit goes to the lean path, which
  refuses it; so does any query string (the lean path counts its parameters);
- ``CommonMiddleware``: the host is validated as ``request.get_host()`` validates it (once per
  host), and ``Content-Length``;
- ``XFrameOptionsMiddleware``: ``X-Frame-Options``.

Then the view's fast path answers (``FastPathMixin.fast_response``, the same code the lean and the
full path run). Anything else returns ``None`` and the request takes the lean path unchanged:
another method, a query string, an unusual host, script name, user agent rule or CORS request, a
breaker open, a body too large, any setting the plan does not cover (:func:`plan`), a middleware
list other than :data:`WIRE_MIDDLEWARE`. When the fast path itself declines (an unknown key, a
rate limit reached, a body that is not a plain context, an error to answer), the environ is marked
(:data:`TRIED`) and the lean path goes straight to the rest of the stack: the fast path, and the
rate limit it counts, run once per request on every path.

``flags/tests/test_lean_path.py`` compares the answers of the wire path with the full stack's,
status, body and every header, and checks that the wire path answered them.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from corsheaders import middleware as cors
from corsheaders.conf import conf as cors_conf
from corsheaders.signals import check_request_enabled
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import setting_changed
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.urls import ResolverMatch
from django.utils.cache import patch_vary_headers

from flagship import breakers, metrics
from flagship.access import (
    SERVER_TIMING_HEADER,
    DatabaseTimer,
    log_request,
    noted_api_key,
    server_timing,
)
from flagship.errors import is_api_path
from flagship.logs import NO_REQUEST, set_request_id
from flagship.metrics_http import UNRESOLVED
from flagship.middleware import API_VERSION_HEADER, REQUEST_ID_HEADER, request_id_of

# The lean middleware the wire path stands in for, in MIDDLEWARE's order (the metrics are first
# when they are on). With any other lean chain the wire path is off: a middleware added to
# MIDDLEWARE runs on every request until the wire path learns what it does.
METRICS_MIDDLEWARE = "flagship.metrics_http.MetricsMiddleware"
WIRE_MIDDLEWARE = (
    "flagship.middleware.RequestIdMiddleware",
    "flagship.access.AccessLogMiddleware",
    "flagship.breakers.DegradedHeaderMiddleware",
    "flagship.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "flagship.middleware.BodySizeLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
TRIED = "flagship.fast_path_tried"  # in the environ: the fast path declined this request
# Hosts, origins and paths remembered per plan; past these, forgotten and worked out again.
MAX_REMEMBERED = 1024
MAX_ROUTES = 4096

Header = tuple[str, str]


def covers(lean_middleware: tuple[str, ...]) -> bool:
    """Whether the wire path can stand in for a lean chain of these middleware."""
    return lean_middleware in (WIRE_MIDDLEWARE, (METRICS_MIDDLEWARE, *WIRE_MIDDLEWARE))


class WireRequest(WSGIRequest):
    """The request as the fast path reads it: the environ as ``META``, the path, method and body.

    Django's ``__init__`` is not run (it decodes the path, parses the content type and wraps the
    input stream, none of which the fast path reads). What the fast path reads is here; anything
    else it might read (``POST``, ``content_type``, the stream) is missing and raises, which the
    fast path answers by declining (then the lean path answers).
    """

    def __init__(self, environ: dict[str, Any], path: str, method: str, body: bytes) -> None:
        self.environ = self.META = environ
        self.path = self.path_info = path
        self.method = method
        self._body = body
        self._read_started = True
        self.resolver_match: ResolverMatch | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """An evaluation route as the wire path answers it (worked out once per path)."""

    view_class: Any  # a FastPathMixin view
    match: ResolverMatch
    path: str
    view_name: str  # the metrics' label
    cors: bool  # CORS_URLS_REGEX matches: ``Vary: origin`` and the origin's headers
    api_version: bool  # under /api/v1/: ``API-Version``


@dataclass(slots=True)
class Plan:
    """What the settings make of a wire answer's headers, worked out once (again on a change)."""

    frame_options: str
    security: tuple[tuple[str, Header], ...]  # SecurityMiddleware's (lower-case name, header)
    hsts: Header | None  # and on a secure one, first
    redirects_insecure: bool
    proxy_ssl: tuple[str, str] | None
    body_limit: int | None
    allowed_hosts: list[str]
    forwarded_host: bool
    agent_rules: bool
    html: str  # Django's default content type (a 304's)
    private_network: bool
    cors: re.Pattern[str]
    routes: dict[str, Route | None] = field(default_factory=dict)
    hosts: dict[str, bool] = field(default_factory=dict)
    origins: dict[str, tuple[Header, ...]] = field(default_factory=dict)

    def secure(self, environ: dict[str, Any]) -> bool:
        """``request.is_secure()``: the proxy's header when configured and sent, else the scheme."""
        if self.proxy_ssl is not None:
            value = environ.get(self.proxy_ssl[0])
            if value is not None:
                return bool(value.split(",", 1)[0].strip() == self.proxy_ssl[1])
        return bool(environ.get("wsgi.url_scheme") == "https")

    def host_allowed(self, host: str) -> bool:
        """Whether ``request.get_host()`` accepts ``host`` (``HTTP_HOST``)."""
        known = self.hosts.get(host)
        if known is None:
            domain, _port = split_domain_port(host)
            known = bool(domain and validate_host(domain, self.allowed_hosts))
            if len(self.hosts) >= MAX_REMEMBERED:
                self.hosts.clear()
            self.hosts[host] = known
        return known

    def origin_headers(self, origin: str) -> tuple[Header, ...]:
        """The headers ``CorsMiddleware`` adds for ``Origin: origin`` after ``Vary``."""
        known = self.origins.get(origin)
        if known is None:
            known = _origin_headers(origin)
            if len(self.origins) >= MAX_REMEMBERED:
                self.origins.clear()
            self.origins[origin] = known
        return known

    def route(self, path: str) -> Route | None:
        """The route of ``PATH_INFO`` as the server gave it, or ``None`` for the lean path."""
        known = self.routes.get(path, False)
        if known is False:
            known = self._route(path)
            if len(self.routes) >= MAX_ROUTES:
                self.routes.clear()
            self.routes[path] = known
        return known  # type: ignore[return-value]  # False was replaced

    def _route(self, path: str) -> Route | None:
        from flagship.lean import lean_route  # noqa: PLC0415  # lean imports this module

        # An ASCII PATH_INFO is its own decoded path (get_path_info); others take the lean path.
        if not path.isascii():
            return None
        found = lean_route(path)
        if found is None:
            return None
        view_class, match = found
        return Route(
            view_class,
            match,
            path,
            str(match.view_name or UNRESOLVED),
            self.cors.match(path) is not None,
            path.startswith("/api/v1/") and is_api_path(path),
        )


def _origin_headers(origin: str) -> tuple[Header, ...]:
    """The headers corsheaders adds for a GET or POST from ``origin`` (signals aside)."""
    try:
        url = urlsplit(origin)
    except ValueError:
        return ()
    allowed = cors_conf.CORS_ALLOW_ALL_ORIGINS or cors.CorsMiddleware.origin_found_in_white_lists(
        _CORS, origin, url
    )
    if not allowed:
        return ()
    credentials = cors_conf.CORS_ALLOW_CREDENTIALS
    headers: list[Header] = [
        (
            cors.ACCESS_CONTROL_ALLOW_ORIGIN,
            "*" if cors_conf.CORS_ALLOW_ALL_ORIGINS and not credentials else origin,
        )
    ]
    if credentials:
        headers.append((cors.ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
    if len(cors_conf.CORS_EXPOSE_HEADERS):
        headers.append(
            (cors.ACCESS_CONTROL_EXPOSE_HEADERS, ", ".join(cors_conf.CORS_EXPOSE_HEADERS))
        )
    return tuple(headers)


_CORS = cors.CorsMiddleware(lambda request: None)  # type: ignore[arg-type]  # its checks only


def _security() -> tuple[tuple[tuple[str, Header], ...], Header | None]:
    """SecurityMiddleware's ``process_response`` headers, in its order (HSTS: secure only)."""
    headers: list[Header] = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        parts = [part.strip() for part in policy.split(",")] if isinstance(policy, str) else policy
        headers.append(("Referrer-Policy", ",".join(parts)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    hsts = None
    if settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        hsts = ("Strict-Transport-Security", value)
    return tuple((name.lower(), (name, value)) for name, value in headers), hsts


def _plan() -> Plan | None:
    """The plan of the current settings; ``None`` where the wire path does not cover them."""
    if settings.PREPEND_WWW or settings.FORCE_SCRIPT_NAME is not None:
        return None
    proxy_ssl = settings.SECURE_PROXY_SSL_HEADER
    if proxy_ssl is not None:
        try:
            header, value = proxy_ssl
        except ValueError:  # Django raises ImproperlyConfigured on the lean path
            return None
        proxy_ssl = (str(header), str(value))
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    security, hsts = _security()
    regex = cors_conf.CORS_URLS_REGEX
    return Plan(
        frame_options=str(getattr(settings, "X_FRAME_OPTIONS", "DENY")).upper(),
        security=security,
        hsts=hsts,
        redirects_insecure=bool(settings.SECURE_SSL_REDIRECT),
        proxy_ssl=proxy_ssl,
        body_limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        allowed_hosts=allowed_hosts,
        forwarded_host=bool(settings.USE_X_FORWARDED_HOST),
        agent_rules=bool(settings.DISALLOWED_USER_AGENTS),
        html=f"text/html; charset={settings.DEFAULT_CHARSET}",
        private_network=bool(cors_conf.CORS_ALLOW_PRIVATE_NETWORK),
        cors=regex if isinstance(regex, re.Pattern) else re.compile(regex),
    )


_UNSET: Any = object()
_current: Plan | None = _UNSET


def plan() -> Plan | None:
    """The current settings' plan (worked out at the first request, again after a change)."""
    global _current  # noqa: PLW0603  # the process's plan, replaced when settings change
    if _current is _UNSET:
        try:
            _current = _plan()
        except ImproperlyConfigured:
            _current = None
    return _current


def _forget_plan(**kwargs: object) -> None:
    """``setting_changed`` receiver (tests): work the plan out again."""
    global _current  # noqa: PLW0603
    _current = _UNSET


setting_changed.connect(_forget_plan, dispatch_uid="flagship.wire.plan")

StartResponse = Callable[..., Any]


def _server_host(environ: dict[str, Any], secure: bool) -> str:
    """The host ``request.get_host()`` reads without a ``Host`` header: the server's name, port."""
    host = str(environ.get("SERVER_NAME", ""))
    port = str(environ.get("SERVER_PORT", ""))
    return host if port == ("443" if secure else "80") else f"{host}:{port}"


class Usual(NamedTuple):
    """A request the wire path takes on: what its checks found."""

    plan: Plan
    route: Route
    method: str
    secure: bool
    origin: str | None
    length: int


def usual(environ: dict[str, Any]) -> Usual | None:
    """What the wire path needs of ``environ``, or ``None`` when the lean path must answer it."""
    wire = plan()
    method = environ.get("REQUEST_METHOD")
    if (
        wire is None
        or (method != "POST" and method != "GET")  # noqa: PLR1714  # two compares: no tuple
        or environ.get("QUERY_STRING")
        or TRIED in environ
        or environ.get("SCRIPT_NAME")
        or "SCRIPT_URL" in environ
        or "REDIRECT_URL" in environ
    ):
        return None
    route = wire.route(environ.get("PATH_INFO", ""))
    if route is None:
        return None
    if (wire.forwarded_host and "HTTP_X_FORWARDED_HOST" in environ) or (
        wire.agent_rules and "HTTP_USER_AGENT" in environ
    ):
        return None
    secure = wire.secure(environ)
    if (wire.redirects_insecure and not secure) or breakers.degraded():
        return None
    if not wire.host_allowed(environ.get("HTTP_HOST") or _server_host(environ, secure)):
        return None
    origin = environ.get("HTTP_ORIGIN")
    if (
        route.cors
        and origin
        and (
            check_request_enabled.receivers
            or (wire.private_network and "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK" in environ)
        )
    ):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if wire.body_limit is not None and length > wire.body_limit:
        return None
    return Usual(wire, route, method, secure, origin, length)


def answer(
    environ: dict[str, Any], start_response: StartResponse, handler_class: type, *, metered: bool
) -> Iterable[bytes] | None:
    """Answer ``environ`` on the wire path, or ``None`` for the lean path (module docstring).

    ``metered``: the lean chain has ``MetricsMiddleware`` (the metrics are on).
    """
    found = usual(environ)
    if found is None:
        return None
    wire, route, method, secure, origin, length = found
    started = time.perf_counter()
    request_id = request_id_of(environ)
    set_request_id(request_id)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    request = WireRequest(environ, route.path, method, body)
    request.resolver_match = route.match
    database = DatabaseTimer()
    with connection.execute_wrapper(database):
        response: HttpResponse | None = route.view_class.fast_response(request, route.match.kwargs)
    if response is None:  # the lean path goes on from here, to the rest of the stack
        environ[TRIED] = True
        if length > 0:
            environ["wsgi.input"] = io.BytesIO(body)
        set_request_id(NO_REQUEST)
        return None

    # The headers the lean chain adds on the way out, innermost middleware first.
    if route.cors:
        if "vary" in response.headers:
            patch_vary_headers(response, ("origin",))
        else:
            response.headers["Vary"] = "origin"
    store = response.headers._store  # name (lower-case) -> (name, value), in order
    content = response.content
    status = response.status_code
    headers: list[Header] = list(store.values())
    if "x-frame-options" not in store:
        headers.append(("X-Frame-Options", wire.frame_options))
    if "content-length" not in store:
        headers.append(("Content-Length", str(len(content))))
    if route.cors and origin:
        headers += wire.origin_headers(origin)
    if secure and wire.hsts is not None and "strict-transport-security" not in store:
        headers.append(wire.hsts)
    for name, header in wire.security:
        if name not in store:  # set by default only
            headers.append(header)
    if route.api_version and "api-version" not in store:
        headers.append((API_VERSION_HEADER, "v1"))
    duration_ms = (time.perf_counter() - started) * 1000
    headers.append((SERVER_TIMING_HEADER, server_timing(duration_ms, database.seconds * 1000)))
    headers.append((REQUEST_ID_HEADER, request_id))
    headers.extend(("Set-Cookie", cookie.OutputString()) for cookie in response.cookies.values())
    log_request(method, route.path, status, duration_ms, database, None, noted_api_key(request))
    if metered:
        metrics.request_served(route.view_name, method, status, time.perf_counter() - started)
    start_response(f"{status} {response.reason_phrase}", headers)
    if database.queries:  # closed by the server: request_finished, as on the lean path
        response._handler_class = handler_class  # type: ignore[attr-defined]  # as Django does
        return response
    set_request_id(NO_REQUEST)
    return [content]


def declined(request: HttpRequest) -> bool:
    """Whether the wire path offered ``request`` to the fast path already (and it declined)."""
    return TRIED in request.META
