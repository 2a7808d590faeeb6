"""Turning a flag on or off in one environment from the flag list.

POST toggles (one click, unprotected environments; or the confirmation form); GET renders the
confirmation page of a protected environment; any other method is 405. Whoever may not change the
environment gets 403. The change always goes through ``services.flag_toggle`` with the person as
actor, so history records them and the environment's ruleset version moves.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import services
from ..errors import PermissionDeniedError, StaleVersionError
from ..models import FlagState
from .base import can_change_environment

BOOLEANS = {"true": True, "false": False}


def changelist_url(request: HttpRequest) -> str:
    """The flag list, with the filters it had when the toggle was clicked."""
    url = reverse("admin:flags_flag_changelist")
    filters = request.GET.get("_changelist_filters", "")
    return f"{url}?{filters}" if filters else url


def toggle_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, flag_id: int, environment_id: int
) -> HttpResponse:
    """Toggle one flag in one environment (see the module docstring for the contract)."""
    state = get_object_or_404(
        FlagState.objects.select_related("flag", "environment", "off_variant"),
        flag_id=flag_id,
        environment_id=environment_id,
    )
    environment = state.environment
    confirming = request.method == "GET" and environment.protected
    if request.method != "POST" and not confirming:
        return HttpResponseNotAllowed(["GET", "POST"] if environment.protected else ["POST"])
    if not can_change_environment(request.user, environment):
        raise PermissionDenied
    if confirming:
        return confirmation(model_admin, request, state)
    enabled = BOOLEANS.get(request.POST.get("enabled", ""))
    if enabled is None:
        return HttpResponseBadRequest('"enabled" must be "true" or "false".')
    version = request.POST.get("version", "")
    try:
        services.flag_toggle(
            state=state,
            enabled=enabled,
            actor=request.user,
            expected_version=int(version) if version.isdigit() else None,
        )
    except PermissionDeniedError:
        raise PermissionDenied from None
    except StaleVersionError as error:
        model_admin.message_user(request, error.message, messages.ERROR)
        return HttpResponseRedirect(changelist_url(request))
    model_admin.message_user(
        request,
        f"{state.flag.key} turned {'on' if enabled else 'off'} in {environment.name}.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(changelist_url(request))


def confirmation(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, state: FlagState
) -> HttpResponse:
    """The page asking "Turn new-checkout on in Production?"."""
    enabled = not state.enabled
    question = f"Turn {state.flag.key} {'on' if enabled else 'off'} in {state.environment.name}?"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": question,
        "question": question,
        "state": state,
        "flag": state.flag,
        "environment": state.environment,
        "enabled": enabled,
        "rule_count": state.rules.count(),
        "cancel_url": changelist_url(request),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "flags/toggle_confirm.html", context)
