"""Targeting: reusable segments, ordered rules, and the conditions both are made of."""

from __future__ import annotations

from django.db import models

from flagship_sdk.engine import OPERATORS

from ..formats import HUNDRED_PERCENT
from ..history.recording import AuditedHistory
from ..validation import validate_condition, validate_serve
from ..words import OPERATOR_LABELS, condition_in_words, serve_in_words
from .flags import FlagState
from .keys import KeyedModel, key_format_check, key_validator
from .projects import Project

assert set(OPERATOR_LABELS) == OPERATORS  # noqa: S101  # every engine operator has a label


class Segment(KeyedModel):
    """A reusable, named group of users defined by conditions (e.g. beta-testers)."""

    duplicate_fields = ("project", "key")
    duplicate_message = "This project already has a segment %(value)s."

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="segments", help_text="Owning project."
    )
    key = models.CharField(
        max_length=100, validators=[key_validator], help_text="Identifier; cannot change later."
    )
    name = models.CharField(max_length=200, help_text="Name shown to people.")
    description = models.TextField(blank=True, help_text="Who is in this segment.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = AuditedHistory()

    class Meta:
        ordering = ("project", "key")
        verbose_name = "segment"
        verbose_name_plural = "segments"
        constraints = [
            models.UniqueConstraint(
                fields=["project", "key"], name="segment_key_unique_per_project"
            ),
            key_format_check("segment_key_format"),
        ]

    def __str__(self) -> str:
        return self.name


class Rule(models.Model):
    """One targeting rule of a flag in an environment; the first matching rule serves."""

    state = models.ForeignKey(
        FlagState, on_delete=models.CASCADE, related_name="rules", help_text="Flag and environment."
    )
    order = models.PositiveIntegerField(default=0, help_text="Rules are tried smallest first.")
    description = models.CharField(
        max_length=200, blank=True, help_text="What this rule is for, in a few words."
    )
    segments = models.ManyToManyField(
        Segment,
        blank=True,
        related_name="rules",
        help_text="Users must be in every one of these segments.",
    )
    rollout = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Share of matching users it applies to, in thousandths of a percent; "
        "empty means everyone.",
    )
    bucket_by = models.CharField(
        max_length=200,
        default="targetingKey",
        help_text="Attribute(s) that identify a user for percentages, comma-separated; the first "
        "present is used.",
    )
    serve = models.JSONField(help_text="What matching users get: one variant, or a split.")

    history = AuditedHistory(
        m2m_fields=[segments],
        indexes=(
            models.Index(fields=["state", "id"], name="hist_rule_state_id"),
            models.Index(fields=["id", "history_date", "history_id"], name="hist_rule_versions"),
            # The last change of a state's rules (flags.stale): one step down this index.
            models.Index(fields=["state", "history_date"], name="hist_rule_state_date"),
        ),
    )

    class Meta:
        ordering = ("state", "order", "id")
        verbose_name = "rule"
        verbose_name_plural = "rules"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rollout__isnull=True) | models.Q(rollout__lte=HUNDRED_PERCENT),
                name="rule_rollout_at_most_100_percent",
            ),
        ]

    def __str__(self) -> str:
        # Not its position: that moves whenever rules above it are added, removed or reordered.
        return self.description or "untitled rule"

    def clean(self) -> None:
        """What the rule serves must exist; rollout and bucket-by must be usable."""
        if self.state_id is not None:
            validate_serve(self.state.flag, self.serve, field="serve", rule=self)

    def serve_display(self) -> str:
        """What the rule serves, in words."""
        return serve_in_words(self.serve)

    def bucket_attributes(self) -> list[str]:
        """The bucket-by attribute names, in order."""
        return [name.strip() for name in self.bucket_by.split(",") if name.strip()]


class Condition(models.Model):
    """One test on a context attribute, belonging to a rule or to a segment."""

    rule = models.ForeignKey(
        Rule, on_delete=models.CASCADE, null=True, blank=True, related_name="conditions"
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, null=True, blank=True, related_name="conditions"
    )
    order = models.PositiveSmallIntegerField(default=0)
    attribute = models.CharField(
        max_length=200, help_text="Context attribute, e.g. email, country, plan, appVersion."
    )
    operator = models.CharField(
        max_length=20,
        choices=list(OPERATOR_LABELS.items()),
        help_text="How the attribute is compared.",
    )
    values = models.JSONField(
        default=list, blank=True, help_text="Values compared against; any one may match."
    )
    negate = models.BooleanField(default=False, help_text="Invert the result (NOT).")
    case_insensitive = models.BooleanField(
        default=False, help_text="Ignore upper/lower case (text operators only)."
    )

    history = AuditedHistory(
        indexes=(
            models.Index(
                fields=["id", "history_date", "history_id"], name="hist_condition_versions"
            ),
        )
    )

    class Meta:
        ordering = ("order", "id")
        verbose_name = "condition"
        verbose_name_plural = "conditions"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(rule__isnull=False, segment__isnull=True)
                    | models.Q(rule__isnull=True, segment__isnull=False)
                ),
                name="condition_belongs_to_rule_or_segment",
            ),
            models.CheckConstraint(
                condition=models.Q(operator__in=sorted(OPERATORS)), name="condition_operator_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["rule", "order"], name="condition_rule_order"),
            models.Index(fields=["segment", "order"], name="condition_segment_order"),
        ]

    def __str__(self) -> str:
        return condition_in_words(self.as_document())

    def clean(self) -> None:
        """The engine must be able to use the operator and values (e.g. a regex RE2 accepts)."""
        if self.operator not in OPERATORS:
            return  # clean_fields() already reported it next to the operator, in words
        validate_condition(self)

    def as_document(self) -> dict[str, object]:
        """The condition as the ruleset format writes it (docs/ruleset-format.md section 3)."""
        # Imported here: flags.documents imports the models.
        from ..documents import condition_values_document  # noqa: PLC0415

        return condition_values_document(
            self.attribute, self.operator, self.values, self.negate, self.case_insensitive
        )
