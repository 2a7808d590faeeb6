"""Projects, environments and tags in the admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import services
from ..models import Environment, Project, Tag
from .base import FlagShipAdmin, actor, adopt
from .flag_list import PROTECTED_MARK

COLOR_INPUT = forms.TextInput(attrs={"type": "color"})


def color_swatch(color: str, label: str = "") -> SafeString:
    """A coloured dot, optionally followed by a label."""
    return format_html('<i class="fs-dot" style="background:{}"></i>{}', color, label)


@admin.register(Project)
class ProjectAdmin(FlagShipAdmin[Project]):
    """Projects: creating one creates its development, staging and protected production."""

    project_path = ""

    list_display = ("name", "key", "environment_badges", "flag_count")
    search_fields = ("key", "name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        """With environments prefetched and flags counted."""
        return (
            super()
            .get_queryset(request)
            .prefetch_related("environments")
            .annotate(flag_total=Count("flags", distinct=True))
        )

    def get_fields(self, request: HttpRequest, obj: Project | None = None) -> tuple[str, ...]:
        """The environments are listed once the project exists."""
        fields = ("key", "name", "description")
        return (*fields, "environment_badges") if obj is not None else fields

    def get_readonly_fields(
        self, request: HttpRequest, obj: Project | None = None
    ) -> tuple[str, ...]:
        """The key is the API's and SDKs' handle: it never changes."""
        return ("key", "environment_badges") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        """Never: deleting a project would take every flag's live state with it."""
        return False

    @admin.display(description="environments")
    def environment_badges(self, obj: Project) -> SafeString:
        """Each environment as a coloured, linked badge."""
        return format_html_join(
            " ",
            ('<a class="fs-env" href="{}"><i class="fs-dot" style="background:{}"></i>{}{}</a>'),
            (
                (
                    reverse("admin:flags_environment_change", args=[env.pk]),
                    env.color,
                    env.name,
                    PROTECTED_MARK if env.protected else "",
                )
                for env in obj.environments.all()
            ),
        )

    @admin.display(description="flags", ordering="flag_total")
    def flag_count(self, obj: Project) -> int:
        """How many flags the project has."""
        return int(getattr(obj, "flag_total", 0))

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        """Create (with its environments) or update through services."""
        if change:
            services.project_update(
                project=obj, actor=actor(request), name=obj.name, description=obj.description
            )
            return
        created = services.project_create(
            key=obj.key, name=obj.name, description=obj.description, actor=actor(request)
        )
        adopt(obj, created)


class EnvironmentForm(forms.ModelForm[Environment]):
    """An environment, with a colour picker."""

    class Meta:
        model = Environment
        fields = (
            "project",
            "key",
            "name",
            "color",
            "order",
            "protected",
            "required_approvals",
            "allow_self_approval",
        )
        widgets = {"color": COLOR_INPUT}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "required_approvals" in self.fields:
            # Left out (older clients, scripts): the environment keeps what it has.
            self.fields["required_approvals"].required = False

    def clean_required_approvals(self) -> int:
        """Empty keeps the stored number (0 for a new environment)."""
        value = self.cleaned_data.get("required_approvals")
        return int(value) if value is not None else self.instance.required_approvals


@admin.register(Environment)
class EnvironmentAdmin(FlagShipAdmin[Environment]):
    """Environments: their columns in the flag list, whether they are protected, and approvals.

    A protected environment with ``required_approvals`` above 0 takes change requests: changes
    there are proposed, reviewed and applied (``flags.admin.change_requests``).
    """

    project_path = "project"

    form = EnvironmentForm
    list_display = (
        "name_badge",
        "project",
        "key",
        "order",
        "protected",
        "required_approvals",
        "ruleset_version",
    )
    list_filter = ("project", "protected")
    list_select_related = ("project",)
    search_fields = ("key", "name", "project__key", "project__name")
    ordering = ("project__name", "order", "key")

    def get_fields(self, request: HttpRequest, obj: Environment | None = None) -> tuple[str, ...]:
        """The ruleset version is shown, never edited; approvals follow protection."""
        fields = (
            "project",
            "key",
            "name",
            "color",
            "order",
            "protected",
            "required_approvals",
            "allow_self_approval",
        )
        return (*fields, "ruleset_version") if obj is not None else fields

    def get_readonly_fields(
        self, request: HttpRequest, obj: Environment | None = None
    ) -> tuple[str, ...]:
        """Project and key never change once created."""
        return ("project", "key", "ruleset_version") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Environment | None = None) -> bool:
        """Never: SDKs of a deleted environment would lose every flag at once."""
        return False

    @admin.display(description="environment", ordering="name")
    def name_badge(self, obj: Environment) -> SafeString:
        """The name with the environment's colour."""
        return format_html(
            "{}{}", color_swatch(obj.color, obj.name), PROTECTED_MARK if obj.protected else ""
        )

    def save_model(self, request: HttpRequest, obj: Environment, form: Any, change: bool) -> None:
        """Create or update through services."""
        if change:
            # A fresh copy: the version may have moved since the page loaded, and must not be
            # written back (simple-history's revert also passes a rebuilt instance).
            current = Environment.objects.get(pk=obj.pk)
            services.environment_update(
                environment=current,
                actor=actor(request),
                name=obj.name,
                color=obj.color,
                order=obj.order,
                protected=obj.protected,
                required_approvals=obj.required_approvals,
                allow_self_approval=obj.allow_self_approval,
            )
            return
        created = services.environment_create(
            project=obj.project,
            key=obj.key,
            name=obj.name,
            protected=obj.protected,
            color=obj.color,
            order=obj.order,
            required_approvals=obj.required_approvals,
            allow_self_approval=obj.allow_self_approval,
            actor=actor(request),
        )
        adopt(obj, created)


class TagForm(forms.ModelForm[Tag]):
    """A tag, with a colour picker."""

    class Meta:
        model = Tag
        fields = ("name", "color")
        widgets = {"color": COLOR_INPUT}


@admin.register(Tag)
class TagAdmin(FlagShipAdmin[Tag]):
    """Tags label flags; they do not affect evaluation, so bulk deletion stays."""

    deletion_has_side_effects = False
    form = TagForm
    list_display = ("badge", "flag_count")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        """With flags counted."""
        return super().get_queryset(request).annotate(flag_total=Count("flags"))

    @admin.display(description="tag", ordering="name")
    def badge(self, obj: Tag) -> SafeString:
        """The name with the tag's colour."""
        return color_swatch(obj.color, obj.name)

    @admin.display(description="flags", ordering="flag_total")
    def flag_count(self, obj: Tag) -> int:
        """How many flags carry the tag."""
        return int(getattr(obj, "flag_total", 0))

    def save_model(self, request: HttpRequest, obj: Tag, form: Any, change: bool) -> None:
        """Create or update through services."""
        if change:
            services.tag_update(tag=obj, actor=actor(request), name=obj.name, color=obj.color)
            return
        adopt(obj, services.tag_create(name=obj.name, color=obj.color, actor=actor(request)))

    def delete_model(self, request: HttpRequest, obj: Tag) -> None:
        """Delete through ``tag_delete``."""
        services.tag_delete(tag=obj, actor=actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """Delete one by one through ``tag_delete``, so history records each and its actor."""
        for tag in queryset:
            services.tag_delete(tag=tag, actor=actor(request))
