"""Bulk actions of the flag list: object by object through services, reporting what was skipped.

Each flag is its own transaction (the services are atomic), so one refusal does not undo the
others; history records every change with the person who made it, and the reason they gave.
Turning flags on or off in a protected environment, or off where other live flags require them,
asks first on a page naming those flags (as the toggle does); someone who may not change the
environment is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import selectors, services
from ..errors import FlagShipError
from ..history.recording import reason
from ..models import Environment, Flag
from . import proposals
from .base import can_change_environment, missing_reason, reason_required, refusal_text


@dataclass
class Report:
    """What an action did, and what it skipped and why, per flag."""

    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def run(self, flag: Flag, change: Callable[[], object]) -> None:
        """Apply ``change`` to ``flag``, recording a refusal as a skip."""
        try:
            change()
        except (FlagShipError, ValidationError) as error:
            self.skipped.append((flag.key, refusal_text(error)))
        else:
            self.done.append(flag.key)

    def send(self, model_admin: admin.ModelAdmin[Any], request: HttpRequest, done: str) -> None:
        """One success message for what was done, one warning per skipped flag."""
        if self.done:
            model_admin.message_user(
                request, done.format(flags=", ".join(self.done)), messages.SUCCESS
            )
        for key, why in self.skipped:
            model_admin.message_user(request, f"Skipped {key}: {why}", messages.WARNING)


def _ordered(queryset: QuerySet[Flag]) -> QuerySet[Flag]:
    return queryset.select_related("project").order_by("key")


@admin.action(description="Archive selected flags", permissions=["change"])
def archive_flags(
    model_admin: admin.ModelAdmin[Flag], request: HttpRequest, queryset: QuerySet[Flag]
) -> None:
    """Archive each flag (refused while another live flag depends on it)."""
    report = Report()
    for flag in _ordered(queryset):
        if flag.archived:
            report.skipped.append((flag.key, "already archived."))
            continue
        report.run(flag, partial(services.flag_archive, flag=flag, actor=request.user))
    report.send(model_admin, request, "Archived {flags}.")


@admin.action(description="Unarchive selected flags", permissions=["change"])
def unarchive_flags(
    model_admin: admin.ModelAdmin[Flag], request: HttpRequest, queryset: QuerySet[Flag]
) -> None:
    """Bring each archived flag back."""
    report = Report()
    for flag in _ordered(queryset):
        if not flag.archived:
            report.skipped.append((flag.key, "not archived."))
            continue
        report.run(flag, partial(services.flag_unarchive, flag=flag, actor=request.user))
    report.send(model_admin, request, "Unarchived {flags}.")


def _toggle_all(
    model_admin: admin.ModelAdmin[Flag],
    request: HttpRequest,
    queryset: QuerySet[Flag],
    *,
    enabled: bool,
) -> HttpResponse | None:
    word = "on" if enabled else "off"
    environment = _chosen_environment(request)
    if environment is None:
        model_admin.message_user(
            request,
            f"Choose the environment to turn the flags {word} in, then run the action again.",
            messages.ERROR,
        )
        return None
    if not can_change_environment(request.user, environment):
        model_admin.message_user(
            request,
            f"Nothing changed: {environment.name} is protected, and only release managers may "
            "change flags there.",
            messages.ERROR,
        )
        return None
    states = {
        state.flag_id: state
        for state in environment.states.filter(flag__in=queryset).select_related(
            "environment__project", "flag"
        )
    }
    flags = list(_ordered(queryset))
    required_by = {} if enabled else _required_by(flags, environment, states)
    given = request.POST.get("reason", "").strip()
    confirmed = request.POST.get("confirmed") == "yes"
    reason_missing = confirmed and not given and reason_required(environment)
    if (environment.protected or required_by) and (not confirmed or reason_missing):
        return _confirmation(
            model_admin,
            request,
            flags=flags,
            environment=environment,
            enabled=enabled,
            required_by=required_by,
            reason_missing=reason_missing,
        )
    report = Report()
    if proposals.proposes(environment):
        return _propose_all(model_admin, request, report, flags, states, environment, enabled)
    with reason(given):
        _toggle_each(request, report, flags, states, environment, enabled)
    report.send(model_admin, request, f"Turned {word} in {environment.name}: {{flags}}.")
    return None


def _toggle_each(  # noqa: PLR0917  # the action's state, passed on
    request: HttpRequest,
    report: Report,
    flags: list[Flag],
    states: dict[int, Any],
    environment: Environment,
    enabled: bool,
) -> None:
    word = "on" if enabled else "off"
    for flag in flags:
        state = states.get(flag.pk)
        if state is None:
            report.skipped.append((flag.key, f"not a flag of {environment.project.name}."))
        elif state.enabled == enabled:
            report.skipped.append((flag.key, f"already {word} in {environment.name}."))
        else:
            toggle = partial(services.flag_toggle, state=state, enabled=enabled, actor=request.user)
            report.run(flag, toggle)


def _propose_all(  # noqa: PLR0917  # the action's state, passed on
    model_admin: admin.ModelAdmin[Flag],
    request: HttpRequest,
    report: Report,
    flags: list[Flag],
    states: dict[int, Any],
    environment: Environment,
    enabled: bool,
) -> HttpResponse | None:
    """The flags toggled as one change request (environments taking change requests)."""
    word = "on" if enabled else "off"
    count = f"{len(flags)} flag{'s' if len(flags) != 1 else ''}"
    title = proposals.posted_title(request, f"Switch {word} {count} in {environment.name}")
    try:
        with services.proposing(
            environment=environment,
            actor=request.user,
            title=title,
            description=proposals.description(request),
        ) as result:
            _toggle_each(request, report, flags, states, environment, enabled)
    except (FlagShipError, ValidationError) as error:
        model_admin.message_user(request, f"Not proposed: {refusal_text(error)}", messages.ERROR)
        return None
    for key, why in report.skipped:
        model_admin.message_user(request, f"Skipped {key}: {why}", messages.WARNING)
    return proposals.outcome(
        model_admin, request, result.change_request, reverse("admin:flags_flag_changelist")
    )


def _required_by(
    flags: list[Flag], environment: Environment, states: dict[int, Any]
) -> dict[str, list[str]]:
    """For each flag that would go off: the live flags requiring it in ``environment``."""
    required = {}
    for flag in flags:
        state = states.get(flag.pk)
        if state is not None and state.enabled:
            dependents = selectors.dependents_in(flag.pk, environment.pk)
            if dependents:
                required[flag.key] = dependents
    return required


def _confirmation(
    model_admin: admin.ModelAdmin[Flag],
    request: HttpRequest,
    *,
    flags: list[Flag],
    environment: Environment,
    enabled: bool,
    required_by: dict[str, list[str]],
    reason_missing: bool,
) -> TemplateResponse:
    """Ask before turning flags on or off in a protected environment, or off where required."""
    word = "on" if enabled else "off"
    question = (
        f"Turn {len(flags)} flag{'s' if len(flags) != 1 else ''} {word} in {environment.name}?"
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": question,
        "question": question,
        "flags": flags,
        "environment": environment,
        "enabled": enabled,
        "action": request.POST.get("action", ""),
        "required_by": required_by,
        "reason_required": reason_required(environment),
        "reason_error": missing_reason(environment) if reason_missing else "",
        "opts": model_admin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "proposes": proposals.proposes(environment),
        "title_field": proposals.TITLE_FIELD,
        "default_title": f"Switch {word} {len(flags)} flag{'s' if len(flags) != 1 else ''} "
        f"in {environment.name}",
    }
    return TemplateResponse(request, "flags/bulk_toggle_confirm.html", context)


def _chosen_environment(request: HttpRequest) -> Environment | None:
    chosen = request.POST.get("environment", "")
    if not chosen.isdigit():
        return None
    return Environment.objects.select_related("project").filter(pk=int(chosen)).first()


@admin.action(
    description="Turn selected flags on in the chosen environment", permissions=["toggle"]
)
def turn_on(
    model_admin: admin.ModelAdmin[Flag], request: HttpRequest, queryset: QuerySet[Flag]
) -> HttpResponse | None:
    """Switch each flag on (protected environments: release managers, after a confirmation)."""
    return _toggle_all(model_admin, request, queryset, enabled=True)


@admin.action(
    description="Turn selected flags off in the chosen environment", permissions=["toggle"]
)
def turn_off(
    model_admin: admin.ModelAdmin[Flag], request: HttpRequest, queryset: QuerySet[Flag]
) -> HttpResponse | None:
    """Switch each flag off; asks first in protected environments or when others require one."""
    return _toggle_all(model_admin, request, queryset, enabled=False)
