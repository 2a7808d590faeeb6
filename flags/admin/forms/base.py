"""The base of FlagShip's admin model forms."""

from __future__ import annotations

from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput, JSONString

from flagship import jsonbody

from ...formats import normalize_line_breaks

_M = TypeVar("_M", bound=models.Model)


class TextBoxField(forms.CharField):
    """Text from a multi-line box: browsers send its line breaks as CRLF; they are stored as LF.

    Comparing the normalised texts also keeps an untouched box from counting as a change.
    """

    def to_python(self, value: Any) -> str | None:
        """The text with LF line breaks."""
        text = super().to_python(value)
        return normalize_line_breaks(text) if isinstance(text, str) else text


class LimitedJSONField(forms.JSONField):
    """Django's JSON form field, read through ``flagship.jsonbody`` (the admin's JSON fields).

    A value nested too deep, ``NaN`` or ``Infinity`` is a form error, not a 500.
    """

    default_error_messages = {  # Django's own convention
        "json_too_deep": "Enter JSON whose objects and arrays nest at most %(limit)s levels deep.",
    }

    def to_python(self, value: Any) -> Any:
        """The JSON value of the text typed."""
        if self.disabled or value in self.empty_values or not isinstance(value, str):
            return super().to_python(value)
        try:
            converted = jsonbody.loads(value)
        except jsonbody.JSONTooDeepError as error:
            raise ValidationError(
                self.error_messages["json_too_deep"],
                code="json_too_deep",
                params={"limit": error.limit},
            ) from None
        except ValueError:
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        """The value posted, or the text itself when it is not JSON this field accepts."""
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        try:
            return jsonbody.loads(data)
        except ValueError:
            return InvalidJSONInput(data)


class ExplainedModelForm(forms.ModelForm[_M]):
    """A model form in which a field that failed its own cleaning keeps that one explanation.

    The model's ``clean()`` runs even for fields the form could not read, and then judges the
    value the instance still holds (none on a new variant; the old one on a revert): its second
    opinion on the same field only confuses.
    """

    def add_error(self, field: str | None, error: Any) -> None:
        """Add an error, leaving out the model's opinion on fields that already failed."""
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            failed = {
                name for name in error.error_dict if name in self.fields and name in self.errors
            }
            if failed:
                kept = {name: e for name, e in error.error_dict.items() if name not in failed}
                if not kept:
                    return
                error = ValidationError(kept)
        super().add_error(field, error)
