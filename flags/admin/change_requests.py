"""Change requests in the admin: the list, the page, and the reviewers' and authors' buttons.

A change request is never edited: its page shows what it proposes (per flag state, the diff from
the version it was proposed against to what it proposes, and what the state is now when it moved
on since), a scheduled change's steps, the reviews with their comments and its history. The
buttons are forms posting to ``<id>/<action>/`` (approve, reject, apply, rebase, withdraw); each
is shown only to whoever may use it, calls its service, and a refusal of the service (not enough
approvals, a conflict, closed already, not allowed) is said as an error message, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import SimpleListFilter
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, re_path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import services
from ..errors import FlagShipError
from ..formats import format_percentage
from ..models import ChangeRequest, ChangeRequestReview, FlagState, ProposedState, Segment
from ..services.change_requests import APPROVE, approval_count, conflicts, diff
from .base import FlagShipAdmin, NeverEdited, actor, refusal_text
from .compare import Row, flag_rows
from .proposals import about
from .revert import Moment

ACTIONS = ("approve", "reject", "apply", "rebase", "withdraw")
COMMENT_FIELD = "comment"


def allowed_actions(user: Any, change_request: ChangeRequest) -> list[str]:
    """The buttons ``user`` gets on ``change_request`` (the services decide again on POST)."""
    if change_request.status != ChangeRequest.Status.OPEN:
        return []
    author = user.pk is not None and user.pk == change_request.author_id
    reviewer = bool(user.has_perm(APPROVE))
    allowed = []
    if reviewer and (not author or change_request.environment.allow_self_approval):
        allowed.append("approve")
    if reviewer:
        allowed.append("reject")
    if author or reviewer:
        moved = bool(conflicts(change_request))
        if moved:
            allowed.append("rebase")
        elif approval_count(change_request) >= change_request.environment.required_approvals:
            allowed.append("apply")
    if author:
        allowed.append("withdraw")
    return allowed


@dataclass(frozen=True)
class ProposedItem:
    """One flag state of the change request, as its page shows it."""

    item: ProposedState
    flag_key: str
    state_url: str
    columns: list[Moment]
    rows: list[Row]
    moved: bool
    version: int


def proposed_items(change_request: ChangeRequest) -> list[ProposedItem]:
    """Each proposed flag state: base → proposed (→ now, when the state moved on since)."""
    items = []
    names = dict(
        Segment.objects.filter(project_id=change_request.environment.project_id).values_list(
            "key", "name"
        )
    )
    for item in change_request.proposed_states.select_related(
        "state__flag", "state__environment"
    ).order_by("id"):
        base, proposed, now = diff(item)
        columns = [
            Moment("base", f"Before (version {item.base_version})"),
            Moment("proposed", "Proposed"),
        ]
        documents = [base, proposed]
        if now is not None:
            columns.append(Moment("now", f"Now (version {item.state.version})"))
            documents.append(now)
        for document in documents:
            for rule in document.get("rules", []):
                rule.pop("id", None)  # the same rule to the person, before and after
        items.append(
            ProposedItem(
                item=item,
                flag_key=item.state.flag.key,
                state_url=reverse("admin:flags_flagstate_change", args=[item.state_id]),
                columns=columns,
                rows=flag_rows(columns, documents, names),
                moved=now is not None,
                version=item.state.version,
            )
        )
    return items


@dataclass(frozen=True)
class PlannedStep:
    """A step of a proposed schedule, in words."""

    at: str
    what: str


def schedule_steps(change_request: ChangeRequest) -> tuple[FlagState | None, list[PlannedStep]]:
    """A scheduled change's flag state and steps (``None, []`` for another kind)."""
    plan = change_request.schedule
    if not plan:
        return None, []
    state = FlagState.objects.select_related("flag", "environment").filter(pk=plan["state"]).first()
    steps = []
    for step in plan.get("steps", []):
        at = timezone.localtime(datetime.fromisoformat(step["at"]))
        if step["action"] == "rollout":
            what = f"serve on to {format_percentage(step.get('percentage') or 0)} %"
        else:
            what = "switch on" if step["action"] == "enable" else "switch off"
        steps.append(PlannedStep(at=at.strftime("%Y-%m-%d %H:%M %Z"), what=what))
    return state, steps


@dataclass(frozen=True)
class Entry:
    """One line of a change request's history: when, who, what."""

    at: datetime
    who: str
    what: str
    comment: str = ""


def history_entries(change_request: ChangeRequest) -> list[Entry]:
    """Its history, oldest first: proposed, each review (and reviews cleared), closed."""
    entries = []
    previous: str | None = None
    for row in change_request.history.select_related("history_user").order_by("history_id"):
        who = str(row.history_user or "—")
        if row.history_type == "+":
            entries.append(Entry(row.history_date, who, "Proposed"))
        elif row.status != previous:
            entries.append(Entry(row.history_date, who, row.get_status_display()))
        previous = row.status
    reviews = ChangeRequestReview.history.filter(change_request_id=change_request.pk)
    for row in reviews.select_related("history_user", "reviewer").order_by("history_id"):
        who = str(row.history_user or row.reviewer or "—")
        decision = ChangeRequestReview.Decision(row.decision).label
        if row.history_type == "-":
            entries.append(Entry(row.history_date, who, f"Cleared {row.reviewer}'s review"))
        else:
            entries.append(Entry(row.history_date, who, str(decision), row.comment))
    return sorted(entries, key=lambda entry: entry.at)


