"""Scheduled changes in the admin: the list (with "Cancel"), the form, the flag page's panel.

Steps are typed one per line, "when what": ``2030-03-04 09:00 on``, ``2030-03-05 09:00 25 %``,
``2030-03-06 09:00 off``; a time without an offset is in the site's time zone. A ramp is several
percentage lines. Scheduling, like cancelling, goes through ``flags.services.schedules``. Into an
environment that takes change requests, scheduling proposes (``services.schedule_propose``): the
schedule is created when the change request is applied.
"""

from __future__ import annotations

import re
from typing import Any
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import services
from ..errors import FlagShipError
from ..formats import parse_percentage
from ..models import ChangeRequest, Flag, FlagState, ScheduledChange, ScheduledStep
from ..services.schedules import StepSpec
from . import proposals
from .base import FlagShipAdmin, actor, adopt, refusal_text

# A schedule proposed (not created) by this request: the change request it became.
_proposed: WeakKeyDictionary[HttpRequest, ChangeRequest] = WeakKeyDictionary()

STEP_LINE = re.compile(r"^(?P<when>.*\S)\s+(?P<what>on|off|[0-9.]+\s*%)$", re.IGNORECASE)
ON_FLAG_PAGE = 10


def parse_steps(text: str) -> list[StepSpec]:
    """Lines "when what" as steps; what is ``on``, ``off`` or a percentage such as ``25 %``."""
    steps = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = STEP_LINE.match(line)
        when = parse_datetime(match["when"]) if match else None
        if match is None or when is None:
            raise ValidationError(
                f"Line {number}: write a time and on, off or a percentage, for example "
                "2030-03-04 09:00 25 %.",
                code="invalid",
            )
        if timezone.is_naive(when):
            when = timezone.make_aware(when)
        what = match["what"].lower()
        if what in ("on", "off"):
            steps.append(StepSpec(at=when, action="enable" if what == "on" else "disable"))
        else:
            try:
                percentage = parse_percentage(what)
            except ValidationError as error:
                raise ValidationError(f"Line {number}: {error.messages[0]}") from None
            steps.append(StepSpec(at=when, action="rollout", percentage=percentage))
    if not steps:
        raise ValidationError("Write at least one step.", code="required")
    return steps


class StateChoiceField(forms.ModelChoiceField[FlagState]):
    """A flag state named "project / flag in Environment"."""

    def label_from_instance(self, obj: FlagState) -> str:
        """The project, the flag and the environment."""
        return f"{obj.flag.project.key} / {obj.flag.key} in {obj.environment.name}"


class ScheduledChangeForm(forms.ModelForm[ScheduledChange]):
    """Which flag in which environment, the steps as lines, and a note."""

    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 50, "data-testid": "steps"}),
        help_text="One step per line: a time and on, off or a percentage served on (boolean "
        "flags), e.g. “2030-03-04 09:00 10 %”. Times without an offset are in the site's time "
        "zone. Several percentages make a ramp.",
    )

    title = forms.CharField(
        required=False,
        max_length=200,
        label="Change request title",
        help_text="Only where the environment takes change requests: scheduling there proposes "
        "the schedule for approval. Left empty, the title names the flag and the first steps.",
    )

    class Meta:
        model = ScheduledChange
        fields = ("state", "note")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "state" in self.fields:
            self.fields["state"] = StateChoiceField(
                queryset=FlagState.objects.select_related("flag__project", "environment").order_by(
                    "flag__project__key", "flag__key", "environment__order"
                ),
                label="Flag in environment",
            )

    def clean_steps(self) -> list[StepSpec]:
        """The typed lines as steps."""
        return parse_steps(self.cleaned_data["steps"])


def steps_in_words(change: ScheduledChange) -> SafeString:
    """Each step: its time, what it does, and where it is (done, late, failed, cancelled)."""
    return format_html_join(
        "",
        '<li data-testid="step-{}">{} — {} · <span class="fs-step-{}">{}</span></li>',
        (
            (
                step.order,
                timezone.localtime(step.at).strftime("%Y-%m-%d %H:%M %Z"),
                step.describe(),
                step.status,
                _status_words(step),
            )
            for step in change.steps.all()
        ),
    )


def _status_words(step: ScheduledStep) -> str:
    words = str(ScheduledStep.Status(step.status).label).lower()
    if step.late_seconds:
        words += f", late by {step.late_seconds // 60} min"
    if step.status == ScheduledStep.Status.FAILED and step.error:
        words += f": {step.error}"
    return words


def flag_changes(flag: Flag) -> QuerySet[ScheduledChange]:
    """A flag's scheduled changes, newest first, with their steps (two queries)."""
    return (
        ScheduledChange.objects.filter(state__flag=flag)
        .select_related("state__environment", "created_by")
        .prefetch_related(Prefetch("steps", queryset=ScheduledStep.objects.order_by("order")))
        .order_by("-id")
    )


