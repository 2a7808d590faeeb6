"""Views that ask FlagShip: ``GET /?user=user-42&country=DE`` and ``GET /flags``.

The flag keys are those of FlagShip's demo project (``make run`` creates it).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from . import flags


def flag_context(request: HttpRequest) -> dict[str, Any]:
    """The evaluation context of a request: who it is for and what we know about them."""
    context: dict[str, Any] = {"targetingKey": request.GET.get("user", "anonymous")}
    country = request.GET.get("country")
    if country:
        context["country"] = country
    return context


def checkout(request: HttpRequest) -> HttpResponse:
    """Serve the new or the old checkout, as the ``new-checkout`` flag says."""
    client = flags.client()
    context = flag_context(request)
    new = client.is_enabled("new-checkout", context)
    page = "the new checkout" if new else "the old checkout"
    banner = client.get_string("banner-text", "", context)
    return HttpResponse(f"{banner or 'Welcome'}: {page}\n", content_type="text/plain")


def flag_details(request: HttpRequest) -> JsonResponse:
    """Every flag's value, variant and reason for the request's context (for debugging)."""
    client = flags.client()
    details = client.evaluate_all(flag_context(request))
    return JsonResponse(
        {
            "ready": client.ready,
            "status": str(client.status),
            "version": client.ruleset_version,
            "flags": {
                key: {"value": d.value, "variant": d.variant, "reason": d.reason}
                for key, d in details.items()
            },
        }
    )
