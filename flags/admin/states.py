"""A flag in one environment: on/off, off variant, prerequisites, rules and the default serve.

The page reads in evaluation order: the switch and the off variant, the prerequisites, the rules
(read and edited in place, see ``rules_panel``), then what everyone else gets. Every change on the
page (the state's fields, a prerequisite, a rule action or a rule's form) is saved in one
transaction, with the reason given, and only if the state has not changed since the page was
loaded.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from django.contrib import admin, messages
from django.contrib.admin import SimpleListFilter
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import capabilities, selectors, services, words
from ..errors import FlagShipError
from ..models import FlagState, Prerequisite
from . import promote, proposals, revert, rules_panel
from .base import (
    FlagShipAdmin,
    actor,
    attach_errors,
    can_change_environment,
    is_revert,
    refusal_text,
    require_reason,
    row,
)
from .forms import FlagStateForm, PrerequisiteForm

# What a rule action did, said once the page is shown again.
_done: WeakKeyDictionary[HttpRequest, str] = WeakKeyDictionary()
# Requests whose change is being proposed: whether the page's change went through (saved).
_proposing: WeakKeyDictionary[HttpRequest, bool] = WeakKeyDictionary()


class EnvironmentPermissionMixin:
    """Inline permissions follow the parent's environment (protected needs release managers)."""

    def environment_allows(self, request: HttpRequest, obj: Any) -> bool:
        """Whether the parent object's environment may be changed by this person."""
        state = getattr(obj, "state", obj)
        if not isinstance(state, FlagState):
            return True
        return can_change_environment(request.user, state.environment)


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


class EnvironmentFilter(SimpleListFilter):
    """States of one environment of a project ("Demo shop · Production")."""

    title = "environment"
    parameter_name = "environment"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Every environment this person may see, by project and order."""
        hidden = not capabilities.may_manage(request.user)
        return [
            (str(environment.pk), f"{environment.project.name} · {environment.name}")
            for environment in selectors.environment_list()
            if not (hidden and environment.project.system)
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The chosen environment's states."""
        value = self.value()
        return queryset.filter(environment_id=int(value)) if value and value.isdigit() else queryset


