"""Promoting into a flag state from another environment: a preview, then one change.

``/admin/flags/flagstate/<id>/promote/?source=<environment key>`` shows the state now and as it
would be with the source environment's targeting (rules, prerequisites, default serve, off
variant; the switch only with ``switch=1``), side by side as the comparison of environments shows
them, with a reason field. Confirming promotes through ``services.flags_promote`` (one
transaction, one version) only if the state has not changed since the preview was shown. Into an
environment that takes change requests, confirming proposes the promotion
(``services.promotion_propose``, with a title) and leads to the new change request.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import services
from ..errors import FlagShipError
from ..history.recording import reason
from ..models import Environment, FlagState, Segment
from . import proposals
from .base import (
    can_change_environment,
    missing_reason,
    reason_required,
    refusal_text,
    require_visible,
)
from .compare import differing_parts, flag_rows
from .revert import Moment


def promote_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, state_id: int
) -> HttpResponse:
    """The preview (GET) and the promotion itself (POST, from the preview's form)."""
    state = get_object_or_404(
        FlagState.objects.select_related("flag__project", "environment__project"), pk=state_id
    )
    if not can_change_environment(request.user, state.environment):
        raise PermissionDenied
    require_visible(request, state.environment.project)
    others = list(
        Environment.objects.filter(project_id=state.flag.project_id)
        .exclude(pk=state.environment_id)
        .order_by("order", "key")
    )
    source = next((e for e in others if e.key == request.GET.get("source")), None)
    include_switch = request.GET.get("switch") == "1"
    page_url = reverse("admin:flags_flagstate_promote", args=[state.pk])
    state_url = reverse("admin:flags_flagstate_change", args=[state.pk])
    problem = ""
    if source is not None and request.method == "POST":
        given = request.POST.get("reason", "").strip()
        version = request.POST.get("version", "")
        if not given and reason_required(state.environment):
            problem = missing_reason(state.environment)
        elif proposals.proposes(state.environment):
            try:
                with transaction.atomic():
                    services.flag_state_lock(
                        state=state, expected_version=int(version) if version.isdigit() else None
                    )
                    proposed = services.promotion_propose(
                        flags=[state.flag],
                        source=source,
                        target=state.environment,
                        actor=request.user,
                        include_switch=include_switch,
                        title=proposals.posted_title(
                            request,
                            f"Promote {state.flag.key} from {source.name} to "
                            f"{state.environment.name}",
                        ),
                        description=given,
                    )
            except (FlagShipError, ValidationError) as error:
                problem = f"Not proposed: {refusal_text(error)}"
            else:
                return proposals.outcome(model_admin, request, proposed, state_url)
        else:
            try:
                with transaction.atomic(), reason(given or None):
                    services.flag_state_lock(
                        state=state, expected_version=int(version) if version.isdigit() else None
                    )
                    promoted = services.flags_promote(
                        flags=[state.flag],
                        source=source,
                        target=state.environment,
                        actor=request.user,
                        include_switch=include_switch,
                    )
            except (FlagShipError, ValidationError) as error:
                problem = f"Not promoted: {refusal_text(error)}"
            else:
                done = "Promoted" if promoted else "Nothing to promote:"
                model_admin.message_user(
                    request,
                    f"{done} {state.flag.key} from {source.name} to {state.environment.name}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(state_url)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Promote {state.flag.key} into {state.environment.name}",
        "state": state,
        "flag": state.flag,
        "environment": state.environment,
        "sources": others,
        "source": source,
        "include_switch": include_switch,
        "page_url": page_url,
        "cancel_url": state_url,
        "problem": problem,
        "reason_required": reason_required(state.environment),
        "opts": model_admin.model._meta,
        "proposes": proposals.proposes(state.environment),
        "title_field": proposals.TITLE_FIELD,
    }
    if source is not None:
        [preview] = services.promotion_preview(
            flags=[state.flag],
            source=source,
            target=state.environment,
            include_switch=include_switch,
        )
        documents = [dict(preview.before or {}), dict(preview.after)]
        for document in documents:
            for rule in document.get("rules", []):
                rule.pop("id", None)  # a rule promoted in place is the same rule to the person
        columns = [Moment("now", "Now"), Moment("after", f"With {source.name}'s targeting")]
        names = dict(
            Segment.objects.filter(project_id=state.flag.project_id).values_list("key", "name")
        )
        context |= {
            "columns": columns,
            "rows": flag_rows(columns, documents, names),
            "same": not differing_parts(documents),
        }
    return TemplateResponse(request, "flags/promote_preview.html", context)
