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
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_path_info
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

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

Handler = Callable[[HttpRequest], HttpResponseBase]


def fast_path_tried(request: HttpRequest) -> bool:
    """Whether the lean path already offered ``request`` to the fast path (and it declined)."""
    return getattr(request, _TRIED, False)


@lru_cache(maxsize=4096)
def lean_route(path: str) -> tuple[Any, dict[str, Any]] | None:
    """The fast-path view class and URL keyword arguments of ``path``, else ``None``.

    Resolved through the URLconf itself, so a route moves with ``urls.py``; remembered per path
    (a flag key is part of some paths: the cache is bounded).
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
    return view_class, dict(match.kwargs)


class LeanWSGIHandler(WSGIHandler):
    """Django's WSGI handler with a lean middleware chain for the evaluation routes."""

    def __init__(self) -> None:
        # BaseHandler's, not WSGIHandler's: the chains are built here, from MIDDLEWARE, split.
        BaseHandler.__init__(self)
        self.full = WSGIHandler()
        self._load_chains()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Evaluation routes through the lean chain, everything else through the full stack."""
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIXES) or lean_route(get_path_info(environ)) is None:
            return self.full(environ, start_response)
        return super().__call__(environ, start_response)

    # --- The chains ----------------------------------------------------------------------------
    def _load_chains(self) -> None:
        """Build the lean chain and the rest of the stack, as ``load_middleware`` builds one.

        The view and exception middleware lists are those of the whole stack, in Django's order:
        a view on the rest of the path sees every ``process_view`` and ``process_exception``.
        """
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        rest: Handler = convert_exception_to_response(self._get_response)
        lean: Handler = convert_exception_to_response(self._lean_view)
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
        self._rest = rest
        self._middleware_chain = lean

    def _lean_view(self, request: HttpRequest) -> HttpResponseBase:
        """The fast path's answer, else the rest of the stack (the full path)."""
        route = lean_route(request.path_info)
        if route is not None:
            view_class, kwargs = route
            response = view_class.fast_response(request, kwargs)
            if response is not None:
                return response  # type: ignore[no-any-return]
        setattr(request, _TRIED, True)
        return self._rest(request)


def application() -> WSGIHandler:
    """The WSGI application: the lean handler, or the full stack alone if it is turned off."""
    from flags import conf  # noqa: PLC0415  # settings only, after django.setup()

    return LeanWSGIHandler() if conf.lean_path() else WSGIHandler()
