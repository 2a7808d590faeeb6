r"""``GET /api/v1/stream``: Server-Sent Events announcing each ruleset version of an environment.

Notify-only: on an event, SDKs download the ruleset (server keys) or re-evaluate (client keys).

An async view: an idle stream is a coroutine waiting on its subscription, not a worker thread.
Authentication and the version look-ups run in a thread (``sync_to_async``) so the event loop is
never blocked by the database. Server and client keys are accepted in ``X-API-Key`` or
``Authorization: Bearer``; browsers' ``EventSource`` cannot set headers, so client keys (and only
they) may also come as ``?key=<secret>``.

Events (``format=flagship``, the default)::

    event: ruleset
    id: 42
    data: {"version": 42, "etag": "\\"42\\""}

``format=ofrep`` sends OFREP's shape instead (``event: message``,
``data: {"type": "refetchEvaluation", "etag": ..., "version": ...}``); the OFREP bulk response
advertises that URL in ``eventStreams``. Heartbeats are SSE comments (``: ping``).

While FlagShip's own ``stream`` flag is off (``flags.capabilities``), new requests are answered
``503`` (``capability_disabled``) and open streams end as soon as their process hears of the
change; clients reconnect after ``retry`` and meet the 503 until it is on again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import lru_cache, wraps
from typing import Protocol

from asgiref.sync import sync_to_async
from django.core.exceptions import TooManyFieldsSent
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from accounts import keys
from accounts.authentication import ApiKeyAuthentication, presented_secret
from accounts.models import ApiKey
from accounts.permissions import environment_key
from flags import capabilities, conf
from flags.delivery import keys as known_keys
from flags.delivery import versions
from flags.evaluation import throttling
from flags.models import Environment
from flagship.errors import problem_response

from . import direct, subscriptions

FORMATS = ("flagship", "ofrep")
RETRY_MILLISECONDS = 3000
WSGI_RETRY_MILLISECONDS = 30_000
DISABLED_RETRY_SECONDS = 30


def _refusal(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="flagship"'} if status == 401 else None
    return problem_response(request, status=status, code=code, detail=detail, headers=headers)


def _authenticate(request: HttpRequest) -> ApiKey | HttpResponse:
    """The environment key of the request, or the 401/403 problem response (runs in a thread)."""
    drf_request = Request(request, authenticators=[cls() for cls in APIView.authentication_classes])
    query_secret = request.GET.get("key", "").strip()
    has_header = presented_secret(drf_request) is not None or "Authorization" in request.headers
    if query_secret and not has_header:
        parsed = keys.parse(query_secret)
        if parsed is None:
            return _refusal(request, 401, "invalid_api_key", "This API key is not valid.")
        if parsed[0] != ApiKey.Kind.CLIENT:
            return _refusal(
                request,
                403,
                "client_key_required",
                "Only client keys may be sent in the URL (?key=); send server keys in X-API-Key.",
            )
        try:
            return ApiKeyAuthentication().key_for(query_secret)
        except exceptions.AuthenticationFailed as error:
            return _refusal(request, 401, _code(error), str(error.detail))
    try:
        key = environment_key(drf_request)
    except exceptions.APIException as error:
        status = 401 if error.status_code in (401, 403) else error.status_code
        return _refusal(request, status, _code(error), str(error.detail))
    if key is not None:
        return key
    if drf_request.user.is_authenticated or drf_request.auth is not None:
        return _refusal(
            request,
            403,
            "environment_key_required",
            "This endpoint needs an environment API key (server or client).",
        )
    return _refusal(
        request, 401, "not_authenticated", "Authentication credentials were not provided."
    )


def vouched_key(request: HttpRequest) -> known_keys.FastKey | None:
    """The key of a stream request when this process vouches for it from memory, else ``None``.

    What lets ``flagship.asgi`` answer the request on the stream's own chain: a server or client
    key in ``X-API-Key`` or ``Authorization: Bearer``, or a client key alone in ``?key=``, read
    as :func:`_authenticate` reads them and checked as the evaluation fast path checks keys
    (``flags.delivery.keys.authenticate``: no I/O). ``None`` (the full stack answers, and checks
    the key in the database) for anything else: no key, an unknown, revoked or expired one, one
    whose ``last_used_at`` is due, and any request with cookies (a signed-in browser's sessions
    are the full stack's).
    """
    meta = request.META
    if "HTTP_COOKIE" in meta:
        return None
    secret = presented_secret(request)
    kinds: tuple[str, ...] = (ApiKey.Kind.SERVER, ApiKey.Kind.CLIENT)
    if secret is None:
        if "HTTP_AUTHORIZATION" in meta:
            return None
        try:
            secret = request.GET.get("key", "").strip()
        except TooManyFieldsSent:
            return None
        kinds = (ApiKey.Kind.CLIENT,)
    if not secret:
        return None
    return known_keys.authenticate(secret, kinds)


def _code(error: exceptions.APIException) -> str:
    codes = error.get_codes()
    return codes if isinstance(codes, str) else "authentication_failed"


def _current_version(environment_id: int) -> int | None:
    """The environment's ruleset version now, or ``None`` when it no longer exists.

    From the database, which is the authority (the shared cache's version may predate a change
    committed while Redis was down); while the database is down, as evaluation reads it
    (``flags.delivery.versions.current_version``: Redis, else the newest version this process
    knows), so a stream opens and resyncs during an outage too. A version read from the database
    is recorded as the process's pushed version if the subscription held meanwhile
    (``versions.record_version``), so the streams that open next read it from memory
    (:func:`_opening_version`).
    """
    since = versions.generation()
    try:
        current = (
            Environment.objects.filter(pk=environment_id)
            .values_list("ruleset_version", flat=True)
            .first()
        )
        if current is not None:
            versions.record_version(environment_id, current, since)
        return current
    except DatabaseError:
        try:
            return versions.current_version(environment_id)
        except Environment.DoesNotExist:
            return None


def _last_event_id(request: HttpRequest) -> int | None:
    raw = request.headers.get("Last-Event-ID", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


@lru_cache(maxsize=256)
def render(version: int, fmt: str) -> str:
    """One SSE event announcing ``version`` (built once for all the streams that send it)."""
    etag = f'"{version}"'
    if fmt == "ofrep":
        data = {"type": "refetchEvaluation", "etag": etag, "version": version}
        return f"id: {version}\nevent: message\ndata: {json.dumps(data)}\n\n"
    data = {"version": version, "etag": etag}
    return f"id: {version}\nevent: ruleset\ndata: {json.dumps(data)}\n\n"


def _snapshot(environment_id: int, last_event_id: int | None, fmt: str) -> str:
    """The whole answer outside ASGI: the current version when newer than ``last_event_id``."""
    current = _current_version(environment_id)
    text = f"retry: {WSGI_RETRY_MILLISECONDS}\n\n"
    if current is not None and (last_event_id is None or last_event_id < current):
        text += render(current, fmt)
    return text


def _released[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function``, then give its thread's database connection back (to the pool).

    Under ASGI a request's thread keeps its connection until the request ends, and a stream lasts
    hours: without this every open stream would hold one of the pool's few connections, and the
    pool's size would cap the number of subscribers (found by bench/server).
    """

    @wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return call


def _stream_enabled() -> bool:
    """Whether FlagShip's own ``stream`` flag is on (a dictionary look-up on a warm process)."""
    return capabilities.enabled(capabilities.STREAM)


def disabled(request: HttpRequest) -> HttpResponse:
    """503 ``capability_disabled``: the stream is switched off by FlagShip's own flag."""
    return problem_response(
        request,
        status=503,
        code="capability_disabled",
        detail="The change stream is switched off on this FlagShip; poll GET /api/v1/ruleset "
        "(ETag) instead.",
        headers={"Retry-After": str(DISABLED_RETRY_SECONDS)},
    )


async def _events(
    environment_id: int,
    last_event_id: int | None,
    fmt: str,
    writer: direct.DirectWriter | None = None,
) -> AsyncIterator[str]:
    heartbeat = conf.stream_heartbeat_seconds()
    # In the default thread pool, not the one thread that runs every request's synchronous
    # middleware and authentication: a stream's own look-ups do not queue behind new connections.
    stream_enabled = sync_to_async(_released(_stream_enabled), thread_sensitive=False)
    # Then the client reconnects (with Last-Event-ID) and its key is checked again, so a
    # revocation reaches open streams within this time.
    deadline = time.monotonic() + conf.stream_max_age_seconds()
    current_version = sync_to_async(_released(_current_version), thread_sensitive=False)
    async with subscriptions.subscribe(environment_id) as subscription:
        # Subscribed before reading, so a change committed in between is not missed. From memory
        # while the process's subscription holds (every change since is pushed to it, and to this
        # stream); else from the database, in a thread.
        current = versions.version(environment_id)
        if current is None:
            current = await current_version(environment_id)
        if current is None:
            return
        prefix = f"retry: {RETRY_MILLISECONDS}\n\n"
        sent = max(current, last_event_id or 0)
        if last_event_id is None or last_event_id < current:
            yield prefix + render(current, fmt)
        else:
            yield prefix

        def deliver_now(version: int) -> bool:
            """Write a newer version to the connection at once (see ``flags.stream.direct``)."""
            nonlocal sent
            if version <= sent:
                return True
            if writer is None or not writer.write(direct.chunk(render(version, fmt))):
                return False
            sent = version
            return True

        if writer is not None:  # the headers and the first event are out: the response started
            subscription.deliver_now = deliver_now
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                notice = await asyncio.wait_for(subscription.wait(), min(heartbeat, remaining))
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if isinstance(notice, subscriptions.Recheck):
                if not await stream_enabled():
                    return  # switched off: the client reconnects and meets the 503
                continue
            version = notice
            if version is subscriptions.RESYNC:
                if not await stream_enabled():
                    return
                version = await current_version(environment_id)
                if version is None:
                    return
            if version is not None and version > sent:
                sent = version
                yield render(version, fmt)


class StreamKey(Protocol):
    """What a stream needs of its key: a full ``ApiKey`` or the lean path's ``FastKey``."""

    @property
    def lookup(self) -> str: ...  # noqa: D102
    @property
    def kind(self) -> str: ...  # noqa: D102
    @property
    def environment_id(self) -> int | None: ...  # noqa: D102


Authenticate = Callable[[HttpRequest], Awaitable[StreamKey | HttpResponse]]


async def stream(request: HttpRequest, version: str) -> HttpResponseBase:
    """Stream the ruleset versions of the key's environment as Server-Sent Events."""
    return await _answer(request, version)


async def lean_stream(request: HttpRequest, key: StreamKey) -> HttpResponseBase:
    """The stream of ``request`` on the ASGI server's own chain (``flagship.asgi``).

    ``key`` is the environment key this process vouched for from memory; everything else (the
    checks, the rate limit, the response) is :func:`stream`'s.
    """
    return await _answer(request, "v1", key)


DISABLED = "disabled"  # what _admit answers while the stream capability is off


def _admit(key: StreamKey, address: str | None) -> str | int | None:
    """The capability, then the key's rate limit: ``DISABLED``, ``Retry-After``, or ``None``."""
    if not _stream_enabled():
        return DISABLED
    return throttling.allow_stream(key.lookup, key.kind, address)


def _full_authentication(request: HttpRequest) -> Authenticate:
    asgi = isinstance(request, ASGIRequest)
    return sync_to_async(_released(_authenticate) if asgi else _authenticate)


async def _answer(
    request: HttpRequest, version: str, vouched: StreamKey | None = None
) -> HttpResponseBase:
    if version not in (api_settings.ALLOWED_VERSIONS or ()):
        return problem_response(
            request, status=404, code="not_found", detail=f"Unknown API version {version!r}."
        )
    if request.method != "GET":
        return problem_response(
            request,
            status=405,
            code="method_not_allowed",
            detail=f'Method "{request.method}" not allowed.',
            headers={"Allow": "GET"},
        )
    fmt = request.GET.get("format", "flagship")
    if fmt not in FORMATS:
        return problem_response(
            request,
            status=400,
            code="invalid_format",
            detail=f"format must be one of {', '.join(FORMATS)}.",
        )
    # Only the ASGI path hands its connection back: a WSGI request (and a test's transaction)
    # keeps using its own. Its look-ups run in the default thread pool, not in the one thread
    # that runs synchronous middleware: new streams do not queue behind each other there.
    asgi = isinstance(request, ASGIRequest)
    address = throttling.client_address(request)
    if vouched is not None:
        # The key is known already (the stream's own chain): the capability and the rate limit
        # in one hand-over to a thread, in the order below. A thread hand-over costs
        # milliseconds while thousands of streams open (the GIL goes round every thread).
        admitted = await sync_to_async(_released(_admit), thread_sensitive=False)(vouched, address)
        if admitted == DISABLED:
            return disabled(request)
        if isinstance(admitted, int):
            return throttling.rate_limited(request, admitted)
        key: StreamKey = vouched
    else:
        if asgi:
            enabled = await sync_to_async(_released(_stream_enabled), thread_sensitive=False)()
        else:
            enabled = await sync_to_async(_stream_enabled)()
        if not enabled:
            return disabled(request)
        found = await _full_authentication(request)(request)
        if isinstance(found, HttpResponse):
            return found
        key = found
        if key.environment_id is None:  # pragma: no cover - environment keys always have one
            return _refusal(request, 403, "environment_key_required", "Not an environment key.")
        retry_after = await sync_to_async(throttling.allow_stream, thread_sensitive=not asgi)(
            key.lookup, key.kind, address
        )
        if retry_after is not None:
            return throttling.rate_limited(request, retry_after)
    environment_id = key.environment_id
    if environment_id is None:  # pragma: no cover - environment keys always have one
        return _refusal(request, 403, "environment_key_required", "Not an environment key.")
    last_event_id = _last_event_id(request)
    if isinstance(request, ASGIRequest):
        content: Iterable[str] | AsyncIterator[str] = _events(
            environment_id, last_event_id, fmt, direct.DirectWriter.of(request.scope)
        )
    else:
        # Served by a WSGI worker (the proxy does not route the stream to the ASGI server): a
        # stream would hold the worker's thread, so answer the current state once and end; the
        # client reconnects after ``retry``, which degrades to polling.
        content = [await sync_to_async(_snapshot)(environment_id, last_event_id, fmt)]
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
