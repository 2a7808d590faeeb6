"""A flag in one environment: on/off, off variant, default serve, rules and prerequisites."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import selectors, services, words
from ..forms import FlagStateForm, PrerequisiteForm
from ..models import FlagState, Prerequisite, Rule
from ..words import rollout_in_words
from .base import FlagShipAdmin, actor, can_change_environment, is_revert, row


def conditions_in_words(rule: Rule) -> str:
    """Conditions in words: "country is one of DE, FR and NOT email ends with @example.com"."""
    return words.conditions_in_words(
        [condition.as_document() for condition in rule.conditions.all()]
    )


class EnvironmentPermissionMixin:
    """Inline permissions follow the parent's environment (protected needs release managers)."""

    def environment_allows(self, request: HttpRequest, obj: Any) -> bool:
        """Whether the parent object's environment may be changed by this person."""
        state = getattr(obj, "state", obj)
        if not isinstance(state, FlagState):
            return True
        return can_change_environment(request.user, state.environment)


class RuleInline(EnvironmentPermissionMixin, admin.TabularInline[Rule, FlagState]):
    """The state's rules in order, summarised, each linking to its page; order is editable."""

    model = Rule
    fields = ("order", "rule_link", "conditions_text", "segments_text", "rollout_text", "serves")
    readonly_fields = ("rule_link", "conditions_text", "segments_text", "rollout_text", "serves")
    extra = 0
    verbose_name_plural = "targeting rules (the first that matches serves)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        """With conditions and segments prefetched, in evaluation order."""
        return (
            super()
            .get_queryset(request)
            .order_by("order", "id")
            .prefetch_related("conditions", "segments")
        )

    def has_add_permission(self, request: HttpRequest, obj: FlagState | None) -> bool:  # type: ignore[override]  # inlines take the parent (the stubs ignore it too)
        """Rules are added on their own page (the "Add a targeting rule" button)."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: FlagState | None = None) -> bool:
        """Reordering needs the environment's permission."""
        return super().has_change_permission(request, obj) and self.environment_allows(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: FlagState | None = None) -> bool:
        """Deleting needs the environment's permission."""
        return super().has_delete_permission(request, obj) and self.environment_allows(request, obj)

    @admin.display(description="rule")
    def rule_link(self, obj: Rule) -> SafeString:
        """The rule's description, linking to its page."""
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:flags_rule_change", args=[obj.pk]), obj
        )

    @admin.display(description="conditions")
    def conditions_text(self, obj: Rule) -> str:
        """Every condition, in words."""
        return conditions_in_words(obj)

    @admin.display(description="segments")
    def segments_text(self, obj: Rule) -> str:
        """The segments users must be in."""
        return ", ".join(segment.name for segment in obj.segments.all()) or "—"

    @admin.display(description="rollout")
    def rollout_text(self, obj: Rule) -> str:
        """The share of matching users."""
        return rollout_in_words(obj.rollout)

    @admin.display(description="serves")
    def serves(self, obj: Rule) -> str:
        """What matching users get."""
        return obj.serve_display()


class PrerequisiteInline(EnvironmentPermissionMixin, admin.TabularInline[Prerequisite, FlagState]):
    """Flags that must hold first: a parent of the same project, and which of its variants."""

    model = Prerequisite
    form = PrerequisiteForm
    fields = ("flag", "variants")
    extra = 0
    verbose_name_plural = "prerequisites (all must hold, else the off variant is served)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Prerequisite]:
        """With the parent flag."""
        return super().get_queryset(request).select_related("flag")

    def has_add_permission(self, request: HttpRequest, obj: FlagState | None) -> bool:  # type: ignore[override]  # inlines take the parent (the stubs ignore it too)
        """Adding needs the environment's permission."""
        return super().has_add_permission(request, obj) and self.environment_allows(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: FlagState | None = None) -> bool:
        """Changing needs the environment's permission."""
        return super().has_change_permission(request, obj) and self.environment_allows(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: FlagState | None = None) -> bool:
        """Removing needs the environment's permission."""
        return super().has_delete_permission(request, obj) and self.environment_allows(request, obj)


