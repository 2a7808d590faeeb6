"""The lean path: evaluation, OFREP and ruleset requests answered before the full middleware stack.

An evaluation answered from process memory is a few dozen microseconds of work; Django's full
stack around it (sessions, CSRF, authentication, messages, history, the admin's login limiter and
outage page, static files, URL resolution through every pattern) cost more than the answer itself
(bench/RESULTS.md, issue 16). ``LeanWSGIHandler`` is the WSGI application gunicorn serves
(``flagship.wsgi``). For a path whose view answers on the evaluation fast path
(``flags.evaluation.views.FastPathMixin``) it runs a shorter chain:

- the *lean* middleware: every entry of ``MIDDLEWARE`` except ``SKIPPED`` (request id, metrics,
  access log and ``Server-Timing``, the degraded header, problem details and ``API-Version``,
  security headers, CORS, the body-size limit, Content-Length, ``X-Frame-Options``: each a layer
  whose headers or refusals an evaluation answer carries), in their configured order; a
  middleware added to ``MIDDLEWARE`` later runs on the lean path too unless it is named here;
- then the view's fast path (``FastPathMixin.fast_response``), without resolving the URL again;
- and when the fast path declines (anything unusual: an unknown or uncached key, a rate limit
  reached, a body that is not a plain context, an error to answer, another method), the *rest* of
  the stack: the skipped middleware, in their configured order, around Django's own view handling
  (URL resolution, ``process_view``, the view, ``process_exception`` of every middleware). That is
  the full path, with the lean layers already applied outside it.

Before the lean chain, the *wire path* (``flagship.wire``) answers the warm, usual request with no
request or response object and no middleware object at all, reproducing what the lean chain would
add; anything it does not cover takes the lean chain as above.

Everything else (the admin, the management API, the stream, health and metrics) goes to the full
stack untouched. Both chains are built from ``MIDDLEWARE`` once, at start-up; Django's request
signals, its request object and its error handling (``convert_exception_to_response`` around
every layer) are the same on both paths. ``flags/tests/test_lean_path.py`` compares the lean and
the full application on every evaluation route, header by header.

``FLAGSHIP_LEAN_PATH=false`` serves everything through the full stack (for comparison).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_path_info, get_script_name
from django.db import connections
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, resolve, set_script_prefix, set_urlconf
from django.utils.module_loading import import_string

from flagship import wire
from flagship.logs import NO_REQUEST, set_request_id

# Middleware the lean path leaves out: none of them adds a header to, or refuses, a request on an
# evaluation route (the tests compare every header). Static files, the admin's sign-in limiter and
# its database-outage page only look at other paths; sessions, CSRF, the user, messages and the
# history context are only read by views the lean path does not answer.
SKIPPED = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "flagship.middleware.AdminLoginRateLimitMiddleware",
        "flagship.middleware.DatabaseUnavailableMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "simple_history.middleware.HistoryRequestMiddleware",
    }
)
# Only these paths can be the lean path's; anything else is not even resolved twice.
PREFIXES = ("/api/v1/evaluate", "/api/v1/ruleset", "/ofrep/v1/evaluate/flags")
_TRIED = "_flagship_fast_path_tried"  # set on a request the fast path declined

Handler = Callable[[HttpRequest], Any]  # a sync middleware chain: a request in, a response out


def fast_path_tried(request: HttpRequest) -> bool:
    """Whether the lean path already offered ``request`` to the fast path (and it declined)."""
    return getattr(request, _TRIED, False)


@lru_cache(maxsize=4096)
def lean_route(path: str) -> tuple[Any, ResolverMatch] | None:
    """The fast-path view class and URL match of ``path``, else ``None``.

    Resolved through the URLconf itself, so a route moves with ``urls.py``; remembered per path
    (a flag key is part of some paths: the cache is bounded). The match is the request's
    ``resolver_match``, as on the full stack (the metrics name the view by it).
    """
    from flags.evaluation.views import FastPathMixin  # noqa: PLC0415  # after the app registry

    if not path.startswith(PREFIXES):
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    view_class = getattr(match.func, "view_class", None)
    if view_class is None or not issubclass(view_class, FastPathMixin) or match.args:
        return None
    return view_class, match


class LeanWSGIHandler(WSGIHandler):
    """Django's WSGI handler with a lean middleware chain for the evaluation routes."""

    def __init__(self) -> None:
        # BaseHandler's, not WSGIHandler's: the chains are built here, from MIDDLEWARE, split.
        BaseHandler.__init__(self)
        self.full = WSGIHandler()
        self._load_chains()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Evaluation routes through the lean chain, everything else through the full stack.

        As ``WSGIHandler.__call__``, except for Django's request signals: ``request_started``
        is sent only when the request goes on to the rest of the stack, and an answer that
        reached neither the rest of the stack nor the database is returned as its bytes, so
        ``request_finished`` is not sent for it either. Their receivers close database
        connections (none is open), close caches (Redis clients stay open between requests)
        and reset the request's URLconf and log request id, which is done here instead.
        """
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIXES):
            return self.full(environ, start_response)
        if self._wire:
            answered = wire.answer(environ, start_response, self.__class__, metered=self._metered)
            if answered is not None:
                return answered
        if lean_route(get_path_info(environ)) is None:
            return self.full(environ, start_response)
        set_script_prefix(get_script_name(environ))
        request = self.request_class(environ)
        response = self.get_response(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # as Django does
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", cookie.OutputString()) for cookie in response.cookies.values()),
        ]
        start_response(status, headers)
        if fast_path_tried(request) or response.streaming or _database_used():
            return response  # closed by the server: request_finished, as on the full stack
        request.close()
        set_urlconf(None)
        set_request_id(NO_REQUEST)
        return [response.content]  # type: ignore[attr-defined]  # not streaming: an HttpResponse

    # --- The chains ----------------------------------------------------------------------------
    def _load_chains(self) -> None:
        """Build the lean chain and the rest of the stack, as ``load_middleware`` builds one.

        The view and exception middleware lists are those of the whole stack, in Django's order:
        a view on the rest of the path sees every ``process_view`` and ``process_exception``.
        """
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        rest: Handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        lean: Handler = convert_exception_to_response(self._lean_view)
        lean_middleware: list[str] = []
        for path in reversed(settings.MIDDLEWARE):
            middleware = import_string(path)
            inner = rest if path in SKIPPED else lean
            try:
                instance = middleware(inner)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            if path in SKIPPED:
                rest = convert_exception_to_response(instance)
            else:
                lean = convert_exception_to_response(instance)
                lean_middleware.insert(0, path)
        self._rest = rest
        self._middleware_chain = lean
        # The wire path stands in for the lean chain it knows (flagship.wire), and no other.
        self._wire = wire.covers(tuple(lean_middleware))
        self._metered = lean_middleware[:1] == [wire.METRICS_MIDDLEWARE]

    def _lean_view(self, request: HttpRequest) -> HttpResponseBase:
        """The fast path's answer, else the rest of the stack (the full path)."""
        route = lean_route(request.path_info)
        if route is not None:
            view_class, match = route
            request.resolver_match = match
            # Declined on the wire path already: once is all (it counted the rate limit).
            response = (
                None if wire.declined(request) else view_class.fast_response(request, match.kwargs)
            )
            if response is not None:
                return response  # type: ignore[no-any-return]
        setattr(request, _TRIED, True)
        environ = request.environ  # type: ignore[attr-defined]  # a WSGIRequest
        signals.request_started.send(sender=self.__class__, environ=environ)
        return self._rest(request)  # type: ignore[no-any-return]


def _database_used() -> bool:
    """Whether this thread holds an open database connection (the request used one)."""
    return any(
        connection.connection is not None for connection in connections.all(initialized_only=True)
    )


def application() -> WSGIHandler:
    """The WSGI application: the lean handler, or the full stack alone if it is turned off."""
    from flags import conf  # noqa: PLC0415  # settings only, after django.setup()

    return LeanWSGIHandler() if conf.lean_path() else WSGIHandler()
