"""People (a custom user model from the first migration) and the API keys machines use."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models

from flags.history.recording import AuditedHistory


class User(AbstractUser):
    """A person who signs in to the admin or the API. Roles come from groups (accounts.roles)."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = "user"
        verbose_name_plural = "users"

    def __str__(self) -> str:
        return self.get_full_name() or self.username


# The fields ``api_key_scope_matches_kind`` ties together.
SCOPE_FIELDS: Final = frozenset({"kind", "environment", "user"})


class ApiKey(models.Model):
    """A secret for machines: environment keys for SDKs, admin tokens for automation.

    The secret is shown once, when issued; only its SHA-256 is stored, with a short public
    ``lookup`` part to find the row. Secrets are 190 bits of randomness, so a fast hash is safe.
    """

    class Kind(models.TextChoices):
        SERVER = "server", "Server key (may download the ruleset)"
        CLIENT = "client", "Client key (evaluated values of client-visible flags only)"
        ADMIN = "admin", "Admin token (acts with its owner's permissions)"

    kind = models.CharField(max_length=6, choices=Kind.choices, help_text="What the key may do.")
    name = models.CharField(
        max_length=100, help_text="What the key is for, e.g. 'checkout-service'."
    )
    lookup = models.CharField(
        max_length=16, unique=True, editable=False, help_text="Public part used to find the key."
    )
    secret_hash = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of the secret."
    )
    environment = models.ForeignKey(
        "flags.Environment",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="The environment a server or client key evaluates in.",
    )
    user = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_tokens",
        help_text="The owner an admin token acts as.",
    )
    created_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who issued the key.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set when revoked.")
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="Last successful use (updated at most once a minute)."
    )

    history = AuditedHistory(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="admin", user__isnull=False, environment__isnull=True)
                    | models.Q(
                        kind__in=["server", "client"], environment__isnull=False, user__isnull=True
                    )
                ),
                name="api_key_scope_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.lookup}…)"

    def scope_errors(self) -> dict[str, ValidationError]:
        """What is wrong with the key's scope for its kind, by the field a person fixes."""
        errors: dict[str, ValidationError] = {}
        if self.kind == self.Kind.ADMIN:
            if self.user_id is None:
                errors["user"] = ValidationError(
                    "Choose the user this admin token acts as.", code="user_required"
                )
            if self.environment_id is not None:
                errors["environment"] = ValidationError(
                    "An admin token acts as its user in every environment: leave this empty.",
                    code="environment_not_allowed",
                )
        elif self.kind in (self.Kind.SERVER, self.Kind.CLIENT):
            if self.environment_id is None:
                errors["environment"] = ValidationError(
                    "Choose the environment this %(kind)s key evaluates in.",
                    code="environment_required",
                    params={"kind": self.kind},
                )
            if self.user_id is not None:
                errors["user"] = ValidationError(
                    "A %(kind)s key belongs to its environment, not to a user: leave this empty "
                    "(only admin tokens have a user).",
                    code="user_not_allowed",
                    params={"kind": self.kind},
                )
        return errors

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        """A scope that does not fit the kind is reported in words next to its fields.

        Django would report ``api_key_scope_matches_kind`` as 'Constraint ... is violated.' above
        the whole form; the same rule is checked here first and, when it fails, that constraint
        is skipped (Django skips a constraint whose fields are excluded).
        """
        excluded = set(exclude or ())
        scope = {} if excluded & SCOPE_FIELDS else self.scope_errors()
        errors = {field: [error] for field, error in scope.items()}
        if errors:
            excluded |= SCOPE_FIELDS
        try:
            super().validate_constraints(exclude=excluded)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)
