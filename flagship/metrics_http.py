"""``/metrics`` and the HTTP series: the outermost middleware and the protected exposition view.

Who may read ``/metrics`` (docs/operations.md, "Metrics"):

- a client presenting ``Authorization: Bearer <FLAGSHIP_METRICS_TOKEN>``, or
- a client whose address (``REMOTE_ADDR``: gunicorn's peer) is in ``FLAGSHIP_METRICS_ALLOW``.

Anyone else gets 401 problem details (``WWW-Authenticate: Bearer``) when a token is configured,
else 403. With neither setting, or ``FLAGSHIP_METRICS_ENABLED=false``, ``/metrics`` is 404: the
endpoint does not exist rather than exist for nobody, and nothing is served by mistake.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from functools import lru_cache
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from flags import conf
from flagship import metrics
from flagship.errors import problem_response
from flagship.middleware import DualMiddleware

UNRESOLVED = "<unresolved>"
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNRESOLVED
    return str(match.view_name or UNRESOLVED)


def _record(request: HttpRequest, status: int, started: float) -> None:
    seconds = time.perf_counter() - started
    metrics.request_served(_view_name(request), str(request.method), status, seconds)


class MetricsMiddleware(DualMiddleware):
    """Time and count every response by view, method and status (sync and async)."""

    def __call__(self, request: HttpRequest) -> Any:
        """Answer and record (the async path returns a coroutine)."""
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        response: HttpResponseBase = self.get_response(request)
        _record(request, response.status_code, started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response: HttpResponseBase = await self.get_response(request)
        _record(request, response.status_code, started)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """Count an exception a view raised (Django answers it further out)."""
        metrics.http_exceptions.labels(type(exception).__name__).inc()


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> Networks:
    return tuple(ipaddress.ip_network(network.strip(), strict=False) for network in allowed)


def _address_allowed(request: HttpRequest, allowed: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", "")))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(allowed)))


def _token_presented(request: HttpRequest, token: str) -> bool:
    scheme, _, presented = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def registry() -> CollectorRegistry:
    """The registry to expose: every process's values in multiprocess mode, else this one's."""
    if metrics.MULTIPROCESS_DIR:
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=metrics.MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
        return merged
    return REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition, for the token or an allowed address only."""
    token, allowed = conf.metrics_token(), conf.metrics_allow()
    if not conf.metrics_enabled() or not (token or allowed):
        raise Http404
    if not (
        (token and _token_presented(request, token))
        or (allowed and _address_allowed(request, allowed))
    ):
        if token:
            return problem_response(
                request,
                status=401,
                code="not_authenticated",
                detail="Present the metrics token: Authorization: Bearer <token>.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return problem_response(
            request,
            status=403,
            code="permission_denied",
            detail="This address may not read the metrics.",
        )
    metrics.flush()  # this process's pending evaluation counts
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