@admin.register(FlagState)
class FlagStateAdmin(FlagShipAdmin[FlagState]):
    """One flag in one environment; created with the flag, never added or deleted by hand."""

    project_path = "flag__project"

    form = FlagStateForm
    inlines = [PrerequisiteInline]
    list_display = ("flag", "environment_badge", "state_badge", "default_serve_text", "version")
    list_filter = ("environment__project", EnvironmentFilter, "enabled")
    list_select_related = ("flag", "environment__project", "off_variant")
    search_fields = ("flag__key", "flag__name")
    readonly_fields = ("flag_link", "environment_badge", "default_serve_text")

    def get_fieldsets(self, request: HttpRequest, obj: FlagState | None = None) -> Any:
        """The switch first, what everyone else gets last; the rules go between (template)."""
        serve = "default_serve"
        switch = ["flag_link", "environment_badge", "enabled", "off_variant", "version"]
        if obj is not None and not self.has_change_permission(request, obj):
            serve = "default_serve_text"
        elif (
            obj is not None
            and obj.enabled
            and selectors.dependents_in(obj.flag_id, obj.environment_id)
        ):
            switch.insert(3, "confirm_off")
        return [
            (None, {"fields": switch}),
            ("Anyone else (no rule matched)", {"fields": [serve]}),
        ]

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

    def get_urls(self) -> list[URLPattern]:
        """The revert (preview, then one change) before the catch-all object URLs."""
        wrap = self.admin_site.admin_view
        return [
            path("<int:state_id>/revert/", wrap(self.revert_view), name="flags_flagstate_revert"),
            path(
                "<int:state_id>/promote/", wrap(self.promote_view), name="flags_flagstate_promote"
            ),
            *super().get_urls(),
        ]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The page; in an environment taking change requests, saving proposes (no change).

        The page's whole save (the state's fields, prerequisites, the rule action or rule form)
        runs inside ``services.proposing``: the change request holds what it would have written.
        """
        state = self.get_object(request, object_id) if object_id else None
        if (
            request.method != "POST"
            or state is None
            or not proposals.proposes(state.environment)
            or not self.has_change_permission(request, state)
        ):
            return super().changeform_view(request, object_id, form_url, extra_context)
        state_url = reverse("admin:flags_flagstate_change", args=[state.pk])
        _proposing[request] = False
        try:
            with services.proposing(
                environment=state.environment,
                actor=actor(request),
                title=proposals.posted_title(request, proposals.default_title(state)),
                description=proposals.description(request),
            ) as result:
                response = super().changeform_view(request, object_id, form_url, extra_context)
        except (FlagShipError, ValidationError) as error:
            self.message_user(request, f"Not proposed: {refusal_text(error)}", messages.ERROR)
            return HttpResponseRedirect(state_url)
        finally:
            saved = _proposing.pop(request, False)
        if not saved:
            return response  # the form again, with what was refused
        return proposals.outcome(self, request, result.change_request, state_url)

    def message_user(  # Django's signature
        self,
        request: HttpRequest,
        message: Any,
        level: int | str = messages.INFO,
        extra_tags: str = "",
        fail_silently: bool = False,
    ) -> None:
        """While proposing, "saved" messages are not said: nothing was saved, it was proposed."""
        if request in _proposing and level == messages.SUCCESS:
            return
        super().message_user(request, message, level, extra_tags, fail_silently)

    def revert_view(self, request: HttpRequest, state_id: int) -> HttpResponse:
        """Back to a moment of the flag's timeline (see flags.admin.revert)."""
        return revert.revert_view(self, request, state_id)

    def promote_view(self, request: HttpRequest, state_id: int) -> HttpResponse:
        """Another environment's targeting, previewed then applied (see flags.admin.promote)."""
        return promote.promote_view(self, request, state_id)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A state's history is its flag's timeline, in its environment."""
        state = self.get_object(request, object_id)
        if state is None:
            return HttpResponseRedirect(reverse("admin:flags_flagstate_changelist"))
        return HttpResponseRedirect(revert.timeline_url(state))

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Reverting one version of the state alone would leave its rules: revert the whole."""
        url = reverse("admin:flags_flagstate_revert", args=[object_id])
        return HttpResponseRedirect(f"{url}?at=flagstate:{version_id}")

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> FlagState | None:
        """With its flag, environment, project and off variant (the whole page reads them)."""
        queryset = self.get_queryset(request).select_related(
            "flag__project", "environment__project", "off_variant"
        )
        try:
            return queryset.get(pk=int(object_id))
        except (ValueError, FlagState.DoesNotExist):
            return None

    def get_formset_kwargs(
        self, request: HttpRequest, obj: FlagState, inline: Any, prefix: str
    ) -> dict[str, Any]:
        """Prerequisite rows offer the flags of the same project, with their variants."""
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, PrerequisiteInline):
            kwargs["form_kwargs"] = {"candidates": selectors.prerequisite_candidates(obj)}
        return kwargs

    def render_change_form(  # noqa: PLR0917  # Django's signature
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: FlagState | None = None,
    ) -> HttpResponse:
        """The page, with its rules panel and what the state serves, in words."""
        if obj is not None:
            rules = list(selectors.state_rules(obj))
            refusal = rules_panel.refusal_for_editor(self.refusal(request))
            context["rules_panel"] = rules_panel.panel(
                request,
                obj,
                rules=rules,
                can_change=self.has_change_permission(request, obj),
                refusal=refusal,
            )
            context["summary"] = words.state_summary(
                enabled=obj.enabled,
                off_variant=obj.off_variant.key,
                rules=[selectors.rule_outline(rule) for rule in rules],
                default_serve=obj.default_serve,
            )
            context |= proposals.context(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def attach_refusal(self, form: BaseForm, refusal: ValidationError) -> None:
        """A refusal about the rule's own fields is shown in the rule; the top says where."""
        if rules_panel.refusal_for_editor(refusal) is not None:
            form.add_error(None, "The rule was not saved: see the errors in the rule below.")
            return
        attach_errors(form, refusal)

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
        changed = set(form.changed_data) - {"version", "reason", "confirm_off"}
        acting = rules_panel.changes(request, obj)
        if not changed and not acting and not is_revert(request):
            return
        require_reason(request, [obj.environment])
        expected = None if is_revert(request) else form.cleaned_data.get("version")
        if acting:
            services.flag_state_lock(state=obj, expected_version=expected)
        if not changed and not is_revert(request):
            return
        services.flag_state_update(
            state=obj,
            actor=actor(request),
            expected_version=expected,
            enabled=obj.enabled,
            off_variant=obj.off_variant,
            default_serve=obj.default_serve,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Prerequisites, then the posted rule action or rule, through services."""
        state = form.instance
        for formset in formsets:
            formset.save(commit=False)  # the objects to create, change and delete
            if formset.model is Prerequisite:
                if formset.has_changed():
                    require_reason(request, [state.environment])
                self._save_prerequisites(request, state, formset)
        if rules_panel.posted(request):
            _done[request] = rules_panel.apply(request, state)

    def response_change(self, request: HttpRequest, obj: FlagState) -> HttpResponse:
        """After a rule's button, back to the rules saying what was done; else as usual."""
        if request in _proposing:
            _proposing[request] = True  # saved: the change request is made of it
        done = _done.get(request)
        if not rules_panel.pressed(request):
            if done:
                self.message_user(request, done, messages.SUCCESS)
            return super().response_change(request, obj)
        if done:
            self.message_user(request, done, messages.SUCCESS)
        url = reverse("admin:flags_flagstate_change", args=[obj.pk])
        return HttpResponseRedirect(f"{url}#rules")

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
