"""ASGI entry point: serves the change stream (``/api/v1/stream``) without a thread per stream.

The API and the admin run under gunicorn's WSGI workers (``flagship.wsgi``); the proxy routes
``/api/v1/stream`` to an ASGI server running this application (docs/streaming.md).

Three things for a server of thousands of streams:

- the application keeps the server's ``send`` in the request's scope, so a stream can write its
  events to its connection directly (``flags.stream.direct``);
- a new stream whose key this process vouches for from memory
  (``flags.stream.views.vouched_key``) is answered on the stream's own middleware chain, every
  layer of it on the event loop: the entries of ``MIDDLEWARE`` except those the lean path skips
  (``flagship.lean.SKIPPED``: static files, the admin's, sessions, CSRF, the user, messages,
  history), each of them async-capable; Django's own ``MiddlewareMixin`` layers among them whose
  hooks do no I/O (``INLINE``) have their hooks called in place. Under Django's full stack every
  request runs its synchronous middleware (WhiteNoise's, the sessions') in the one thread
  ``sync_to_async`` keeps for them, so new streams were opened one at a time (56 a second, bench/
  server/stream_scale.py). Anything else (no key, an unknown one, cookies, other paths) goes
  through the full stack as before; ``flags/tests/test_stream_route.py`` compares both answers
  header by header;
- only the stream server imports this module, so it raises its own open-file limit here, every
  stream being a socket (``flagship.fdlimit``; docs/operations.md, "File descriptors").
"""

import os
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

import django
from asgiref.sync import markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, resolve, set_urlconf
from django.utils.log import log_response
from django.utils.module_loading import import_string

from flagship.fdlimit import raise_open_files_limit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagship.settings")

# The paths of the stream's own chain (every route answers with or without its slash).
STREAM_PATHS = frozenset({"/api/v1/stream", "/api/v1/stream/"})
# Django's middleware whose process_request and process_response do no I/O (headers, redirects
# decided from settings and the URLconf): called in place on the event loop, where Django's
# MiddlewareMixin would hand each hook to the synchronous thread and back.
INLINE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)
_KEY = "_flagship_stream_key"  # the vouched key, set on a request the stream's chain answers

AsyncHandler = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class InlineHooks:
    """An async layer calling a ``MiddlewareMixin`` middleware's hooks in place (``INLINE``)."""

    sync_capable = False
    async_capable = True

    def __init__(self, middleware: type, get_response: AsyncHandler) -> None:
        # Built around a synchronous stand-in: the instance is only asked for its hooks.
        self.middleware = middleware(_never)
        self.get_response = get_response
        self.process_request = getattr(self.middleware, "process_request", None)
        self.process_response = getattr(self.middleware, "process_response", None)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """As ``MiddlewareMixin.__acall__``, the hooks called on the loop."""
        response = None
        if self.process_request is not None:
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if self.process_response is not None:
            response = self.process_response(request, response)
        return response


def _never(request: HttpRequest) -> HttpResponseBase:  # pragma: no cover - never called
    raise RuntimeError("an inline middleware's get_response is the stream chain's")


@lru_cache(maxsize=4)
def _match(path: str) -> ResolverMatch:
    """The URL match of a stream path, as the full stack resolves it (metrics name the view)."""
    return resolve(path)


class StreamingASGIHandler(ASGIHandler):
    """Django's ASGI handler, with ``send`` in the scope and the stream's own chain."""

    def __init__(self) -> None:
        super().__init__()
        self._exception_hooks: list[Callable[..., HttpResponseBase | None]] = []
        self._stream_chain = self._load_stream_chain()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Handle one connection (Django's), ``send`` reachable from the request's scope.

        A stream request is handled without Django's per-request ``ThreadSensitiveContext``:
        that context gives each request a thread of its own for its synchronous work (Django's
        request signals at least), alive until the request ends, which for a stream is hours:
        one OS thread per open stream (10 000 for 10 000 subscribers), created while the
        stream opens. Without it that little synchronous work runs in the one thread
        ``sync_to_async`` keeps for it; the stream's own look-ups run in the thread pool.
        """
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope = {**scope, "flagship.send": send}
        if scope.get("path") in STREAM_PATHS:
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """The stream's own chain for a vouched stream request; else Django's full stack."""
        from flags.stream.views import vouched_key  # noqa: PLC0415  # after the app registry

        if request.path_info not in STREAM_PATHS or request.method != "GET":
            return await super().get_response_async(request)
        key = vouched_key(request)
        if key is None:
            return await super().get_response_async(request)
        setattr(request, _KEY, key)
        set_urlconf(settings.ROOT_URLCONF)
        response = await self._stream_chain(request)
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]  # as Django does
        if response.status_code >= 400:  # as Django's get_response_async logs them
            await sync_to_async(log_response, thread_sensitive=False)(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,  # type: ignore[arg-type]  # any response, as Django logs
                request=request,
            )
        return response

    def _load_stream_chain(self) -> AsyncHandler:
        """``MIDDLEWARE`` without ``flagship.lean.SKIPPED`` around the stream view, all async."""
        from flagship.lean import SKIPPED  # noqa: PLC0415

        handler: Any = convert_exception_to_response(self._stream_view)
        exception_hooks: list[Callable[..., HttpResponseBase | None]] = []
        for path in reversed(settings.MIDDLEWARE):
            if path in SKIPPED:
                continue
            middleware = import_string(path)
            try:
                if path in INLINE:
                    instance: Any = InlineHooks(middleware, handler)
                    hooks = instance.middleware
                else:
                    if not getattr(middleware, "async_capable", False):
                        raise RuntimeError(
                            f"{path} is not async-capable: the change stream's chain "
                            "(flagship.asgi) needs it to be, or to be skipped or inline"
                        )
                    instance = middleware(handler)
                    hooks = instance
            except MiddlewareNotUsed:
                continue
            if hasattr(hooks, "process_exception"):
                exception_hooks.append(hooks.process_exception)
            handler = convert_exception_to_response(instance)
        self._exception_hooks = exception_hooks
        chain: AsyncHandler = handler
        return chain

    async def _stream_view(self, request: HttpRequest) -> HttpResponseBase:
        """The stream view, with the key already vouched for; exceptions as Django's handling."""
        from flags.stream.views import lean_stream  # noqa: PLC0415  # after the app registry
        from flagship.access import note_api_key  # noqa: PLC0415

        key = getattr(request, _KEY)
        note_api_key(request, key.id)  # the access log's api_key_id
        request.resolver_match = _match(request.path_info)
        try:
            return await lean_stream(request, key)
        except Exception as exception:
            for hook in self._exception_hooks:  # innermost first, as Django calls them
                response = hook(request, exception)
                if response is not None:
                    return response
            raise


django.setup(set_prefix=False)  # what get_asgi_application() does; it configures logging too
application = StreamingASGIHandler()
OPEN_FILES = raise_open_files_limit()