class StateFilter(SimpleListFilter):
    """Change requests of one flag state (the state's page links to its pending ones)."""

    title = "flag"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Only the state asked for (offered from its page, not listed)."""
        value = self.value()
        if not value or not value.isdigit():
            return []
        state = FlagState.objects.select_related("flag", "environment").filter(pk=value).first()
        return [] if state is None else [(value, f"{state.flag.key} in {state.environment.name}")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Those changing or scheduling the state."""
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(about(int(value))).distinct()
        return queryset


@admin.register(ChangeRequest)
class ChangeRequestAdmin(NeverEdited, FlagShipAdmin[ChangeRequest]):
    """Change requests: read, reviewed, applied, rebased or withdrawn; never edited by hand.

    Proposed from the flag's own pages; the record stays (withdraw or reject one instead).
    """

    project_path = "environment__project"

    change_form_template = "admin/flags/changerequest/change_form.html"
    list_display = (
        "number",
        "status_badge",
        "environment",
        "kind",
        "title",
        "author",
        "approvals",
        "created_at",
    )
    list_display_links = ("number", "title")
    list_filter = ("status", "environment", StateFilter)
    list_select_related = ("environment__project", "author")
    search_fields = ("title", "description")
    fields = (
        "title",
        "environment",
        "kind",
        "status_badge",
        "approvals",
        "author",
        "description",
        "created_at",
        "updated_at",
        "closed_by",
        "closed_at",
    )
    readonly_fields = fields

    def get_urls(self) -> list[URLPattern]:
        """The buttons' views before the catch-all object URLs."""
        wrap = self.admin_site.admin_view
        return [
            re_path(
                rf"^(?P<change_request_id>[0-9]+)/(?P<action>{'|'.join(ACTIONS)})/$",
                wrap(self.decide_view),
                name="flags_changerequest_decide",
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChangeRequest]:
        """With the environment, its project and the people."""
        return (
            super()
            .get_queryset(request)
            .select_related("environment__project", "author", "closed_by")
        )

    @admin.display(description="#", ordering="id")
    def number(self, obj: ChangeRequest) -> str:
        """#12."""
        return f"#{obj.pk}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ChangeRequest) -> SafeString:
        """Its status, coloured."""
        return format_html(
            '<span class="fs-cr-status fs-cr-status--{}" data-testid="status">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description="approvals")
    def approvals(self, obj: ChangeRequest) -> str:
        """The approvals that count, of those its environment requires ("1 of 2")."""
        return f"{approval_count(obj)} of {obj.environment.required_approvals}"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The page: its fields, what it changes, the reviews, the history and the buttons."""
        change_request = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if change_request is not None:
            state, steps = schedule_steps(change_request)
            context |= {
                "items": proposed_items(change_request),
                "schedule_state": state,
                "schedule_steps": steps,
                "reviews": list(change_request.reviews.select_related("reviewer")),
                "history_entries": history_entries(change_request),
                "approval_text": self.approvals(change_request),
                "actions": allowed_actions(request.user, change_request),
                "conflicts": conflicts(change_request),
                "approvals_missing": max(
                    0,
                    change_request.environment.required_approvals - approval_count(change_request),
                ),
                "comment_field": COMMENT_FIELD,
                "decide_url": {
                    action: reverse(
                        "admin:flags_changerequest_decide", args=[change_request.pk, action]
                    )
                    for action in ACTIONS
                },
            }
        return super().change_view(request, object_id, form_url, context)

    def decide_view(
        self, request: HttpRequest, change_request_id: str, action: str
    ) -> HttpResponse:
        """One button: POST only; the service decides, a refusal is an error message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        change_request = get_object_or_404(
            ChangeRequest.objects.select_related("environment"), pk=change_request_id
        )
        if not self.has_view_permission(request, change_request):
            raise PermissionDenied
        url = reverse("admin:flags_changerequest_change", args=[change_request.pk])
        comment = request.POST.get(COMMENT_FIELD, "")
        person = actor(request)
        try:
            if action == "approve":
                services.change_request_approve(
                    change_request=change_request, actor=person, comment=comment
                )
                done = "Approved"
            elif action == "reject":
                services.change_request_reject(
                    change_request=change_request, actor=person, comment=comment
                )
                done = "Rejected"
            elif action == "apply":
                services.change_request_apply(change_request=change_request, actor=person)
                done = "Applied"
            elif action == "rebase":
                services.change_request_rebase(change_request=change_request, actor=person)
                done = "Rebased (its approvals were cleared: it needs reviewing again)"
            else:
                services.change_request_withdraw(change_request=change_request, actor=person)
                done = "Withdrew"
        except (FlagShipError, ValidationError) as error:
            self.message_user(request, refusal_text(error), messages.ERROR)
            return HttpResponseRedirect(url)
        self.message_user(request, f"{done} change request #{change_request.pk}.", messages.SUCCESS)
        return HttpResponseRedirect(url)
