"""Webhooks, their deliveries and the change events they announce, in the admin.

- Webhooks (Administrators): created, changed and deleted through the services; the signing
  secret is shown once after creating and once after each rotation ("Rotate secret…", a POST
  after a confirmation), never again. "Send test event…" queues a ``webhook.test`` delivery.
- Deliveries (Administrators): read-only, with the last answer and the event sent; "Redeliver"
  queues selected ones again.
- Change events (every role): read-only, with before and after.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from .. import services
from ..delivery.changes import KIND_DESCRIPTIONS, Kind
from ..history.recording import reason
from ..models import ChangeEvent, Environment, Webhook, WebhookDelivery
from .base import FlagShipAdmin, ReadOnlyAdmin, actor, adopt

PENDING = WebhookDelivery.Status.PENDING
DEAD = WebhookDelivery.Status.DEAD
REDELIVER_PERMISSION = "flags.add_webhookdelivery"
# Test deliveries are not changes: the change events page (every role's) leaves them out.
NOT_CHANGES = (Kind.WEBHOOK_TEST.value,)
EVENT_CHOICES = [(kind.value, f"{kind.value} — {KIND_DESCRIPTIONS[kind]}") for kind in Kind]
COPY_IT_NOW = "Copy the signing secret now; it is never shown again: {}"


def pretty_json(value: Any) -> SafeString:
    """``value`` as indented JSON in a ``<pre>`` (escaped: it holds whatever was sent)."""
    return format_html(
        '<pre class="fs-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False)
    )


def deliveries_url(webhook_id: int, status: str | None = None) -> str:
    """The delivery list filtered to one webhook (and one status)."""
    url = f"{reverse('admin:flags_webhookdelivery_changelist')}?webhook__id__exact={webhook_id}"
    return f"{url}&status__exact={status}" if status else url


class EventTypeFilter(admin.SimpleListFilter):
    """Filter by event type, among the types FlagShip sends."""

    title = "event type"
    parameter_name = "type"
    field = "kind"
    kinds: tuple[Kind, ...] = tuple(Kind)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Every event type."""
        return [(kind.value, kind.value) for kind in self.kinds]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The rows of the chosen type (all without a choice)."""
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class ChangeTypeFilter(EventTypeFilter):
    """Filter change events by type (test deliveries' events are not changes)."""

    kinds = tuple(kind for kind in Kind if kind.value not in NOT_CHANGES)


class DeliveryEventTypeFilter(EventTypeFilter):
    """Filter deliveries by the type of the event they carry."""

    field = "event__kind"


class WebhookForm(forms.ModelForm[Webhook]):
    """A webhook: events ticked among the types FlagShip sends, environments of its project."""

    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Send only events of these types; tick none to send every type.",
    )

    class Meta:
        model = Webhook
        fields = ("project", "environment", "name", "url", "events", "active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Offer the webhook's project's environments (every project's, labelled, when adding)."""
        super().__init__(*args, **kwargs)
        environment = self.fields.get("environment")
        if isinstance(environment, forms.ModelChoiceField):
            choices = Environment.objects.select_related("project").order_by(
                "project__name", "order", "key"
            )
            if self.instance.project_id is not None:
                choices = choices.filter(project_id=self.instance.project_id)
            environment.queryset = choices
            environment.empty_label = "Every environment of the project"


@admin.register(Webhook)
class WebhookAdmin(FlagShipAdmin[Webhook]):
    """Webhooks: the secret shown once, rotation and test events, deliveries a click away."""

    project_path = "project"

    # Deleting goes through webhook_delete one by one (delete_queryset): bulk delete may stay.
    deletion_has_side_effects = False
    form = WebhookForm
    list_display = (
        "name",
        "project",
        "environment_display",
        "url",
        "events_display",
        "active",
        "secret_hint",
        "pending_deliveries",
        "dead_deliveries",
    )
    list_filter = ("project", "active")
    list_select_related = ("project", "environment")
    search_fields = ("name", "url")
    actions = ("send_test",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Webhook]:
        """With project and environment joined and pending and dead deliveries counted."""
        return (
            super()
            .get_queryset(request)
            .select_related("project", "environment")
            .annotate(
                pending_total=Count("deliveries", filter=Q(deliveries__status=PENDING)),
                dead_total=Count("deliveries", filter=Q(deliveries__status=DEAD)),
            )
        )

    def get_fieldsets(self, request: HttpRequest, obj: Webhook | None = None) -> Any:
        """What it sends where; once it exists, its secret's hint, deliveries and creation."""
        main = ["project", "environment", "name", "url", "events", "active"]
        if obj is None:
            return [(None, {"fields": main})]
        return [
            (None, {"fields": main}),
            (
                "Signing secret",
                {
                    "fields": ["secret_hint"],
                    "description": "Shown once when created or rotated, never again: "
                    "“Rotate secret…” above issues a new one.",
                },
            ),
            ("Deliveries", {"fields": ["delivery_links"]}),
            ("Created", {"fields": ["created_at", "created_by"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Webhook | None = None) -> Any:
        """The project never changes (create another webhook instead); facts are only shown."""
        if obj is None:
            return ()
        return ("project", "secret_hint", "delivery_links", "created_at", "created_by")

    @admin.display(description="environment", ordering="environment__name")
    def environment_display(self, obj: Webhook) -> str:
        """The one environment it listens to, or all of them."""
        return obj.environment.name if obj.environment is not None else "all"

    @admin.display(description="events")
    def events_display(self, obj: Webhook) -> str:
        """The event types it sends, or all."""
        return ", ".join(obj.events) if obj.events else "all"

    @admin.display(description="pending", ordering="pending_total")
    def pending_deliveries(self, obj: Webhook) -> SafeString:
        """Deliveries waiting for an attempt, linked to their list."""
        count = int(getattr(obj, "pending_total", 0))
        return format_html('<a href="{}">{}</a>', deliveries_url(obj.pk, PENDING), count)

    @admin.display(description="dead", ordering="dead_total")
    def dead_deliveries(self, obj: Webhook) -> SafeString:
        """Deliveries given up on, linked to their list."""
        count = int(getattr(obj, "dead_total", 0))
        return format_html('<a href="{}">{}</a>', deliveries_url(obj.pk, DEAD), count)

    @admin.display(description="deliveries")
    def delivery_links(self, obj: Webhook) -> SafeString:
        """Its deliveries by status, each count a link to them."""
        counts = dict(obj.deliveries.order_by().values_list("status").annotate(total=Count("id")))
        links = [
            (deliveries_url(obj.pk, status), status, counts.get(status, 0), label.lower())
            for status, label in WebhookDelivery.Status.choices
        ]
        links.append((deliveries_url(obj.pk), "all", sum(counts.values()), "in all →"))
        return format_html_join(" · ", '<a href="{}" data-testid="deliveries-{}">{} {}</a>', links)

    def save_model(self, request: HttpRequest, obj: Webhook, form: Any, change: bool) -> None:
        """Create (the secret shown this once) or update through services."""
        if change:
            # A fresh copy: simple-history's revert passes a rebuilt instance without a secret.
            current = Webhook.objects.get(pk=obj.pk)
            services.webhook_update(
                webhook=current,
                actor=actor(request),
                name=obj.name,
                url=obj.url,
                events=obj.events,
                environment=obj.environment,
                active=obj.active,
            )
            return
        created, secret = services.webhook_create(
            project=obj.project,
            name=obj.name,
            url=obj.url,
            events=obj.events,
            environment=obj.environment,
            active=obj.active,
            actor=actor(request),
        )
        adopt(obj, created)
        self.message_user(request, COPY_IT_NOW.format(secret), level=messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: Webhook) -> None:
        """Delete through ``webhook_delete``."""
        services.webhook_delete(webhook=obj, actor=actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        """Delete one by one through ``webhook_delete`` (history records each)."""
        for webhook in queryset:
            services.webhook_delete(webhook=webhook, actor=actor(request))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """A webhook's deliveries go with it on the webhook's permission (nobody deletes one)."""
        to_delete, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return to_delete, counts, set(), protected

    @admin.action(description="Send a test event to the selected webhooks", permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        """Queue a ``webhook.test`` delivery for each selected webhook."""
        count = 0
        for webhook in queryset:
            services.webhook_send_test(webhook=webhook, actor=actor(request))
            count += 1
        self.message_user(request, f"Queued a test event for {count} webhook(s).")

    # --- Rotating the secret and sending a test, each after a confirmation --------------------

    def get_urls(self) -> list[URLPattern]:
        """Rotate and test (a confirmation page, then a POST) before the object URLs."""
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:webhook_id>/rotate-secret/",
                wrap(self.rotate_secret_view),
                name="flags_webhook_rotate_secret",
            ),
            path(
                "<int:webhook_id>/send-test/",
                wrap(self.send_test_view),
                name="flags_webhook_send_test",
            ),
            *super().get_urls(),
        ]

    def _changeable(self, request: HttpRequest, webhook_id: int) -> Webhook:
        webhook = self.get_object(request, str(webhook_id))
        if webhook is None:
            raise Http404("No such webhook.")
        if not self.has_change_permission(request, webhook):
            raise PermissionDenied
        return webhook

    def rotate_secret_view(self, request: HttpRequest, webhook_id: int) -> HttpResponse:
        """Ask (GET), then give the webhook a new secret and show it this once (POST)."""
        webhook = self._changeable(request, webhook_id)
        change_url = reverse("admin:flags_webhook_change", args=[webhook.pk])
        if request.method == "POST":
            with reason(request.POST.get("reason", "")):
                secret = services.webhook_rotate_secret(webhook=webhook, actor=actor(request))
            self.message_user(request, COPY_IT_NOW.format(secret), level=messages.WARNING)
            return HttpResponseRedirect(change_url)
        return self._confirmation(
            request,
            webhook,
            action="Rotate secret",
            question=f"Give {webhook.name} a new signing secret?",
            warning="The current secret stops working at once: deliveries signed from now on "
            "carry only the new one, so update the receiver right after.",
            button="Yes, rotate the secret",
            cancel_url=change_url,
            with_reason=True,
        )

    def send_test_view(self, request: HttpRequest, webhook_id: int) -> HttpResponse:
        """Ask (GET), then queue a ``webhook.test`` delivery and show the deliveries (POST)."""
        webhook = self._changeable(request, webhook_id)
        if request.method == "POST":
            services.webhook_send_test(webhook=webhook, actor=actor(request))
            self.message_user(request, f"Queued a test event for {webhook.name}.")
            return HttpResponseRedirect(deliveries_url(webhook.pk))
        return self._confirmation(
            request,
            webhook,
            action="Send test event",
            question=f"Send a test event to {webhook.name}?",
            warning="A webhook.test event goes to this webhook alone, whatever its filter; "
            "it is not a change and appears only among its deliveries.",
            button="Yes, send a test event",
            cancel_url=reverse("admin:flags_webhook_change", args=[webhook.pk]),
        )

    def _confirmation(
        self, request: HttpRequest, webhook: Webhook, *, with_reason: bool = False, **texts: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": texts["question"],
            "webhook": webhook,
            "opts": self.model._meta,
            "with_reason": with_reason,
            **texts,
        }
        return TemplateResponse(request, "flags/webhook_confirm.html", context)


class WebhookRecordsAdmin[M: models.Model](ReadOnlyAdmin[M]):
    """Deliveries and events: read-only, styled with the webhook pages."""

    class Media:
        css = {"all": ("flags/admin.css", "flags/webhooks.css")}


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(WebhookRecordsAdmin[WebhookDelivery]):
    """Deliveries, newest first: status, attempts and the last answer; "Redeliver" on selected."""

    list_display = (
        "created_at",
        "event_type",
        "webhook",
        "status",
        "attempts",
        "last_status_code",
        "last_error_short",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "webhook", DeliveryEventTypeFilter)
    list_select_related = ("event", "webhook")
    actions = ("redeliver",)
    fields = (
        "webhook",
        "event_type",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_attempt_at",
        "delivered_at",
        "last_status_code",
        "duration",
        "last_error",
        "response_body",
        "redelivery_of",
        "payload",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        """With the event and the webhook joined."""
        return super().get_queryset(request).select_related("event", "webhook")

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        """Redelivering adds a delivery."""
        return bool(request.user.has_perm(REDELIVER_PERMISSION))

    @admin.display(description="event type", ordering="event__kind")
    def event_type(self, obj: WebhookDelivery) -> str:
        """The type of the event delivered."""
        return obj.event.kind

    @admin.display(description="last error")
    def last_error_short(self, obj: WebhookDelivery) -> str:
        """The start of the last error."""
        return Truncator(obj.last_error).chars(80) or "—"

    @admin.display(description="duration")
    def duration(self, obj: WebhookDelivery) -> str:
        """How long the last attempt took."""
        return "—" if obj.last_duration_ms is None else f"{obj.last_duration_ms} ms"

    @admin.display(description="last response body")
    def response_body(self, obj: WebhookDelivery) -> SafeString | str:
        """The start of the last response's body, as received (escaped)."""
        if not obj.last_response:
            return "—"
        return format_html('<pre class="fs-json fs-response">{}</pre>', obj.last_response)

    @admin.display(description="payload sent")
    def payload(self, obj: WebhookDelivery) -> SafeString:
        """The event as the webhook receives it."""
        return pretty_json(obj.event.payload())

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """The delivery, with a "Redeliver" button for those who may."""
        context = {**(extra_context or {}), "may_redeliver": self.has_redeliver_permission(request)}
        return super().change_view(request, object_id, form_url, context)

    @admin.action(description="Redeliver the selected deliveries", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        """Queue each selected delivery's event again, as a new delivery due now."""
        count = 0
        for delivery in queryset.select_related("event", "webhook"):
            services.delivery_redeliver(delivery=delivery, actor=actor(request))
            count += 1
        noun = "redelivery" if count == 1 else "redeliveries"
        self.message_user(request, f"Queued {count} {noun}.", messages.SUCCESS)


@admin.register(ChangeEvent)
class ChangeEventAdmin(WebhookRecordsAdmin[ChangeEvent]):
    """Every committed change as webhooks hear of it, newest first; every role may read it."""

    project_path = "project"

    list_display = ("occurred_at", "kind", "project_display", "flags_display", "by", "reason")
    list_filter = (ChangeTypeFilter, "project")
    list_select_related = ("project",)
    search_fields = ("actor_name", "reason")
    fields = (
        "occurred_at",
        "kind",
        "project_display",
        "environments_display",
        "flags_display",
        "by",
        "reason",
        "before_json",
        "after_json",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChangeEvent]:
        """Changes only (no test events), with their project joined."""
        return super().get_queryset(request).select_related("project").exclude(kind__in=NOT_CHANGES)

    @admin.display(description="project", ordering="project_key")
    def project_display(self, obj: ChangeEvent) -> str:
        """The project changed (its key once it is gone)."""
        return obj.project.name if obj.project is not None else obj.project_key or "—"

    @admin.display(description="environments")
    def environments_display(self, obj: ChangeEvent) -> str:
        """The keys of the environments concerned."""
        keys = [str(item.get("key", "")) for item in obj.environments if isinstance(item, dict)]
        return ", ".join(keys) or "—"

    @admin.display(description="flags")
    def flags_display(self, obj: ChangeEvent) -> str:
        """The keys of the flags concerned."""
        return ", ".join(str(key) for key in obj.flags) or "—"

    @admin.display(description="by", ordering="actor_name")
    def by(self, obj: ChangeEvent) -> str:
        """Who made the change ("system" for commands)."""
        return obj.actor_name or "system"

    @admin.display(description="before")
    def before_json(self, obj: ChangeEvent) -> SafeString:
        """The values before the change."""
        return pretty_json(obj.before)

    @admin.display(description="after")
    def after_json(self, obj: ChangeEvent) -> SafeString:
        """The values after the change."""
        return pretty_json(obj.after)
