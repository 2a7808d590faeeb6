"""Reverting a flag in one environment to a moment of its timeline: a preview, then one change.

``/admin/flags/flagstate/<id>/revert/?at=<model>:<history id>`` shows the whole difference between
the state now and right after that history entry (switch, off variant, prerequisites, each rule
with its conditions, default serve), side by side as the comparison of environments shows them,
with a reason field. Confirming applies it through ``services.flag_state_restore`` (one
transaction, one version) only if the state has not changed since the preview was shown; the
revert is itself on the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from .. import services
from ..errors import FlagShipError
from ..history import as_of
from ..history.feed import AUDITED, historical
from ..history.recording import reason
from ..models import FlagState, Segment
from . import proposals
from .base import (
    can_change_environment,
    missing_reason,
    reason_required,
    refusal_text,
    require_visible,
)
from .compare import differing_parts, flag_rows


@dataclass(frozen=True)
class Moment:
    """A column of the preview: the state now, or after the revert."""

    key: str
    name: str


def moment_of(at: str) -> datetime:
    """The date of the history row ``<model>:<history id>`` (404 when there is none)."""
    label, _, history_id = at.partition(":")
    if label not in AUDITED or not history_id.isdigit():
        raise Http404("No such moment in the history.")
    date = (
        historical(label)
        ._default_manager.filter(history_id=int(history_id))
        .values_list("history_date", flat=True)
        .first()
    )
    if not isinstance(date, datetime):
        raise Http404("No such moment in the history.")
    return date


def timeline_url(state: FlagState) -> str:
    """The flag's timeline, in this state's environment."""
    url = reverse("admin:flags_flag_history", args=[state.flag_id])
    return f"{url}?environment={state.environment_id}"


def revert_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, state_id: int
) -> HttpResponse:
    """The preview (GET) and the revert itself (POST, from the preview's form)."""
    state = get_object_or_404(
        FlagState.objects.select_related("flag__project", "environment__project", "off_variant"),
        pk=state_id,
    )
    if not can_change_environment(request.user, state.environment):
        raise PermissionDenied
    require_visible(request, state.environment.project)
    at = request.GET.get("at", "")
    moment = moment_of(at)
    config = as_of.state_as_of(state, moment)
    if config is None:
        model_admin.message_user(
            request, f"{state} did not exist yet at that moment.", messages.WARNING
        )
        return HttpResponseRedirect(timeline_url(state))
    problem = ""
    if request.method == "POST":
        given = request.POST.get("reason", "").strip()
        version = request.POST.get("version", "")
        if not given and reason_required(state.environment):
            problem = missing_reason(state.environment)
        elif proposals.proposes(state.environment):
            when = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
            try:
                with services.proposing(
                    environment=state.environment,
                    actor=request.user,
                    title=proposals.posted_title(
                        request, f"Revert {state.flag.key} in {state.environment.name} to {when}"
                    ),
                    description=given,
                ) as result:
                    services.flag_state_restore(
                        state=state,
                        config=config,
                        actor=request.user,
                        expected_version=int(version) if version.isdigit() else None,
                    )
            except (FlagShipError, ValidationError) as error:
                problem = f"Not proposed: {refusal_text(error)}"
            else:
                return proposals.outcome(
                    model_admin, request, result.change_request, timeline_url(state)
                )
        else:
            try:
                with reason(given):
                    services.flag_state_restore(
                        state=state,
                        config=config,
                        actor=request.user,
                        expected_version=int(version) if version.isdigit() else None,
                    )
            except (FlagShipError, ValidationError) as error:
                problem = f"Not reverted: {refusal_text(error)}"
            else:
                when = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
                model_admin.message_user(
                    request,
                    f"Reverted {state.flag.key} in {state.environment.name} to {when}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(timeline_url(state))
    return _preview(
        model_admin, request, state=state, config=config, moment=moment, problem=problem
    )


def _preview(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    *,
    state: FlagState,
    config: as_of.StateConfig,
    moment: datetime,
    problem: str,
) -> HttpResponse:
    now = as_of.current(state)
    documents = [now.document(state), config.document(state)]
    for document in documents:
        for rule in document.get("rules", []):
            rule.pop("id", None)  # a rule created again is the same rule to the person
    columns = [Moment("now", "Now"), Moment("after", "After the revert")]
    names = dict(
        Segment.objects.filter(project_id=state.flag.project_id).values_list("key", "name")
    )
    question = f"Revert {state.flag.key} in {state.environment.name} to {moment:%Y-%m-%d %H:%M}?"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": question,
        "state": state,
        "flag": state.flag,
        "environment": state.environment,
        "moment": moment,
        "columns": columns,
        "rows": flag_rows(columns, documents, names),
        "same": not differing_parts(documents),
        "problem": problem,
        "reason_required": reason_required(state.environment),
        "cancel_url": timeline_url(state),
        "opts": model_admin.model._meta,
        "proposes": proposals.proposes(state.environment),
        "title_field": proposals.TITLE_FIELD,
        "default_title": f"Revert {state.flag.key} in {state.environment.name} to "
        f"{timezone.localtime(moment):%Y-%m-%d %H:%M}",
    }
    return TemplateResponse(request, "flags/revert_preview.html", context)
