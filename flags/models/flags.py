"""Flags, their variants, their state in each environment, and prerequisites."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from ..validation import validate_serve, validate_variant_value
from .keys import key_validator
from .projects import Environment, Project, Tag


class Flag(models.Model):
    """A feature flag of a project. Its key, kind and variants are the contract with the code."""

    class Kind(models.TextChoices):
        BOOLEAN = "boolean", "Boolean (on/off)"
        STRING = "string", "String"
        NUMBER = "number", "Number"
        JSON = "json", "JSON"

    class Lifecycle(models.TextChoices):
        RELEASE = "release", "Release (temporary, remove once rolled out)"
        EXPERIMENT = "experiment", "Experiment (temporary, A/B test)"
        OPERATIONAL = "operational", "Operational (kill switch)"
        PERMANENT = "permanent", "Permanent (entitlement, configuration)"

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="flags", help_text="Owning project."
    )
    key = models.CharField(
        max_length=100,
        validators=[key_validator],
        help_text="Identifier used in code; letters, digits, '.', '-', '_'. Cannot change later.",
    )
    name = models.CharField(max_length=200, help_text="Name shown to people.")
    description = models.TextField(blank=True, help_text="What the flag controls and why.")
    kind = models.CharField(
        max_length=10,
        choices=Kind.choices,
        default=Kind.BOOLEAN,
        help_text="Type of every variant's value. Cannot change later.",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="flags", help_text="Labels.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_flags",
        help_text="Who to ask about this flag.",
    )
    lifecycle = models.CharField(
        max_length=12,
        choices=Lifecycle.choices,
        default=Lifecycle.RELEASE,
        help_text="Temporary flags are reported when stale; permanent ones are not.",
    )
    client_visible = models.BooleanField(
        default=False,
        verbose_name="visible to client keys",
        help_text="Browsers and mobile apps (client keys) may evaluate this flag.",
    )
    salt = models.CharField(
        max_length=100,
        blank=True,
        help_text="Mixed into rollout hashing; empty means the key. Changing it reshuffles users.",
    )
    archived = models.BooleanField(
        default=False, help_text="Archived flags are hidden from SDKs and evaluate as not found."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(m2m_fields=[tags])

    class Meta:
        ordering = ("project", "key")
        verbose_name = "flag"
        verbose_name_plural = "flags"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="flag_key_unique_per_project"),
            models.CheckConstraint(
                condition=models.Q(key__regex=r"^[A-Za-z0-9._-]+$"), name="flag_key_format"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["boolean", "string", "number", "json"]),
                name="flag_kind_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "archived", "key"], name="flag_project_archived_key"),
            models.Index(fields=["lifecycle"], name="flag_lifecycle"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def effective_salt(self) -> str:
        """The salt rollouts hash with: the key unless one is set."""
        return self.salt or self.key


class Variant(models.Model):
    """One value a flag can serve. A boolean flag has exactly ``on`` (true) and ``off`` (false)."""

    flag = models.ForeignKey(
        Flag, on_delete=models.CASCADE, related_name="variants", help_text="Owning flag."
    )
    key = models.CharField(
        max_length=100, validators=[key_validator], help_text="Identifier reported to SDKs."
    )
    name = models.CharField(max_length=200, blank=True, help_text="Name shown to people.")
    value = models.JSONField(help_text="The value served, of the flag's kind.")
    order = models.PositiveSmallIntegerField(default=0, help_text="Position among the variants.")

    history = HistoricalRecords()

    class Meta:
        ordering = ("flag", "order", "id")
        verbose_name = "variant"
        verbose_name_plural = "variants"
        constraints = [
            models.UniqueConstraint(fields=["flag", "key"], name="variant_key_unique_per_flag"),
        ]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        """A value must be of its flag's kind."""
        if self.flag_id is not None:
            validate_variant_value(self.flag.kind, self.value)


class FlagState(models.Model):
    """A flag in one environment: on or off, what it serves, and how it targets."""

    flag = models.ForeignKey(
        Flag, on_delete=models.CASCADE, related_name="states", help_text="The flag."
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="states", help_text="The environment."
    )
    enabled = models.BooleanField(
        default=False, help_text="Off: everyone gets the off variant, whatever the rules say."
    )
    off_variant = models.ForeignKey(
        Variant,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Served while the flag is off, or when a prerequisite does not hold.",
    )
    default_serve = models.JSONField(
        help_text="Served when no rule matches: one variant, or a percentage split.",
    )
    version = models.PositiveIntegerField(
        default=1, help_text="Grows with every change; stale writers are refused."
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("flag", "environment__order")
        verbose_name = "flag state"
        verbose_name_plural = "flag states"
        constraints = [
            models.UniqueConstraint(
                fields=["flag", "environment"], name="flag_state_unique_per_environment"
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "enabled"], name="flag_state_env_enabled"),
        ]

    def __str__(self) -> str:
        return f"{self.flag.key} in {self.environment.key}"

    def clean(self) -> None:
        """The off variant is one of this flag's; the default serve names its variants."""
        if not self.flag_id:
            return
        if self.off_variant_id is not None and self.off_variant.flag_id != self.flag_id:
            raise ValidationError(
                {"off_variant": "Choose one of this flag's variants."}, code="invalid_variant"
            )
        validate_serve(self.flag, self.default_serve, field="default_serve")

    def default_serve_display(self) -> str:
        """The default serve in words, for people."""
        return describe_serve(self.default_serve)


class Prerequisite(models.Model):
    """Another flag that must serve one of some variants (or just be on) for this one to target."""

    state = models.ForeignKey(
        FlagState,
        on_delete=models.CASCADE,
        related_name="prerequisites",
        help_text="The dependent flag's state.",
    )
    flag = models.ForeignKey(
        Flag,
        on_delete=models.CASCADE,
        related_name="dependents",
        verbose_name="parent flag",
        help_text="The flag that must hold first, in the same environment.",
    )
    variants = models.JSONField(
        default=list,
        blank=True,
        help_text="Parent variants that satisfy this; empty means 'any but its off variant'.",
    )
    order = models.PositiveSmallIntegerField(default=0)

    history = HistoricalRecords()

    class Meta:
        ordering = ("state", "order", "id")
        verbose_name = "prerequisite"
        verbose_name_plural = "prerequisites"
        constraints = [
            models.UniqueConstraint(fields=["state", "flag"], name="prerequisite_unique_parent"),
        ]

    def __str__(self) -> str:
        wanted = ", ".join(self.variants) if self.variants else "on"
        return f"{self.flag.key} is {wanted}"


def describe_serve(serve: Any) -> str:
    """Render a serve document (one variant, or a split) for people: "on" or "on 50%, off 50%"."""
    if not isinstance(serve, dict):
        return "—"
    if "variant" in serve:
        return str(serve["variant"])
    parts = []
    for entry in serve.get("split", []):
        weight = entry.get("weight", 0) / 1000
        parts.append(f"{entry.get('variant')} {weight:g}%")
    return ", ".join(parts) or "—"