def overview(flag: Flag) -> SafeString:
    """The flag page's panel: its latest scheduled changes and where to schedule or cancel."""
    changes = list(flag_changes(flag)[:ON_FLAG_PAGE])
    rows = format_html_join(
        "",
        '<tr data-testid="schedule-{}"><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td>'
        "<td><ul>{}</ul></td><td>{}</td></tr>",
        (
            (
                change.pk,
                reverse("admin:flags_scheduledchange_change", args=[change.pk]),
                change.pk,
                change.state.environment.name,
                change.status,
                steps_in_words(change),
                change.note,
            )
            for change in changes
        ),
    )
    add = reverse("admin:flags_scheduledchange_add")
    listed = reverse("admin:flags_scheduledchange_changelist")
    links = format_html_join(
        " · ",
        '<a href="{}?state={}" data-testid="schedule-in-{}">Schedule in {}</a>',
        (
            (add, state.pk, state.environment.key, state.environment.name)
            for state in flag.states.select_related("environment").order_by("environment__order")
        ),
    )
    table = (
        format_html(
            '<table class="fs-schedules"><thead><tr><th></th><th>environment</th><th>status</th>'
            "<th>steps</th><th>note</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        if changes
        else format_html("<p>{}</p>", "Nothing scheduled.")
    )
    return format_html(
        '{}<p>{} · <a href="{}?state__flag__id__exact={}">All, and cancel</a></p>',
        table,
        links,
        listed,
        flag.pk,
    )


@admin.action(description="Cancel the selected scheduled changes", permissions=["delete"])
def cancel_changes(
    model_admin: ScheduledChangeAdmin, request: HttpRequest, queryset: QuerySet[ScheduledChange]
) -> None:
    """Cancel each one through ``schedule_cancel``; refusals are reported, one by one."""
    cancelled = 0
    for change in queryset:
        try:
            services.schedule_cancel(change=change, actor=actor(request))
            cancelled += 1
        except FlagShipError as error:
            model_admin.message_user(request, f"{change}: {refusal_text(error)}", messages.ERROR)
    if cancelled:
        model_admin.message_user(request, f"Cancelled {cancelled} scheduled change(s).")


@admin.register(ScheduledChange)
class ScheduledChangeAdmin(FlagShipAdmin[ScheduledChange]):
    """Scheduled changes: scheduled with a form, read with their steps, cancelled from the list."""

    project_path = "state__flag__project"

    form = ScheduledChangeForm
    actions = [cancel_changes]
    list_display = ("__str__", "flag_key", "environment_name", "status", "steps_summary", "note")
    list_filter = ("state__environment__key", "state__flag__project")
    search_fields = ("state__flag__key", "note")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ScheduledChange]:
        """With their flag, environment, people and steps (a constant number of queries)."""
        return (
            super()
            .get_queryset(request)
            .select_related("state__flag", "state__environment", "created_by", "cancelled_by")
            .prefetch_related(Prefetch("steps", queryset=ScheduledStep.objects.order_by("order")))
        )

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        """The flag page links to its flag's changes."""
        return lookup == "state__flag__id__exact" or super().lookup_allowed(lookup, value, request)

    def get_fields(self, request: HttpRequest, obj: ScheduledChange | None = None) -> Any:
        """A new one: where, steps, note; an existing one: read only, with its steps in words."""
        if obj is None:
            return ["state", "steps", "note", "title"]
        return [
            "state",
            "note",
            "status",
            "steps_list",
            "created_by",
            "created_at",
            "cancelled_by",
            "cancelled_at",
        ]

    def get_readonly_fields(
        self, request: HttpRequest, obj: ScheduledChange | None = None
    ) -> tuple[str, ...]:
        """Nothing of a scheduled change is edited: cancel it and schedule another."""
        if obj is None:
            return ()
        return tuple(self.get_fields(request, obj))

    def has_change_permission(
        self, request: HttpRequest, obj: ScheduledChange | None = None
    ) -> bool:
        """Read only once made (the page shows it; the list cancels it)."""
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(
        self, request: HttpRequest, obj: ScheduledChange | None = None
    ) -> bool:
        """Cancel, never delete one (the record stays); the list's action needs this permission."""
        return obj is None and super().has_delete_permission(request, obj)

    @admin.display(description="flag")
    def flag_key(self, obj: ScheduledChange) -> str:
        """The flag's key."""
        return obj.state.flag.key

    @admin.display(description="environment")
    def environment_name(self, obj: ScheduledChange) -> str:
        """The environment's name."""
        return obj.state.environment.name

    @admin.display(description="steps")
    def steps_summary(self, obj: ScheduledChange) -> SafeString:
        """The steps in words."""
        return format_html("<ul>{}</ul>", steps_in_words(obj))

    @admin.display(description="steps")
    def steps_list(self, obj: ScheduledChange) -> SafeString:
        """The steps in words."""
        return self.steps_summary(obj)

    def save_model(
        self, request: HttpRequest, obj: ScheduledChange, form: Any, change: bool
    ) -> None:
        """Schedule through ``schedule_create`` (protected environments: release managers)."""
        if change:
            return
        state = form.cleaned_data["state"]
        if proposals.proposes(state.environment):
            _proposed[request] = services.schedule_propose(
                state=state,
                steps=form.cleaned_data["steps"],
                actor=actor(request),
                note=form.cleaned_data.get("note", ""),
                title=form.cleaned_data.get("title", ""),
            )
            return
        created = services.schedule_create(
            state=form.cleaned_data["state"],
            steps=form.cleaned_data["steps"],
            actor=actor(request),
            note=form.cleaned_data.get("note", ""),
        )
        adopt(obj, created)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        """No admin log entry for a schedule only proposed (no schedule exists yet)."""
        if request in _proposed:
            return None
        return super().log_addition(request, obj, message)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing to relate to a schedule only proposed."""
        if request in _proposed:
            return
        super().save_related(request, form, formsets, change)

    def response_add(
        self, request: HttpRequest, obj: ScheduledChange, post_url_continue: str | None = None
    ) -> HttpResponse:
        """A proposed schedule leads to its change request."""
        proposed = _proposed.get(request)
        if proposed is None:
            return super().response_add(request, obj, post_url_continue)
        return proposals.outcome(
            self, request, proposed, reverse("admin:flags_scheduledchange_changelist")
        )
