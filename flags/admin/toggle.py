"""Turning a flag on or off in one environment from the flag list.

POST toggles (one click, unprotected environments; or the confirmation form); GET renders the
confirmation page, asked in a protected environment and before turning off a flag that other live
flags require there (the page names them). A one-click POST that needs a confirmation goes to the
page instead. Any other method is 405. Whoever may not change the environment gets 403. The change
always goes through ``services.flag_toggle`` with the person as actor and the reason they gave, so
history records them and the environment's ruleset version moves. In an environment that takes
change requests the confirmation page also asks for a title, and the toggle is proposed
(``services.proposing``): the person lands on the new change request.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
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

from .. import selectors, services
from ..errors import FlagShipError, PermissionDeniedError, StaleVersionError
from ..history.recording import reason
from ..models import FlagState
from . import proposals
from .base import (
    can_change_environment,
    missing_reason,
    reason_required,
    refusal_text,
    require_visible,
)

BOOLEANS = {"true": True, "false": False}


def changelist_url(request: HttpRequest) -> str:
    """The flag list, with the filters it had when the toggle was clicked."""
    url = reverse("admin:flags_flag_changelist")
    filters = request.GET.get("_changelist_filters", "")
    return f"{url}?{filters}" if filters else url


def needs_confirmation(state: FlagState, dependents: list[str]) -> bool:
    """Protected environments ask first, and so does turning off a flag others require."""
    return state.environment.protected or (state.enabled and bool(dependents))


def toggle_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, flag_id: int, environment_id: int
) -> HttpResponse:
    """Toggle one flag in one environment (see the module docstring for the contract)."""
    state = get_object_or_404(
        FlagState.objects.select_related("flag", "environment__project", "off_variant"),
        flag_id=flag_id,
        environment_id=environment_id,
    )
    environment = state.environment
    require_visible(request, environment.project)
    dependents = selectors.dependents_in(state.flag_id, environment.pk)
    asks = needs_confirmation(state, dependents)
    if request.method not in ("GET", "POST") or (request.method == "GET" and not asks):
        return HttpResponseNotAllowed(["GET", "POST"] if asks else ["POST"])
    if not can_change_environment(request.user, environment):
        raise PermissionDenied
    confirmed = request.POST.get("confirmed") == "yes"
    if request.method == "GET" or (asks and not confirmed):
        return confirmation(model_admin, request, state, dependents)
    enabled = BOOLEANS.get(request.POST.get("enabled", ""))
    if enabled is None:
        return HttpResponseBadRequest('"enabled" must be "true" or "false".')
    given = request.POST.get("reason", "").strip()
    if not given and reason_required(environment):
        return confirmation(model_admin, request, state, dependents, reason_missing=True)
    version = request.POST.get("version", "")
    if proposals.proposes(environment):
        return _propose(model_admin, request, state, enabled, version)
    try:
        with reason(given):
            services.flag_toggle(
                state=state,
                enabled=enabled,
                actor=request.user,
                expected_version=int(version) if version.isdigit() else None,
            )
    except PermissionDeniedError:
        raise PermissionDenied from None
    except StaleVersionError as error:
        # Starts with a word: the admin capitalises a message's first letter (a flag key must
        # show exactly as typed).
        word = "on" if enabled else "off"
        detail = error.message[:1].lower() + error.message[1:]
        model_admin.message_user(request, f"Not turned {word}: {detail}", messages.ERROR)
        return HttpResponseRedirect(changelist_url(request))
    model_admin.message_user(
        request,
        f"Turned {state.flag.key} {'on' if enabled else 'off'} in {environment.name}.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(changelist_url(request))


def _propose(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    state: FlagState,
    enabled: bool,
    version: str,
) -> HttpResponse:
    """The toggle as a change request (nothing changes until it is approved and applied)."""
    title = proposals.posted_title(request, proposals.default_title(state, enabled=enabled))
    try:
        with services.proposing(
            environment=state.environment,
            actor=request.user,
            title=title,
            description=proposals.description(request),
        ) as result:
            services.flag_toggle(
                state=state,
                enabled=enabled,
                actor=request.user,
                expected_version=int(version) if version.isdigit() else None,
            )
    except PermissionDeniedError:
        raise PermissionDenied from None
    except (FlagShipError, ValidationError) as error:
        model_admin.message_user(request, f"Not proposed: {refusal_text(error)}", messages.ERROR)
        return HttpResponseRedirect(changelist_url(request))
    return proposals.outcome(model_admin, request, result.change_request, changelist_url(request))


def confirmation(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    state: FlagState,
    dependents: list[str],
    *,
    reason_missing: bool = False,
) -> HttpResponse:
    """The page asking "Turn new-checkout off in Production?", naming the flags that require it."""
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
        "dependents": dependents if not enabled else [],
        "reason_required": reason_required(state.environment),
        "reason_error": missing_reason(state.environment) if reason_missing else "",
        "cancel_url": changelist_url(request),
        "opts": model_admin.model._meta,
        "proposes": proposals.proposes(state.environment),
        "title_field": proposals.TITLE_FIELD,
        "default_title": proposals.default_title(state, enabled=enabled),
    }
    return TemplateResponse(request, "flags/toggle_confirm.html", context)
