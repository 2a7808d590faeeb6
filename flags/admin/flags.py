"""Flags: the list (see flag_list), the flag page with its variants, and the URLs hung on it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Field, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import charts, conf, selectors, services
from ..models import Flag, FlagState, Variant
from ..services.flags import EVALUATED_FLAG_FIELDS, UPDATABLE_FLAG_FIELDS
from . import compare, evaluate, evaluations, proposals, schedules, timeline, toggle
from .base import FlagShipAdmin, actor, adopt, require_reason, row, visible
from .flag_actions import archive_flags, turn_off, turn_on, unarchive_flags
from .flag_list import (
    ArchivedFilter,
    ProjectFilter,
    StaleFilter,
    TagFilter,
    environment_column,
    environment_filter,
    list_scope,
    remember_page,
    stale_column,
)
from .forms import FlagActionForm, FlagForm, VariantForm


class VariantInline(admin.TabularInline[Variant, Flag]):
    """A flag's variants; a boolean flag's on/off are fixed."""

    model = Variant
    form = VariantForm
    fields = ("key", "name", "value")

    def get_extra(self, request: HttpRequest, obj: Flag | None = None, **kwargs: Any) -> int:
        """Empty rows for new variants (none for boolean flags)."""
        if obj is None:
            return 3
        return 0 if obj.kind == Flag.Kind.BOOLEAN else 1

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        """The values of on and off never change."""
        if obj is not None and obj.kind == Flag.Kind.BOOLEAN:
            return ("key", "value")
        return ()

    def has_add_permission(self, request: HttpRequest, obj: Flag | None) -> bool:  # type: ignore[override]  # inlines take the parent (the stubs ignore it too)
        """A boolean flag has exactly on and off."""
        if obj is not None and obj.kind == Flag.Kind.BOOLEAN:
            return False
        return super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Flag | None = None) -> bool:
        """A boolean flag has exactly on and off."""
        if obj is not None and obj.kind == Flag.Kind.BOOLEAN:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Flag)
class FlagAdmin(FlagShipAdmin[Flag]):
    """Every flag of a project, and its state in every environment, at a glance."""

    project_path = "project"

    form = FlagForm
    actions = [archive_flags, unarchive_flags, turn_on, turn_off]
    action_form = FlagActionForm
    inlines = [VariantInline]
    filter_horizontal = ("tags",)
    list_display_links = ("key",)
    search_fields = ("key", "name", "description")
    search_help_text = "Search by key, name or description."
    ordering = ("key",)
    # "N results (M total)" would count every flag of every project on each filtered page.
    show_full_result_count = False

    # --- The list ---------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        """Flags with their states and tags prefetched (a constant number of queries)."""
        flags = (
            selectors.flag_list()
            .select_related("staleness")  # the stale badges (flags.staleness)
            .order_by(*self.get_ordering(request))
        )
        return visible(request, flags, self.project_path)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Flag | None:
        """The flag of its page, with its states and tags (read there), not the list's outlines.

        Django's own, on another queryset: the list's (:meth:`get_queryset`) would also read
        every state's rules and the flag's dependents, which the page reads its own way.
        """
        flags = Flag.objects.select_related("project").prefetch_related("tags", "states")
        queryset = visible(request, flags, self.project_path)
        field = Flag._meta.get_field(from_field or "id")
        assert isinstance(field, Field)  # noqa: S101  # a column: Django checked to_field
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (Flag.DoesNotExist, ValidationError, ValueError):
            return None

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        """Key, name, one column per environment of the chosen project, tags and lifecycle."""
        columns = [environment_column(request, env) for env in list_scope(request).environments]
        return [
            "key",
            "name",
            *columns,
            "tag_badges",
            "lifecycle_short",
            stale_column(request),
        ]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        """Project (one at a time), archived, lifecycle, tag, and on/off per environment."""
        per_environment = [environment_filter(env) for env in list_scope(request).environments]
        return [
            ProjectFilter,
            ArchivedFilter,
            "lifecycle",
            StaleFilter,
            ("tags", TagFilter),
            *per_environment,
        ]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """The list, whose page's flags are judged stale or not once (the badges)."""
        changelist = super().get_changelist_instance(request)
        remember_page(request, changelist.result_list)
        return changelist

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> Any:
        """Page size from ``flags.conf.admin_flags_per_page()``, read per request."""
        return super().get_paginator(
            request, queryset, conf.admin_flags_per_page(), orphans, allow_empty_first_page
        )

    def action_checkbox(self, obj: Flag) -> SafeString:
        """The row checkbox, joined to the action form by id.

        The table holds toggle forms and forms cannot nest, so the action form ends above it.
        Formatted by hand: ``forms.CheckboxInput.render`` runs a template per row (a millisecond
        each, the largest share of a 100-row page); this is its HTML, attribute for attribute.
        """
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'form="changelist-form" aria-label="Select {} for an action">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            obj.key,
        )

    @admin.display(description="tags")
    def tag_badges(self, obj: Flag) -> SafeString:
        """The flag's tags as coloured badges."""
        return format_html_join(
            " ",
            '<span class="fs-tag" style="border-color:{}">{}</span>',
            ((tag.color, tag.name) for tag in selectors.listed_tags(obj)),
        )

    @admin.display(description="lifecycle", ordering="lifecycle")
    def lifecycle_short(self, obj: Flag) -> str:
        """The lifecycle's name without its explanation."""
        return str(Flag.Lifecycle(obj.lifecycle).label).split(" (", 1)[0]

    def has_toggle_permission(self, request: HttpRequest) -> bool:
        """Whether the person may turn flags on and off at all (used by the bulk actions)."""
        return bool(request.user.has_perm("flags.change_flagstate"))

    # --- The flag page ----------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Flag | None = None) -> Any:
        """What the flag is, who owns it, how it is rolled out, and (once it exists) its states."""
        about = ["project", "key", "name", "kind", "description"]
        advanced = ["client_visible", "salt"]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": about}),
            ("Ownership", {"fields": ["tags", "owner", "lifecycle"]}),
        ]
        if obj is not None:
            advanced.append("archived")
            fieldsets.append(("Environments", {"fields": ["states_overview"]}))
            fieldsets.append(("Evaluations", {"fields": ["evaluations_overview"]}))
            fieldsets.append(("Scheduled changes", {"fields": ["schedules_overview"]}))
            if selectors.flag_dependents(obj):
                required = ["required_by", "confirm_dependents"]
                fieldsets.append(("Flags that require this one", {"fields": required}))
        fieldsets.append(("Advanced", {"fields": advanced, "classes": ["collapse"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        """Project, key and kind are the contract with the code: fixed once created."""
        if obj is None:
            return ()
        return (
            "project",
            "key",
            "kind",
            "states_overview",
            "evaluations_overview",
            "schedules_overview",
            "required_by",
        )

    def has_delete_permission(self, request: HttpRequest, obj: Flag | None = None) -> bool:
        """Only archived flags may be deleted: SDKs no longer receive them."""
        if obj is not None and not obj.archived:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="state per environment")
    def states_overview(self, obj: Flag) -> SafeString:
        """What each environment serves, in words, and a link to each environment's page.

        Where change requests are pending for a state, a link to them follows.
        """
        pending = proposals.pending_by_state(obj)
        rows = format_html_join(
            "",
            '<tr><th><i class="fs-dot" style="background:{}"></i>{}</th>'
            '<td><span class="fs-state {}">{}</span> <span class="fs-serves-inline{}" '
            'data-testid="summary-{}">{}</span></td><td>{}</td>'
            '<td><a href="{}" data-testid="state-link-{}">{}</a>{}</td></tr>',
            (
                (
                    state.environment.color,
                    state.environment.name,
                    "fs-on" if state.enabled else "fs-off",
                    "On" if state.enabled else "Off",
                    " fs-warning" if summary.warning else "",
                    state.environment.key,
                    summary.text.removeprefix("On · ").removeprefix("Off"),
                    summary.detail,
                    reverse("admin:flags_flagstate_change", args=[state.pk]),
                    state.environment.key,
                    "Targeting →",
                    _pending_link(state, pending.get(state.pk, 0)),
                )
                for state, summary in selectors.flag_state_summaries(obj)
            ),
        )
        return format_html(
            '<div class="fs-scroll"><table class="fs-states"><thead><tr><th>environment</th>'
            "<th>state</th><th>in words</th><th></th></tr></thead><tbody>{}</tbody></table></div>",
            rows,
        )

    @admin.display(description="evaluations")
    def evaluations_overview(self, obj: Flag) -> SafeString:
        """Per environment: when last evaluated and how often in 7 days; whether it is stale.

        Then the flag's evaluations per day over 14 days, every environment summed (an SVG chart).
        """
        chart = charts.bar_chart(
            charts.daily_evaluations(flag=obj),
            label=f"Evaluations of {obj.key} per day",
            testid="flag-evaluations-chart",
        )
        return format_html(
            '{}<p class="fs-chart-caption">Evaluations per day (14 days, UTC, every environment)'
            "</p><p>{}</p>",
            evaluations.flag_overview(obj),
            chart,
        )

    @admin.display(description="scheduled")
    def schedules_overview(self, obj: Flag) -> SafeString:
        """The flag's latest scheduled changes, and links to schedule or cancel one."""
        return schedules.overview(obj)

    @admin.display(description="required by")
    def required_by(self, obj: Flag) -> str:
        """The live flags with this one as a prerequisite, and where."""
        return "; ".join(
            f"{key} (in {', '.join(environments)})"
            for key, environments in selectors.flag_dependents(obj).items()
        )

    def get_formset_kwargs(
        self, request: HttpRequest, obj: Flag, inline: Any, prefix: str
    ) -> dict[str, Any]:
        """Variant rows read their values according to the flag's kind."""
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        kwargs["form_kwargs"] = {"flag": obj}
        return kwargs

    def save_model(self, request: HttpRequest, obj: Flag, form: Any, change: bool) -> None:
        """Update through services; a new flag is created with its variants in save_related."""
        if not change:
            return
        # The service compares with what is stored (a new salt moves the ruleset version), so it
        # gets the stored flag and the form's (or the reverted version's) values.
        current = Flag.objects.get(pk=obj.pk)
        changes = {name: getattr(obj, name) for name in UPDATABLE_FLAG_FIELDS}
        everywhere = any(
            getattr(current, name) != changes[name] for name in EVALUATED_FLAG_FIELDS
        ) or (obj.archived != current.archived)
        if everywhere:
            require_reason(request, selectors.environment_list(obj.project))
        tags = form.cleaned_data.get("tags")
        services.flag_update(flag=current, actor=actor(request), tags=tags, **changes)
        if obj.archived and not current.archived:
            services.flag_archive(flag=current, actor=actor(request))
        elif current.archived and not obj.archived:
            services.flag_unarchive(flag=current, actor=actor(request))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Variants through services (tags were saved by flag_create / flag_update)."""
        variants = next((fs for fs in formsets if fs.model is Variant), None)
        if variants is not None:
            variants.save(commit=False)  # the objects to create, change and delete
        if not change:
            self._create(request, form.instance, form.cleaned_data, variants)
        elif variants is not None:
            changed = bool(
                variants.new_objects or variants.changed_objects or variants.deleted_objects
            )
            if changed:
                self._check_variants_change(request, form)
            self._save_variants(request, form.instance, variants)

    def _check_variants_change(self, request: HttpRequest, form: Any) -> None:
        """Variants reach every environment: a reason where required, a "yes" where required by."""
        flag: Flag = form.instance
        require_reason(request, selectors.environment_list(flag.project))
        dependents = selectors.flag_dependents(flag)
        if dependents and not form.cleaned_data.get("confirm_dependents"):
            names = ", ".join(dependents)
            verb = "requires" if len(dependents) == 1 else "require"
            raise ValidationError(
                {
                    "confirm_dependents": f"{names} {verb} {flag.key}: changing its variants "
                    "changes what they get. Tick the box to confirm."
                },
                code="required_by",
            )

    def _create(self, request: HttpRequest, obj: Flag, data: dict[str, Any], variants: Any) -> None:
        new = list(variants.new_objects) if variants is not None else []
        if obj.kind == Flag.Kind.BOOLEAN and new:
            raise ValidationError(
                "A boolean flag always has exactly on (true) and off (false): leave the variant "
                "rows empty.",
                code="invalid_variant",
            )
        flag = services.flag_create(
            project=obj.project,
            key=obj.key,
            name=obj.name,
            kind=obj.kind,
            variants=[(variant.key, variant.value) for variant in new] or None,
            description=obj.description,
            tags=data.get("tags") or (),
            owner=obj.owner,
            lifecycle=obj.lifecycle,
            client_visible=obj.client_visible,
            salt=obj.salt,
            actor=actor(request),
        )
        for variant in new:
            if variant.name:
                services.variant_update(
                    variant=flag.variants.get(key=variant.key),
                    name=variant.name,
                    actor=actor(request),
                )
        adopt(obj, flag)

    def _save_variants(self, request: HttpRequest, flag: Flag, variants: Any) -> None:
        for variant in variants.new_objects:
            with row(f"Variant {variant.key}"):
                services.variant_create(
                    flag=flag,
                    key=variant.key,
                    value=variant.value,
                    name=variant.name,
                    actor=actor(request),
                )
        for variant, changed in variants.changed_objects:
            with row(f"Variant {variant.key}"):
                services.variant_update(
                    variant=variant,
                    actor=actor(request),
                    value=variant.value if "value" in changed else None,
                    name=variant.name if "name" in changed else None,
                )
        for variant in variants.deleted_objects:
            with row(f"Variant {variant.key}"):
                services.variant_delete(variant=variant, actor=actor(request))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """A flag's parts (states, rules, variants, counts) go with it on the flag's permission.

        Django would ask for the permission to delete each related object, and flag states have
        none (a flag has a state in every environment while it exists).
        """
        to_delete, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return to_delete, counts, set(), protected

    def delete_model(self, request: HttpRequest, obj: Flag) -> None:
        """Delete an archived flag through ``flag_delete``."""
        services.flag_delete(flag=obj, actor=actor(request))

    # --- URLs -------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        """Toggle, "Evaluate as" and the comparisons, before the catch-all object URLs."""
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:flag_id>/toggle/<int:environment_id>/",
                wrap(self.toggle_view),
                name="flags_flag_toggle",
            ),
            path("evaluate/", wrap(self.evaluate_view), name="flags_flag_evaluate"),
            path("<int:flag_id>/compare/", wrap(self.compare_view), name="flags_flag_compare"),
            path("compare/", wrap(self.compare_all_view), name="flags_flag_compare_all"),
            *super().get_urls(),
        ]

    def toggle_view(self, request: HttpRequest, flag_id: int, environment_id: int) -> HttpResponse:
        """Turn a flag on or off in one environment (see flags.admin.toggle)."""
        return toggle.toggle_view(self, request, flag_id, environment_id)

    def evaluate_view(self, request: HttpRequest) -> HttpResponse:
        """What does a user with this context get? (see flags.admin.evaluate)."""
        return evaluate.evaluate_view(self, request)

    def compare_view(self, request: HttpRequest, flag_id: int) -> HttpResponse:
        """One flag in every environment side by side (see flags.admin.compare)."""
        return compare.compare_view(self, request, flag_id)

    def compare_all_view(self, request: HttpRequest) -> HttpResponse:
        """Every flag of a project in every environment (see flags.admin.compare)."""
        return compare.compare_all_view(self, request)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The flag's timeline (see flags.admin.timeline), its "History" button's page."""
        if not object_id.isdigit():
            raise Http404
        return timeline.timeline_view(self, request, int(object_id))

    def render_change_form(  # noqa: PLR0917  # Django's signature
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Flag | None = None,
    ) -> HttpResponse:
        """The flag's page, with its latest changes (the top of its timeline)."""
        if obj is not None:
            context["timeline"] = timeline.latest(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


def _pending_link(state: FlagState, count: int) -> SafeString:
    """The link to a state's pending change requests ("· 2 change requests pending"), or ""."""
    if not count:
        return format_html("{}", "")
    return format_html(
        ' · <a href="{}" data-testid="pending-{}">{} change request{} pending</a>',
        proposals.pending_url(state),
        state.environment.key,
        count,
        "s" if count != 1 else "",
    )
