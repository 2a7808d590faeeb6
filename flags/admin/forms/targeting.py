"""Rule, condition and prerequisite forms: values one per line, percentages, no JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, cast

from django import forms
from django.core.exceptions import ValidationError

from ...formats import (
    format_condition_values,
    normalize_line_breaks,
    parse_condition_values,
    same_json,
)
from ...models import Condition, Flag, FlagState, Prerequisite, Rule
from ...selectors import segment_choices
from .base import ExplainedModelForm
from .serve import PercentField, ServeField
from .variants import variant_choices


class RuleForm(ExplainedModelForm[Rule]):
    """A targeting rule: segments of its project, a rollout percentage and what it serves."""

    flag_state: ClassVar[FlagState | None] = None

    rollout = PercentField(
        required=False,
        label="Rollout (%)",
        help_text="Share of matching users the rule applies to, 0 to 100 with up to 3 decimals; "
        "empty means everyone.",
        widget=forms.TextInput(attrs={"size": 8, "inputmode": "decimal"}),
    )
    serve = ServeField(help_text="What matching users get: one variant, or a percentage split.")

    class Meta:
        model = Rule
        fields: tuple[str, ...] = (
            "state",
            "description",
            "segments",
            "rollout",
            "bucket_by",
            "serve",
        )
        widgets = {"state": forms.HiddenInput, "segments": forms.CheckboxSelectMultiple}

    @classmethod
    def for_state(cls, state: FlagState) -> type[RuleForm]:
        """The form bound to a flag state (its variants and its project's segments)."""
        return cast(type[RuleForm], type(cls.__name__, (cls,), {"flag_state": state}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state = self.instance.state if self.instance.state_id else self.flag_state
        if state is None:
            return
        if "segments" in self.fields:
            field = cast(forms.ModelMultipleChoiceField[Any], self.fields["segments"])
            field.queryset = segment_choices(state.flag.project_id)
        if "serve" in self.fields:
            variants = list(state.flag.variants.order_by("order", "id"))
            cast(ServeField, self.fields["serve"]).set_variants(variant_choices(variants))


class ValuesField(forms.CharField):
    """Condition values one per line (``flags.formats``: quoted or typed where a line needs it)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 30})

    def prepare_value(self, value: Any) -> Any:
        """Show a stored list one value per line."""
        if isinstance(value, list):
            return format_condition_values(value)
        return value

    def to_python(self, value: Any) -> Any:
        """The posted text with LF line breaks (so an untouched box is not a change)."""
        text = super().to_python(value)
        return normalize_line_breaks(text) if isinstance(text, str) else text

    def clean(self, value: Any) -> list[Any]:
        """The values, in order."""
        return parse_condition_values(super().clean(value) or "")

    def has_changed(self, initial: Any, data: Any) -> bool:
        """Compare the values, not their text."""
        try:
            return not same_json(self.clean(data), initial or [])
        except ValidationError:
            return True


class ConditionForm(forms.ModelForm[Condition]):
    """A condition row: the engine's operators under their human labels, values one per line."""

    values = ValuesField(
        required=False,
        help_text="One value per line; any one may match. Leave empty for is set / is not set.",
    )

    class Meta:
        model = Condition
        fields = ("attribute", "operator", "values", "negate", "case_insensitive")
        widgets = {"attribute": forms.TextInput(attrs={"size": 16})}


class PrerequisiteForm(forms.ModelForm[Prerequisite]):
    """A parent flag of the same project and, optionally, which of its variants must be served."""

    variants = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Parent variants that satisfy this; none ticked means 'any but its off variant'.",
    )

    class Meta:
        model = Prerequisite
        fields = ("flag", "variants")

    def __init__(self, *args: Any, candidates: Sequence[Flag] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        listed = list(candidates or [])
        if self.instance.pk is not None:
            # A stored row keeps its parent, even one no longer offered (archived since).
            listed = [self.instance.flag]
            if "flag" in self.fields:
                self.fields["flag"].disabled = True
            parent = self.instance.flag_id
            self.initial["variants"] = [f"{parent}:{key}" for key in self.instance.variants]
        if "flag" in self.fields:
            field = cast(forms.ModelChoiceField[Flag], self.fields["flag"])
            field.queryset = Flag.objects.filter(pk__in=[flag.pk for flag in listed])
        if "variants" in self.fields:
            field_v = cast(forms.MultipleChoiceField, self.fields["variants"])
            field_v.choices = [
                (flag.key, [(f"{flag.pk}:{v.key}", v.key) for v in flag.variants.all()])
                for flag in listed
            ]

    def clean(self) -> dict[str, Any]:
        """The ticked variants must be the chosen parent's; store their keys."""
        cleaned = super().clean() or {}
        parent: Flag | None = cleaned.get("flag")
        chosen: list[str] = cleaned.get("variants") or []
        if parent is not None:
            wrong = [value for value in chosen if not value.startswith(f"{parent.pk}:")]
            if wrong:
                self.add_error("variants", f"Tick only variants of {parent.key}.")
            cleaned["variants"] = [value.split(":", 1)[1] for value in chosen]
        return cleaned


# --- Actions and "Evaluate as" -----------------------------------------------------------------
