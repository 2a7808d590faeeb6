"""People and API keys in the admin: users and their roles; keys issued (shown once), revoked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import Action, ActionLocation
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from flags.admin.base import people_links

from . import services
from .models import ApiKey, User

if TYPE_CHECKING:
    # simple-history ships no types: this stands for its admin with the surface used here.
    class _HistoryApiKeyAdmin(admin.ModelAdmin[ApiKey]):
        pass

else:
    from simple_history.admin import SimpleHistoryAdmin

    _HistoryApiKeyAdmin = SimpleHistoryAdmin


@admin.register(User)
class FlagShipUserAdmin(UserAdmin[User]):
    """Users and their groups (roles).

    Users have no simple-history records, so their History page is Django's own log of admin
    changes (simple-history's page would fail on a model without records).
    """

    list_display = ("username", "email", "first_name", "last_name", "is_active", "roles")
    list_filter = ("is_active", "is_staff", "groups")
    # Signing in and joining are facts, not settings: as inputs (split into a date and a time
    # without microseconds) they would change whenever the form is saved unchanged.
    readonly_fields = ("last_login", "date_joined")

    @admin.display(description="roles")
    def roles(self, user: User) -> str:
        """The user's groups."""
        return ", ".join(group.name for group in user.groups.all()) or "—"

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        """Groups prefetched for the roles column."""
        return super().get_queryset(request).prefetch_related("groups")


class ApiKeyIssueForm(forms.ModelForm[ApiKey]):
    """What a person chooses when issuing a key; the secret itself is generated."""

    class Meta:
        model = ApiKey
        fields = ("kind", "name", "environment", "user", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(_HistoryApiKeyAdmin):
    """Issue keys (the secret is shown once, right after), see their use, revoke them."""

    list_display = ("name", "kind", "scope", "lookup", "created_at", "last_used_at", "status")
    list_filter = ("kind", "environment__project", "revoked_at")
    search_fields = ("name", "lookup", "user__username")
    actions = ("revoke",)
    readonly_fields = ("lookup", "created_by", "created_at", "last_used_at", "revoked_at")

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The key's versions; people link to their page only for those who may open it."""
        return super().history_view(request, object_id, people_links(request, extra_context))

    def get_form(
        self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[ApiKey]]:
        """Issuing uses the issue form; an issued key can only be renamed."""
        if obj is None:
            kwargs["form"] = ApiKeyIssueForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        """Everything but the name is fixed once issued."""
        if obj is None:
            return ()
        return (*self.readonly_fields, "kind", "environment", "user", "expires_at")

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        """The issue form's fields, or the key's details."""
        if obj is None:
            return ApiKeyIssueForm.Meta.fields
        return ("name", "kind", "environment", "user", "expires_at", *self.readonly_fields)

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Action | None]:
        """Keys are revoked, not deleted: the stock bulk delete is removed."""
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="scope")
    def scope(self, key: ApiKey) -> str:
        """The environment a key evaluates in, or the user a token acts as."""
        return str(key.environment) if key.environment_id else f"user {key.user}"

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        """Active, revoked or expired."""
        if key.revoked_at:
            return "revoked"
        return "active" if key.expires_at is None else f"expires {key.expires_at:%Y-%m-%d}"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        """Scope columns without a query per row."""
        return super().get_queryset(request).select_related("environment__project", "user")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        """Issue through the service and show the secret once; later saves only rename."""
        if change:
            services.api_key_rename(key=obj, name=obj.name, actor=request.user)
            return
        try:
            key, secret = services.api_key_issue(
                kind=obj.kind,
                name=obj.name,
                environment=obj.environment,
                user=obj.user,
                expires_at=obj.expires_at,
                actor=request.user,
            )
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        obj.pk = key.pk
        self.message_user(
            request,
            f"Copy the secret now; it is never shown again: {secret}",
            level=messages.WARNING,
        )

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        """Revoke each key through the service (history records who)."""
        for key in queryset:
            services.api_key_revoke(key=key, actor=request.user)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