@admin.register(FlagState)
class FlagStateAdmin(FlagShipAdmin[FlagState]):
    """One flag in one environment; created with the flag, never added or deleted by hand."""

    form = FlagStateForm
    inlines = [RuleInline, PrerequisiteInline]
    list_display = ("flag", "environment_badge", "state_badge", "default_serve_text", "version")
    list_filter = ("environment__project", "environment__key", "enabled")
    list_select_related = ("flag", "environment__project")
    search_fields = ("flag__key", "flag__name")
    readonly_fields = ("flag_link", "environment_badge", "default_serve_text")

    def get_fieldsets(self, request: HttpRequest, obj: FlagState | None = None) -> Any:
        """Who may not change it sees the default serve in words."""
        serve = "default_serve"
        if obj is not None and not self.has_change_permission(request, obj):
            serve = "default_serve_text"
        fields = ["flag_link", "environment_badge", "enabled", "off_variant", serve, "version"]
        return [(None, {"fields": fields})]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """States are created with their flag or environment."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: FlagState | None = None) -> bool:
        """A flag has a state in every environment of its project."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: FlagState | None = None) -> bool:
        """Protected environments need the release-manager permission."""
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or can_change_environment(request.user, obj.environment)

    def get_formset_kwargs(
        self, request: HttpRequest, obj: FlagState, inline: Any, prefix: str
    ) -> dict[str, Any]:
        """Prerequisite rows offer the flags of the same project, with their variants."""
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, PrerequisiteInline):
            kwargs["form_kwargs"] = {"candidates": selectors.prerequisite_candidates(obj)}
        return kwargs

    @admin.display(description="flag")
    def flag_link(self, obj: FlagState) -> SafeString:
        """The flag, linking to its page."""
        return format_html(
            '<a href="{}">{}</a> — {}',
            reverse("admin:flags_flag_change", args=[obj.flag_id]),
            obj.flag.key,
            obj.flag.name,
        )

    @admin.display(description="environment", ordering="environment__order")
    def environment_badge(self, obj: FlagState) -> SafeString:
        """The environment with its colour (and a lock when protected)."""
        return format_html(
            '<i class="fs-dot" style="background:{}"></i>{} ({}){}',
            obj.environment.color,
            obj.environment.name,
            obj.environment.project.name,
            " — protected" if obj.environment.protected else "",
        )

    @admin.display(description="state", ordering="enabled")
    def state_badge(self, obj: FlagState) -> SafeString:
        """On or off."""
        return format_html(
            '<span class="fs-state {}">{}</span>',
            "fs-on" if obj.enabled else "fs-off",
            "On" if obj.enabled else "Off",
        )

    @admin.display(description="default serve")
    def default_serve_text(self, obj: FlagState) -> str:
        """The default serve in words."""
        return obj.default_serve_display()

    def save_model(self, request: HttpRequest, obj: FlagState, form: Any, change: bool) -> None:
        """Through flag_state_update, refused if the state changed since the page was loaded."""
        changed = set(form.changed_data) - {"version"}
        if not changed and not is_revert(request):
            return
        expected = None if is_revert(request) else form.cleaned_data.get("version")
        services.flag_state_update(
            state=obj,
            actor=actor(request),
            expected_version=expected,
            enabled=obj.enabled,
            off_variant=obj.off_variant,
            default_serve=obj.default_serve,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Rules (order, deletion) and prerequisites through services."""
        state = form.instance
        for formset in formsets:
            formset.save(commit=False)  # the objects to create, change and delete
            if formset.model is Rule:
                self._save_rules(request, state, formset)
            elif formset.model is Prerequisite:
                self._save_prerequisites(request, state, formset)

    def _save_rules(self, request: HttpRequest, state: FlagState, formset: Any) -> None:
        for rule in formset.deleted_objects:
            services.rule_delete(rule=rule, actor=actor(request))
        if not formset.changed_objects:
            return
        deleted = {rule.pk for rule in formset.deleted_objects}
        kept = [form.instance for form in formset.initial_forms if form.instance.pk not in deleted]
        # The new positions people typed, ties kept in their previous order.
        ordered = sorted(enumerate(kept), key=lambda pair: (pair[1].order, pair[0]))
        services.rules_reorder(
            state=state, rule_ids=[rule.pk for _, rule in ordered], actor=actor(request)
        )

    def _save_prerequisites(self, request: HttpRequest, state: FlagState, formset: Any) -> None:
        for prerequisite in formset.deleted_objects:
            services.prerequisite_remove(prerequisite=prerequisite, actor=actor(request))
        # There is no prerequisite_update: a changed one is removed and added again.
        for prerequisite, _changed in formset.changed_objects:
            stored = Prerequisite.objects.select_related("state").get(pk=prerequisite.pk)
            services.prerequisite_remove(prerequisite=stored, actor=actor(request))
        changed = [prerequisite for prerequisite, _ in formset.changed_objects]
        for prerequisite in [*changed, *formset.new_objects]:
            with row(f"Prerequisite {prerequisite.flag.key}"):
                services.prerequisite_add(
                    state=state,
                    parent=prerequisite.flag,
                    variants=prerequisite.variants,
                    actor=actor(request),
                )
