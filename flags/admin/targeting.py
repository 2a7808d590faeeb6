"""Rules and segments, and the conditions both are made of."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import selectors, services
from ..forms import ConditionForm, RuleForm
from ..models import Condition, FlagState, Rule, Segment
from ..services.targeting import ConditionSpec
from ..words import rollout_in_words
from .base import FlagShipAdmin, actor, adopt, can_change_environment, row
from .states import EnvironmentPermissionMixin

# "Save and add another" would lose the flag state a new rule belongs to.
ONE_RULE_AT_A_TIME = {"show_save_and_add_another": False}


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


class RuleConditionInline(EnvironmentPermissionMixin, ConditionInline):
    """A rule's conditions (all must hold)."""

    fk_name = "rule"
    verbose_name_plural = "conditions (all must hold)"

    def has_add_permission(self, request: HttpRequest, obj: Any) -> bool:  # type: ignore[override]  # inlines take the parent (the stubs ignore it too)
        """Protected environments need the release-manager permission."""
        return super().has_add_permission(request, obj) and self.environment_allows(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Protected environments need the release-manager permission."""
        return super().has_change_permission(request, obj) and self.environment_allows(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Protected environments need the release-manager permission."""
        return super().has_delete_permission(request, obj) and self.environment_allows(request, obj)


class SegmentConditionInline(ConditionInline):
    """A segment's conditions (all must hold for a user to be in it)."""

    fk_name = "segment"
    verbose_name_plural = "conditions (all must hold for a user to be in the segment)"


@admin.register(Rule)
class RuleAdmin(FlagShipAdmin[Rule]):
    """A targeting rule: conditions, segments, rollout and what it serves."""

    form = RuleForm
    inlines = [RuleConditionInline]
    list_display = ("__str__", "state", "order", "rollout_text", "serve_text")
    list_filter = ("state__environment__project", "state__environment__key")
    list_select_related = ("state__flag", "state__environment")
    search_fields = ("description", "state__flag__key")

    def flag_state(self, request: HttpRequest, obj: Rule | None) -> FlagState | None:
        """The rule's state, or on the add page the one named by ``?state=``."""
        if obj is not None:
            return obj.state
        chosen = request.GET.get("state", "")
        if not chosen.isdigit():
            return None
        return (
            FlagState.objects.select_related("flag__project", "environment")
            .filter(pk=int(chosen))
            .first()
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A rule is added to one flag state: from that state's page."""
        state = self.flag_state(request, None)
        if state is None:
            self.message_user(
                request,
                "Open a flag's environment and use “Add a targeting rule” there.",
                messages.INFO,
            )
            return HttpResponseRedirect(reverse("admin:flags_flagstate_changelist"))
        if not can_change_environment(request.user, state.environment):
            raise PermissionDenied
        context = {**(extra_context or {}), "flag_state": state, **ONE_RULE_AT_A_TIME}
        return super().add_view(request, form_url, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The page, with its flag state for the banner and the way back."""
        rule = self.get_object(request, object_id)
        state = rule.state if rule is not None else None
        context = {**(extra_context or {}), "flag_state": state, **ONE_RULE_AT_A_TIME}
        return super().change_view(request, object_id, form_url, context)

    def get_form(
        self, request: HttpRequest, obj: Rule | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """The form offers the state's variants and its project's segments."""
        state = self.flag_state(request, obj)
        if state is not None:
            kwargs["form"] = RuleForm.for_state(state)
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Rule | None = None) -> Any:
        """Who may not change the rule sees rollout and serve in words."""
        rollout, serve = "rollout", "serve"
        if obj is not None and not self.has_change_permission(request, obj):
            rollout, serve = "rollout_text", "serve_text"
        state = "state" if obj is None else "state_link"
        return [
            (None, {"fields": [state, "description", "segments"]}),
            ("Who takes part", {"fields": [rollout, "bucket_by"]}),
            ("What they get", {"fields": [serve]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Rule | None = None) -> tuple[str, ...]:
        """The rule stays in its flag state; rollout and serve in words are for reading."""
        shown = ("rollout_text", "serve_text")
        return ("state_link", *shown) if obj is not None else shown

    def has_change_permission(self, request: HttpRequest, obj: Rule | None = None) -> bool:
        """Protected environments need the release-manager permission."""
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or can_change_environment(request.user, obj.state.environment)

    def has_delete_permission(self, request: HttpRequest, obj: Rule | None = None) -> bool:
        """Protected environments need the release-manager permission."""
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or can_change_environment(request.user, obj.state.environment)

    @admin.display(description="flag state")
    def state_link(self, obj: Rule) -> SafeString:
        """The flag and environment, linking back to the state's page."""
        return format_html(
            '<a href="{}">{} in {}</a>',
            reverse("admin:flags_flagstate_change", args=[obj.state_id]),
            obj.state.flag.key,
            obj.state.environment.name,
        )

    @admin.display(description="rollout")
    def rollout_text(self, obj: Rule) -> str:
        """The share of matching users."""
        return rollout_in_words(obj.rollout)

    @admin.display(description="serves")
    def serve_text(self, obj: Rule) -> str:
        """What matching users get, in words."""
        return obj.serve_display()

    def save_model(self, request: HttpRequest, obj: Rule, form: Any, change: bool) -> None:
        """Update through rule_update; a new rule is created with its conditions in save_related."""
        if not change:
            return
        data = form.cleaned_data
        services.rule_update(
            rule=obj,
            actor=actor(request),
            serve=obj.serve,
            segments=data.get("segments"),
            rollout=obj.rollout,
            bucket_by=obj.bucket_by,
            description=obj.description,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Conditions one by one through services (segments went with the rule)."""
        conditions = next(fs for fs in formsets if fs.model is Condition)
        conditions.save(commit=False)  # the objects to create, change and delete
        if change:
            save_conditions(request, conditions, form.instance)
            return
        obj: Rule = form.instance
        rule = services.rule_create(
            state=obj.state,
            serve=obj.serve,
            conditions=[condition_spec(condition) for condition in conditions.new_objects],
            segments=form.cleaned_data.get("segments") or (),
            rollout=obj.rollout,
            bucket_by=obj.bucket_by,
            description=obj.description,
            actor=actor(request),
        )
        adopt(obj, rule)

    def delete_model(self, request: HttpRequest, obj: Rule) -> None:
        """Through rule_delete (the version of its environment moves)."""
        services.rule_delete(rule=obj, actor=actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """One by one through rule_delete."""
        for rule in queryset:
            services.rule_delete(rule=rule, actor=actor(request))

    def response_post_save_add(self, request: HttpRequest, obj: Rule) -> HttpResponseRedirect:
        """Back to the flag state, where the rule takes its place."""
        return HttpResponseRedirect(reverse("admin:flags_flagstate_change", args=[obj.state_id]))

    def response_post_save_change(self, request: HttpRequest, obj: Rule) -> HttpResponseRedirect:
        """Back to the flag state."""
        return HttpResponseRedirect(reverse("admin:flags_flagstate_change", args=[obj.state_id]))


@admin.register(Segment)
class SegmentAdmin(FlagShipAdmin[Segment]):
    """Reusable groups of users; changing one changes every rule that uses it."""

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
