"""Projects, their environments, and tags."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Lower

from ..history.recording import AuditedHistory
from .keys import (
    KeyedModel,
    color_validator,
    key_format_check,
    key_validator,
    lower_color,
)


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
    reason_required = models.BooleanField(
        default=False,
        verbose_name="reason required in protected environments",
        help_text="Changes in this project's protected environments need a reason, which their "
        "history keeps.",
    )
    system = models.BooleanField(
        default=False,
        editable=False,
        help_text="FlagShip's own project (created by a migration): its flags switch FlagShip's "
        "optional capabilities, and only administrators see it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = AuditedHistory()

    class Meta:
        ordering = ("name",)
        verbose_name = "project"
        verbose_name_plural = "projects"
        permissions = [
            ("manage_system_project", "Can see and change FlagShip's own flags"),
        ]
        constraints = [
            key_format_check("project_key_format"),
            models.UniqueConstraint(
                fields=["system"], condition=models.Q(system=True), name="project_one_system"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def unique_error_message(
        self, model_class: type[models.Model], unique_check: Sequence[str]
    ) -> ValidationError:
        """A key already taken is reported in words (Django puts it next to the key)."""
        if tuple(unique_check) == ("key",):
            return ValidationError(
                "A project with the key %(value)s already exists.",
                code="unique",
                params={"value": self.key},
            )
        return super().unique_error_message(model_class, unique_check)


class Environment(KeyedModel):
    """A deployment stage of a project (development, staging, production) with its flag states."""

    duplicate_fields = ("project", "key")
    duplicate_message = "This project already has an environment %(value)s."

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
    required_approvals = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(10)],
        help_text="Approvals a change to a flag here needs before it applies (0: no change "
        "requests). Only for a protected environment.",
    )
    allow_self_approval = models.BooleanField(
        default=False,
        help_text="Whether the author of a change request may approve it (and count).",
    )
    ruleset_version = models.PositiveBigIntegerField(
        default=0,
        editable=False,
        help_text="Grows with every change that affects evaluation here; ETags derive from it.",
    )

    # Version bumps are bookkeeping, not edits: they stay out of the history.
    history = AuditedHistory(excluded_fields=["ruleset_version"])

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
            key_format_check("environment_key_format"),
        ]
        indexes = [models.Index(fields=["project", "order"], name="environment_project_order")]

    def __str__(self) -> str:
        return f"{self.project.key}/{self.key}" if self.project_id else self.key

    @property
    def needs_change_requests(self) -> bool:
        """Whether a person's change to a flag here becomes a change request."""
        return self.protected and self.required_approvals > 0

    def clean(self) -> None:
        """Store the colour in lower case (see ``lower_color``); approvals need protection."""
        super().clean()
        if self.required_approvals and not self.protected:
            raise ValidationError(
                {"required_approvals": "Only a protected environment takes change requests."},
                code="not_protected",
            )
        if self.color:  # a missing colour is the field validation's to report
            self.color = lower_color(self.color)


class Tag(models.Model):
    """A label for flags (team, area, release train), used to filter the flag list."""

    name = models.CharField(max_length=50, unique=True, help_text="Tag name, unique.")
    color = models.CharField(
        max_length=7, default="#64748b", validators=[color_validator], help_text="Badge colour."
    )

    history = AuditedHistory()

    class Meta:
        ordering = ("name",)
        verbose_name = "tag"
        verbose_name_plural = "tags"
        constraints = [
            models.UniqueConstraint(Lower("name"), name="tag_name_unique_case_insensitive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Store the colour in lower case (see ``lower_color``)."""
        super().clean()
        if self.color:  # a missing colour is the field validation's to report
            self.color = lower_color(self.color)

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        """A name taken in another case is reported next to the name, in words."""
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError:
            # The case-insensitive name is the only constraint; Django would say
            # 'Constraint "tag_name_unique_case_insensitive" is violated.' above the form.
            raise ValidationError(
                {
                    "name": ValidationError(
                        "A tag %(value)s already exists (tag names ignore case).",
                        code="duplicate_name",
                        params={"value": self.name},
                    )
                }
            ) from None
