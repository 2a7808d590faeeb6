"""Validators for the keys people choose: URL-safe, stable, shown in code and URLs."""

from __future__ import annotations

from django.core.validators import RegexValidator

KEY_PATTERN = r"^[A-Za-z0-9._-]+\Z"

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
