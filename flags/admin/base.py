"""What every FlagShip model admin shares.

- History (django-simple-history) with readable diffs, and reverts that go through the admin's
  ``save_model`` (hence through services) and require the change permission.
- Refusals from services become field errors or error messages, never a 500: a ``ValidationError``
  raised while saving re-renders the form with the error next to its field; a domain error
  (``PermissionDeniedError``, ``InUseError``, ``StaleVersionError``) becomes an error message.
- ``delete_selected`` is removed wherever deletion has side effects.
- FlagShip's own project (``flags.capabilities``) and everything in it exist only for
  administrators: each admin names the path from its model to the project (``project_path``)
  and its queryset leaves the system project's rows out for anyone else, so they are neither
  listed nor found by URL (Django then answers "doesn't exist").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import Action, ActionLocation
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .. import capabilities
from ..errors import FlagShipError
from ..history.links import VIEW_PEOPLE
from ..history.recording import reason
from ..models import Environment, Project
from ..words import rollout_in_words, serve_in_words
from .forms.base import LimitedJSONField, TextBoxField

if TYPE_CHECKING:
    _M = TypeVar("_M", bound=models.Model)

    class SimpleHistoryAdmin(admin.ModelAdmin[_M]):
        """The typed surface of simple_history.admin.SimpleHistoryAdmin that FlagShip uses."""

        def history_form_view(
            self,
            request: HttpRequest,
            object_id: str,
            version_id: str,
            extra_context: dict[str, Any] | None = None,
        ) -> HttpResponse:
            """Show (GET) or apply (POST) one historical version of an object."""

    class HistoricalRecordContextHelper:
        """The typed surface of simple_history.template_utils.HistoricalRecordContextHelper."""

        def __init__(self, model: type[models.Model], historical_record: Any) -> None: ...
        def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
            """A changed field's old or new value, prepared for display."""
else:
    from simple_history.admin import SimpleHistoryAdmin
    from simple_history.template_utils import HistoricalRecordContextHelper

M = TypeVar("M", bound=models.Model)

FLAGSTATE_CHANGE = "flags.change_flagstate"
REASON_FIELD = "reason"
PROTECTED_PERMISSION = "flags.change_protected_environment"
PROPOSE_PERMISSION = "flags.add_changerequest"

# A refused save is re-run to render the form again with the refusal attached to it.
_refusals: WeakKeyDictionary[HttpRequest, ValidationError] = WeakKeyDictionary()


def can_change_environment(user: Any, environment: Environment) -> bool:
    """Whether ``user`` may change flags in ``environment`` (the rule services enforce too).

    In an environment that takes change requests nobody changes flags directly: whoever may
    propose opens the same forms, and what they save becomes a change request
    (``flags.admin.proposals``).
    """
    if not user.has_perm(FLAGSTATE_CHANGE):
        return False
    if environment.needs_change_requests:
        return bool(user.has_perm(PROPOSE_PERMISSION))
    return not environment.protected or bool(user.has_perm(PROTECTED_PERMISSION))


def reason_required(environment: Environment) -> bool:
    """Whether changes in ``environment`` need a reason (its project says so when protected)."""
    return environment.protected and environment.project.reason_required


def missing_reason(environment: Environment) -> str:
    """What a page says when a change in ``environment`` came without the reason it needs."""
    return f"Give a reason: changes in {environment.name} are recorded with why."


def reason_field() -> forms.CharField:
    """The optional "Reason for this change" every change form has (history keeps it)."""
    return forms.CharField(
        required=False,
        max_length=500,
        label="Reason for this change",
        help_text="Kept in the history with your change, for whoever wonders later why. "
        "Required in protected environments of projects that ask for it.",
        widget=forms.TextInput(attrs={"size": 60, "data-testid": "reason"}),
    )


def require_reason(request: HttpRequest, environments: Iterable[Environment]) -> None:
    """Refuse a change without a reason where one is required (shown next to the reason field)."""
    if request.POST.get(REASON_FIELD, "").strip():
        return
    needing = [environment for environment in environments if reason_required(environment)]
    if needing:
        raise ValidationError({REASON_FIELD: missing_reason(needing[0])}, code="reason_required")


