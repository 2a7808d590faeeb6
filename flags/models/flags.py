"""Flags, their variants, their state in each environment, and prerequisites."""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from ..history.recording import AuditedHistory
from ..validation import validate_serve, validate_variant_value
from ..words import serve_in_words
from .keys import KeyedModel, key_format_check, key_validator
from .projects import Environment, Project, Tag


class Flag(KeyedModel):
    """A feature flag of a project. Its key, kind and variants are the contract with the code."""

    duplicate_fields = ("project", "key")
    duplicate_message = "This project already has a flag %(value)s."

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

    history = AuditedHistory(
        m2m_fields=[tags],
        indexes=(
            models.Index(fields=["project", "id"], name="hist_flag_project_id"),
            # A flag's rows newest first (its timeline, the audit log by flag): down this index.
            models.Index(fields=["id", "history_date", "history_id"], name="hist_flag_versions"),
        ),
    )

    class Meta:
        # Columns, not relations: ordering by "project" would join projects to sort by name on
        # every query; this order is the (project, key) unique index's own.
        ordering = ("project_id", "key")
        verbose_name = "flag"
        verbose_name_plural = "flags"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="flag_key_unique_per_project"),
            key_format_check("flag_key_format"),
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


class Variant(KeyedModel):
    """One value a flag can serve. A boolean flag has exactly ``on`` (true) and ``off`` (false)."""

    duplicate_fields = ("flag", "key")
    duplicate_message = "This flag already has a variant %(value)s."

    flag = models.ForeignKey(
        Flag, on_delete=models.CASCADE, related_name="variants", help_text="Owning flag."
    )
    key = models.CharField(
        max_length=100, validators=[key_validator], help_text="Identifier reported to SDKs."
    )
    name = models.CharField(max_length=200, blank=True, help_text="Name shown to people.")
    # blank: "" (string flags), [] and {} (json flags) are values like any other; the kind check
    # in clean() is what validates them.
    value = models.JSONField(blank=True, help_text="The value served, of the flag's kind.")
    order = models.PositiveSmallIntegerField(default=0, help_text="Position among the variants.")

    history = AuditedHistory()

    class Meta:
        ordering = ("flag", "order", "id")
        verbose_name = "variant"
        verbose_name_plural = "variants"
        constraints = [
            models.UniqueConstraint(fields=["flag", "key"], name="variant_key_unique_per_flag"),
            key_format_check("variant_key_format"),
        ]

    def __str__(self) -> str:
        return self.key

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Django's field checks, and no null value ("", [] and {} are fine: blank=True)."""
        errors: dict[str, list[ValidationError]] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if self.value is None and "value" not in (exclude or ()):
            # The column cannot tell JSON null from SQL NULL (it is not nullable), so null is
            # refused here rather than by the database.
            message = "Enter a value (null is not supported)."
            errors.setdefault("value", []).append(ValidationError(message, code="null"))
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        """A value must be of its flag's kind."""
        if self.flag_id is not None and self.value is not None:  # null: see clean_fields()
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
    # RESTRICT, not PROTECT: a variant still served while off cannot go, but a flag deleted with
    # its variants and states can (PROTECT refused the flag's own cascade).
    off_variant = models.ForeignKey(
        Variant,
        on_delete=models.RESTRICT,
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

    history = AuditedHistory(
        indexes=(
            models.Index(fields=["flag", "id"], name="hist_flagstate_flag_id"),
            # A flag's states' rows newest first (its timeline, the audit log by flag): down this
            # index, where the history date's index had every other flag's rows read and dropped.
            models.Index(
                fields=["flag", "history_date", "history_id"], name="hist_flagstate_flag_date"
            ),
            models.Index(fields=["environment", "id"], name="hist_flagstate_env_id"),
            models.Index(
                fields=["id", "history_date", "history_id"], name="hist_flagstate_versions"
            ),
        )
    )

    class Meta:
        # Columns only: ordering by "flag" followed Flag's and Project's orderings, joining both
        # tables (and scanning every flag) on each query, the flag list's prefetch included.
        # Pages that show environments in their order say so (order_by("environment__order")).
        ordering = ("flag_id", "environment_id")
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
        return serve_in_words(self.default_serve)


class Prerequisite(KeyedModel):
    """Another flag that must serve one of some variants (or just be on) for this one to target."""

    duplicate_fields = ("state", "flag")
    duplicate_field = "flag"
    duplicate_message = "%(value)s is already a prerequisite of this flag."

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

    history = AuditedHistory(
        # The last change of a state's prerequisites (flags.stale): one step down this index.
        indexes=(models.Index(fields=["state", "history_date"], name="hist_prereq_state_date"),)
    )

    class Meta:
        ordering = ("state", "order", "id")
        verbose_name = "prerequisite"
        verbose_name_plural = "prerequisites"
        constraints = [
            models.UniqueConstraint(fields=["state", "flag"], name="prerequisite_unique_parent"),
        ]

    def duplicate_value(self) -> object:
        """The parent flag's key, named in the message."""
        return self.flag.key if self.flag_id else ""

    def __str__(self) -> str:
        wanted = ", ".join(self.variants) if self.variants else "on"
        return f"{self.flag.key} is {wanted}"
