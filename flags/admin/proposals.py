"""Changing flags in an environment that takes change requests: the admin proposes instead.

Every admin path that changes a flag state (the state's page with its rules panel and
prerequisites, the toggle, a promotion, a schedule) runs the very service calls it makes
elsewhere inside ``services.proposing`` (or ``promotion_propose`` / ``schedule_propose``), with
the title the person gave and their reason as the description. Nothing is written to the flags:
the person lands on the new change request's page, told how many approvals it needs.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from ..models import ChangeRequest, Environment, Flag, FlagState

TITLE_FIELD = "change_request_title"


def proposes(environment: Environment) -> bool:
    """Whether a person's change in ``environment`` becomes a change request."""
    return environment.needs_change_requests


def change_request_url(change_request: ChangeRequest) -> str:
    """The change request's page in the admin."""
    return reverse("admin:flags_changerequest_change", args=[change_request.pk])


def default_title(state: FlagState, *, enabled: bool | None = None) -> str:
    """A change request's title until the person writes one: "Switch on x in Production"."""
    where = f"{state.flag.key} in {state.environment.name}"
    if enabled is None:
        return f"Change {where}"
    return f"Switch {'on' if enabled else 'off'} {where}"


def posted_title(request: HttpRequest, default: str) -> str:
    """The title typed in the form, else ``default``."""
    return request.POST.get(TITLE_FIELD, "").strip()[:200] or default


def description(request: HttpRequest) -> str:
    """The reason given with the change: the change request's description."""
    return request.POST.get("reason", "").strip()


def approvals_needed(change_request: ChangeRequest) -> str:
    """What it still needs, in words ("needs 2 approvals")."""
    count = change_request.environment.required_approvals
    return f"needs {count} approval{'s' if count != 1 else ''}"


def outcome(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    change_request: ChangeRequest | None,
    unchanged_url: str,
) -> HttpResponseRedirect:
    """To the new change request with "Proposed as change request #N", or back: nothing changed."""
    if change_request is None:
        model_admin.message_user(
            request, "Nothing changed: there is nothing to propose.", messages.INFO
        )
        return HttpResponseRedirect(unchanged_url)
    model_admin.message_user(
        request,
        f"Proposed as change request #{change_request.pk}: {approvals_needed(change_request)}.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(change_request_url(change_request))


def pending_for(state: FlagState) -> int:
    """How many open change requests change (or schedule) this flag state."""
    return (
        ChangeRequest.objects.filter(
            about(state.pk), environment_id=state.environment_id, status=ChangeRequest.Status.OPEN
        )
        .distinct()
        .count()
    )


def about(state_id: int) -> Q:
    """Change requests that change or schedule the flag state ``state_id``."""
    return Q(proposed_states__state_id=state_id) | Q(schedule__state=state_id)


def pending_by_state(flag: Flag) -> dict[int, int]:
    """For the flag's page: open change requests per flag state id (one query)."""
    rows = (
        ChangeRequest.objects.filter(
            status=ChangeRequest.Status.OPEN, proposed_states__state__flag=flag
        )
        .order_by()
        .values("proposed_states__state_id")
        .annotate(count=Count("pk", distinct=True))
    )
    return {row["proposed_states__state_id"]: row["count"] for row in rows}


def pending_url(state: FlagState) -> str:
    """The change request list, filtered to this state's open ones."""
    url = reverse("admin:flags_changerequest_changelist")
    return f"{url}?status__exact=open&state={state.pk}"


def context(state: FlagState) -> dict[str, Any]:
    """What a state's page says of change requests (the banner, the title field, the link)."""
    if not proposes(state.environment):
        return {"proposes": False}
    return {
        "proposes": True,
        "title_field": TITLE_FIELD,
        "default_title": default_title(state),
        "required_approvals": state.environment.required_approvals,
        "pending_count": pending_for(state),
        "pending_url": pending_url(state),
    }
