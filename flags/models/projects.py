"""Projects, their environments, and tags."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from simple_history.models import HistoricalRecords

from .keys import color_validator, key_validator


class Project(models.Model):
    """A product or service: it groups flags, segments and environments."""

    key = models.CharField(
        max_length=50,
        unique=True,
        validators=[key_validator],
        help_text="Stable identifier used by the API and SDKs; cannot change once created.",
    )
    name = models.CharField(max_length=100, help_text="Name shown to people.")
    description = models.TextField(blank=True, help_text="What this project covers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)
        verbose_name = "project"
        verbose_name_plural = "projects"

    def __str__(self) -> str:
        return self.name


class Environment(models.Model):
    """A deployment stage of a project (development, staging, production) with its flag states."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="environments", help_text="Owning project."
    )
    key = models.CharField(
        max_length=50,
        validators=[key_validator],
        help_text="Stable identifier (e.g. production); cannot change once created.",
    )
    name = models.CharField(max_length=100, help_text="Name shown to people.")
    color = models.CharField(
        max_length=7,
        default="#6b7280",
        validators=[color_validator],
        help_text="Colour of this environment's column in the flag list.",
    )
    order = models.PositiveSmallIntegerField(
        default=0, help_text="Position of this environment's column, smallest first."
    )
    protected = models.BooleanField(
        default=False,
        help_text="Changes here need the release-manager permission and a confirmation.",
    )
    ruleset_version = models.PositiveBigIntegerField(
        default=0,
        editable=False,
        help_text="Grows with every change that affects evaluation here; ETags derive from it.",
    )

    # Version bumps are bookkeeping, not edits: they stay out of the history.
    history = HistoricalRecords(excluded_fields=["ruleset_version"])

    class Meta:
        ordering = ("project", "order", "key")
        verbose_name = "environment"
        verbose_name_plural = "environments"
        permissions = [
            ("change_protected_environment", "Can change flags in protected environments"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "key"], name="environment_key_unique_per_project"
            ),
            models.CheckConstraint(
                condition=models.Q(key__regex=r"^[A-Za-z0-9._-]+$"), name="environment_key_format"
            ),
        ]
        indexes = [models.Index(fields=["project", "order"], name="environment_project_order")]

    def __str__(self) -> str:
        return f"{self.project.key}/{self.key}" if self.project_id else self.key


class Tag(models.Model):
    """A label for flags (team, area, release train), used to filter the flag list."""

    name = models.CharField(max_length=50, unique=True, help_text="Tag name, unique.")
    color = models.CharField(
        max_length=7, default="#64748b", validators=[color_validator], help_text="Badge colour."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)
        verbose_name = "tag"
        verbose_name_plural = "tags"
        constraints = [
            models.UniqueConstraint(Lower("name"), name="tag_name_unique_case_insensitive"),
        ]

    def __str__(self) -> str:
        return self.name
