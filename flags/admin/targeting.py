"""Rules and segments, and the conditions both are made of."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import selectors, services
from ..models import Condition, FlagState, Rule, Segment
from ..services.targeting import ConditionSpec
from ..words import rollout_in_words
from .base import FlagShipAdmin, actor, adopt, row
from .forms import ConditionForm
from .revert import timeline_url
from .rules_panel import default_position


def condition_spec(condition: Condition) -> ConditionSpec:
    """A condition as the services' ``conditions=`` argument takes it."""
    return {
        "attribute": condition.attribute,
        "operator": condition.operator,
        "values": list(condition.values),
        "negate": condition.negate,
        "case_insensitive": condition.case_insensitive,
    }


def save_conditions(request: HttpRequest, formset: Any, owner: Rule | Segment) -> None:
    """Save a conditions formset one condition at a time through the services."""
    existing = [form.instance.order for form in formset.initial_forms]
    next_order = max(existing, default=-1) + 1
    for condition in formset.deleted_objects:
        services.condition_delete(condition=condition, actor=actor(request))
    for condition, _changed in formset.changed_objects:
        with row(f"Condition “{condition}”"):
            services.condition_save(condition=condition, actor=actor(request))
    for condition in formset.new_objects:
        condition.order = next_order
        next_order += 1
        with row(f"Condition “{condition}”"):
            services.condition_save(condition=condition, actor=actor(request))


class ConditionInline(admin.TabularInline[Condition, Any]):
    """Conditions: attribute, operator (in words), values one per line, NOT, ignore case."""

    model = Condition
    form = ConditionForm
    fields = ("attribute", "operator", "values", "negate", "case_insensitive")
    extra = 1

    def get_queryset(self, request: HttpRequest) -> QuerySet[Condition]:
        """In their stored order."""
        return super().get_queryset(request).order_by("order", "id")


class SegmentConditionInline(ConditionInline):
    """A segment's conditions (all must hold for a user to be in it)."""

    fk_name = "segment"
    verbose_name_plural = "conditions (all must hold for a user to be in the segment)"


@admin.register(Rule)
class RuleAdmin(FlagShipAdmin[Rule]):
    """Every rule, searchable; a rule itself is read and edited on its flag state's page.

    Links to a rule (from "Evaluate as", a segment's usage, history) open that page with the
    rule's form in place; "add" opens it with a new rule at its default position.
    """

    project_path = "state__flag__project"

    list_display = ("__str__", "state", "position", "rollout_text", "serve_text")
    list_filter = ("state__environment__project", "state__environment__key")
    list_select_related = ("state__flag", "state__environment")
    search_fields = ("description", "state__flag__key")

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A rule is added on its flag state's page, in place."""
        chosen = request.GET.get("state", "")
        state = FlagState.objects.filter(pk=int(chosen)).first() if chosen.isdigit() else None
        if state is None:
            self.message_user(
                request,
                "Open a flag's environment and use “Add a rule” there.",
                messages.INFO,
            )
            return HttpResponseRedirect(reverse("admin:flags_flagstate_changelist"))
        url = reverse("admin:flags_flagstate_change", args=[state.pk])
        return HttpResponseRedirect(f"{url}?insert={default_position(state)}#rule-editor")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The rule's form, in place on its flag state's page."""
        rule = self.get_object(request, object_id)
        if rule is None:
            self.message_user(request, "That rule no longer exists.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:flags_rule_changelist"))
        url = reverse("admin:flags_flagstate_change", args=[rule.state_id])
        return HttpResponseRedirect(f"{url}?rule={rule.pk}#rule-editor")

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A rule's history is its flag's timeline, in its environment."""
        rule = self.get_object(request, object_id)
        if rule is None:
            return HttpResponseRedirect(reverse("admin:flags_rule_changelist"))
        return HttpResponseRedirect(timeline_url(rule.state))

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The revert of the rule's environment to that moment, previewed (flags.admin.revert).

        Reverting one rule alone would save it around the services.
        """
        rule = self.get_object(request, object_id)
        state_id = rule.state_id if rule is not None else None
        if state_id is None:
            state_id = (
                Rule.history.model.objects.filter(history_id=int(version_id))
                .values_list("state_id", flat=True)
                .first()
                if version_id.isdigit()
                else None
            )
        if state_id is None:
            return HttpResponseRedirect(reverse("admin:flags_rule_changelist"))
        url = reverse("admin:flags_flagstate_revert", args=[state_id])
        return HttpResponseRedirect(f"{url}?at=rule:{version_id}")

    @admin.display(description="position")
    def position(self, obj: Rule) -> int:
        """1 for the first rule of its state (orders are kept gapless by the services)."""
        return obj.order + 1

    @admin.display(description="rollout")
    def rollout_text(self, obj: Rule) -> str:
        """The share of matching users."""
        return rollout_in_words(obj.rollout)

    @admin.display(description="serves")
    def serve_text(self, obj: Rule) -> str:
        """What matching users get, in words."""
        return obj.serve_display()

    def delete_model(self, request: HttpRequest, obj: Rule) -> None:
        """Through rule_delete (the version of its environment moves)."""
        services.rule_delete(rule=obj, actor=actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """One by one through rule_delete."""
        for rule in queryset:
            services.rule_delete(rule=rule, actor=actor(request))


@admin.register(Segment)
class SegmentAdmin(FlagShipAdmin[Segment]):
    """Reusable groups of users; changing one changes every rule that uses it."""

    project_path = "project"

    inlines = [SegmentConditionInline]
    list_display = ("name", "key", "project")
    list_filter = ("project",)
    list_select_related = ("project",)
    search_fields = ("key", "name", "description")

    def get_fields(self, request: HttpRequest, obj: Segment | None = None) -> tuple[str, ...]:
        """Where it is used is listed once it exists."""
        fields = ("project", "key", "name", "description")
        return (*fields, "usage") if obj is not None else fields

    def get_readonly_fields(
        self, request: HttpRequest, obj: Segment | None = None
    ) -> tuple[str, ...]:
        """Project and key never change once created (rules refer to the key)."""
        return ("project", "key", "usage") if obj is not None else ()

    @admin.display(description="used by")
    def usage(self, obj: Segment) -> SafeString:
        """The rules that use the segment, linked."""
        rules = selectors.segment_usage(obj)
        if not rules:
            return format_html("{}", "no rule yet")
        return format_html_join(
            ", ",
            '<a href="{}">{} in {} ({})</a>',
            (
                (
                    reverse("admin:flags_rule_change", args=[rule.pk]),
                    rule.state.flag.key,
                    rule.state.environment.name,
                    rule,
                )
                for rule in rules
            ),
        )

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        """Rename through segment_update; a new segment is created in save_related."""
        if change:
            services.segment_update(
                segment=obj, actor=actor(request), name=obj.name, description=obj.description
            )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Conditions one by one through services (every rule using the segment re-validated)."""
        conditions = next(fs for fs in formsets if fs.model is Condition)
        conditions.save(commit=False)  # the objects to create, change and delete
        if change:
            save_conditions(request, conditions, form.instance)
            return
        obj: Segment = form.instance
        segment = services.segment_create(
            project=obj.project,
            key=obj.key,
            name=obj.name,
            description=obj.description,
            conditions=[condition_spec(condition) for condition in conditions.new_objects],
            actor=actor(request),
        )
        adopt(obj, segment)

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        """Through segment_delete (refused while a rule uses it)."""
        services.segment_delete(segment=obj, actor=actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """One by one through segment_delete."""
        for segment in queryset:
            services.segment_delete(segment=segment, actor=actor(request))