def people_links(
    request: HttpRequest, extra_context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The context of simple-history's list, linking people only for those who may open them.

    Its template links through ``admin_user_view``; an empty name links nowhere.
    """
    context = dict(extra_context or {})
    if not any(request.user.has_perm(permission) for permission in VIEW_PEOPLE):
        context["admin_user_view"] = ""
    return context


def is_revert(request: HttpRequest) -> bool:
    """Whether this request is simple-history's revert form (not the change form)."""
    match = request.resolver_match
    return match is not None and (match.url_name or "").endswith("_simple_history")


def attach_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Add ``error`` to ``form``: next to each named field it has, else at the top."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.error_list)


class ReadableHistory(HistoricalRecordContextHelper):
    """History diffs in words: serves as "on 50%, off 50%", rollouts in %, lists as text."""

    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        """Render FlagShip's JSON fields the way the forms show them."""
        field = change.field
        if field in ("serve", "default_serve"):
            return serve_in_words(value)
        if field == "rollout":
            return rollout_in_words(value)
        if field in ("values", "variants") and isinstance(value, list):
            return ", ".join(str(item) for item in value) or "—"
        if field == "value":
            return json.dumps(value, ensure_ascii=False)
        if field == "enabled" and isinstance(value, bool):
            return "on" if value else "off"
        return super().prepare_delta_change_value(change, value)


def visible[Q: models.Model](
    request: HttpRequest, queryset: models.QuerySet[Q], project_path: str | None
) -> models.QuerySet[Q]:
    """``queryset`` without FlagShip's own project unless the person is an administrator.

    ``project_path`` leads from the model to its project (``""``: projects; ``None``: no project).
    """
    if project_path is None:
        return queryset
    return capabilities.visible(queryset, request.user, project_path)


def require_visible(request: HttpRequest, project: Any) -> None:
    """Refuse (403) a page about FlagShip's own project to anyone but an administrator."""
    if getattr(project, "system", False) and not capabilities.may_manage(request.user):
        raise PermissionDenied


class VisibleProjectFilter(admin.RelatedFieldListFilter):
    """A list filter by project that offers FlagShip's own project to administrators only."""

    def field_choices(
        self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> Any:
        """Django's choices, limited in the same single query."""
        if capabilities.may_manage(request.user):
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return list(
            field.get_choices(
                include_blank=False, ordering=ordering, limit_choices_to={"system": False}
            )
        )


# Every related filter whose field leads to a project (``"project"``, ``"state__flag__project"``).
admin.FieldListFilter.register(
    lambda field: field.remote_field is not None and field.remote_field.model is Project,
    VisibleProjectFilter,
    take_priority=True,
)


class FlagShipAdmin(SimpleHistoryAdmin[M]):
    """Base of FlagShip's model admins: history, service refusals, no side-effecting bulk delete."""

    # Deleting these objects changes what SDKs receive (or cascades): no "delete selected".
    deletion_has_side_effects = True
    # From the model to its project (see ``visible``); None: not in a project.
    project_path: str | None = None
    # Text boxes send line breaks as CRLF: read them back as the LF they were stored with. JSON is
    # read with the API's nesting limit (flagship.jsonbody): too deep is a form error, not a 500.
    formfield_overrides = {
        models.TextField: {"form_class": TextBoxField},
        models.JSONField: {"form_class": LimitedJSONField},
    }

    class Media:
        css = {"all": ("flags/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[M]:
        """The rows this person may see (FlagShip's own project: administrators only)."""
        return visible(request, super().get_queryset(request), self.project_path)

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Action | None]:
        """Drop Django's bulk delete where a deletion must go object by object through services."""
        actions = super().get_actions(request, action_location=action_location)
        if self.deletion_has_side_effects:
            actions.pop("delete_selected", None)
        return actions

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Save through services with the reason given; on a refusal, roll back and show it."""
        given = request.POST.get(REASON_FIELD, "") if request.method == "POST" else ""
        try:
            with reason(given):
                return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            _refusals[request] = error
        except FlagShipError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        # The first attempt was rolled back; this one shows the same POST with the refusal.
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: M | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[M]]:
        """The model form with a reason field, made to fail with a refusal when re-rendering one."""
        if kwargs.get("fields"):
            kwargs["fields"] = [name for name in kwargs["fields"] if name != REASON_FIELD]
        form_class = super().get_form(request, obj, change, **kwargs)
        form_class = cast(
            type[forms.ModelForm[M]],
            type(form_class.__name__, (form_class,), {REASON_FIELD: reason_field()}),
        )
        refusal = _refusals.get(request)
        if refusal is None:
            return form_class

        def full_clean(form: forms.ModelForm[M]) -> None:
            form_class.full_clean(form)
            if form.is_bound:
                self.attach_refusal(form, refusal)

        refused = type(form_class.__name__, (form_class,), {"full_clean": full_clean})
        return cast(type[forms.ModelForm[M]], refused)

    def get_fields(self, request: HttpRequest, obj: M | None = None) -> Any:
        """The form's fields but the reason, which the template shows last (above the buttons)."""
        return [name for name in super().get_fields(request, obj) if name != REASON_FIELD]

    def attach_refusal(self, form: forms.BaseForm, refusal: ValidationError) -> None:
        """Show a refusal of the services on the re-rendered form (see ``attach_errors``)."""
        attach_errors(form, refusal)

    def refusal(self, request: HttpRequest) -> ValidationError | None:
        """The refusal being shown again on this request's form, if any."""
        return _refusals.get(request)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Delete through services; a refusal (e.g. still in use) becomes an error message."""
        given = request.POST.get(REASON_FIELD, "") if request.method == "POST" else ""
        try:
            with reason(given):
                return super().delete_view(request, object_id, extra_context)
        except (FlagShipError, ValidationError) as error:
            self.message_user(request, refusal_text(error), messages.ERROR)
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            )

    def get_history_queryset(
        self, request: HttpRequest, history_manager: Any, pk_name: str, object_id: Any
    ) -> Any:
        """simple-history's rows of one object, with its people and foreign keys joined.

        simple-history calls ``select_related()`` with no names for a model without foreign keys
        (a project, a tag), which Django 6.1 deprecates: such a model joins only its people.
        """
        rows = history_manager.filter(**{pk_name: object_id}).select_related("history_user")
        related = [
            field.name
            for field in history_manager.model.tracked_fields
            if isinstance(field, models.ForeignKey)
        ]
        return rows.select_related(*related) if related else rows

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """simple-history's list of versions; people are links only for those who may follow.

        Anyone else would meet a 403 page.
        """
        return super().history_view(request, object_id, people_links(request, extra_context))

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Revert through ``save_model`` (services), only for people who may change the object."""
        if request.method == "POST":
            current = self.get_object(request, unquote(object_id))
            if not self.has_change_permission(request, current):
                raise PermissionDenied
        try:
            with transaction.atomic():
                return super().history_form_view(request, object_id, version_id, extra_context)
        except (FlagShipError, ValidationError) as error:
            self.message_user(request, f"Not reverted: {refusal_text(error)}", messages.ERROR)
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[object_id])
            )

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> ReadableHistory:
        """Diffs in words (see ``ReadableHistory``)."""
        return ReadableHistory(self.model, historical_record)


@contextmanager
def row(label: str) -> Iterator[None]:
    """Name the inline row a refusal is about: "Prerequisite new-checkout: ..." above the form.

    Services report errors by field ("flag", "value"); on a page with several rows, the row is
    what a person needs to find.
    """
    try:
        yield
    except ValidationError as error:
        raise ValidationError(
            [f"{label}: {message}" for message in error.messages], code="invalid"
        ) from None


def refusal_text(error: FlagShipError | ValidationError) -> str:
    """One line for a refusal, whatever its kind."""
    if isinstance(error, FlagShipError):
        return error.message
    return " ".join(error.messages)


def adopt(target: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved ``target`` stand for the object a service created."""
    target.pk = saved.pk
    target._state.adding = False
    target._state.db = saved._state.db


def actor(request: HttpRequest) -> Any:
    """The person acting, as services record them in history."""
    return request.user


class NeverEdited:
    """An admin whose rows people never add, change or delete by hand (only look at)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Never: FlagShip writes these."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: these are records, changed only through FlagShip's own actions."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never from the admin."""
        return False


class ReadOnlyAdmin[M: models.Model](NeverEdited, admin.ModelAdmin[M]):
    """Rows FlagShip writes itself (counts, deliveries, events): looked at, never edited by hand.

    A delivery goes with its webhook, events and counts are deleted by retention, not by people.
    """

    show_full_result_count = False
    project_path: str | None = None  # see FlagShipAdmin

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[M]:
        """The rows this person may see (FlagShip's own project: administrators only)."""
        return visible(request, super().get_queryset(request), self.project_path)
