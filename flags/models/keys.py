"""Validators for the keys people choose: URL-safe, stable, shown in code and URLs."""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import RegexValidator
from django.db import models

KEY_PATTERN = r"^[A-Za-z0-9._-]+\Z"


def key_format_check(name: str) -> models.CheckConstraint:
    r"""The database's own check of a key's format.

    The pattern ends with ``\Z``, not ``$``: ``$`` would let a trailing newline through where the
    regex runs in Python's ``re``, as it does on SQLite.
    """
    return models.CheckConstraint(condition=models.Q(key__regex=KEY_PATTERN), name=name)


key_validator = RegexValidator(
    regex=KEY_PATTERN,
    message="Use only letters, digits, dots, dashes and underscores (no spaces).",
    code="invalid_key",
)
color_validator = RegexValidator(
    regex=r"^#[0-9a-fA-F]{6}\Z",
    message="Use a colour such as #22c55e.",
    code="invalid_color",
)


def lower_color(color: str) -> str:
    """A colour as it is stored: in lower case, as browsers' colour pickers send it.

    ``#22C55E`` and ``#22c55e`` are the same colour; storing one spelling means a form saved
    unchanged (the admin's ``<input type="color">`` sends lower case) changes nothing.
    """
    return color.lower()


def duplicate_next_to_field(
    error: ValidationError, unique_check: tuple[str, ...], field: str, message: str, value: object
) -> ValidationError:
    """Move Django's "Flag with this Project and Key already exists." next to ``field``, in words.

    Django reports a unique constraint over several fields above the whole form; a person fixes
    it in one field (the key they typed), so that is where the message belongs.
    """
    errors = error.update_error_dict({})
    general = []
    for item in errors.pop(NON_FIELD_ERRORS, []):
        check = tuple((item.params or {}).get("unique_check", ()))
        if item.code == "unique_together" and check == unique_check:
            duplicate = ValidationError(message, code="duplicate_key", params={"value": value})
            errors.setdefault(field, []).append(duplicate)
        else:
            general.append(item)
    if general:
        errors[NON_FIELD_ERRORS] = general
    return ValidationError(errors)


class KeyedModel(models.Model):
    """A model whose multi-field unique key is reported next to the field a person typed.

    Subclasses name the unique fields, the field that takes the message, and the message.
    """

    duplicate_fields: ClassVar[tuple[str, ...]]
    duplicate_field: ClassVar[str] = "key"
    duplicate_message: ClassVar[str]

    class Meta:
        abstract = True

    def duplicate_value(self) -> object:
        """The value named in the message."""
        return getattr(self, self.duplicate_field)

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        """Run Django's checks, moving a duplicate key's message next to its field."""
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as error:
            raise duplicate_next_to_field(
                error,
                self.duplicate_fields,
                self.duplicate_field,
                self.duplicate_message,
                self.duplicate_value(),
            ) from None
