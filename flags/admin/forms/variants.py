"""Variant values typed by the flag's kind, variant choices, and the flag-state form."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from django import forms

from ...formats import format_variant_value, parse_variant_value
from ...models import Flag, FlagState, Variant
from ...selectors import dependents_in
from .base import ExplainedModelForm, TextBoxField
from .serve import ServeField


def variant_choices(variants: Sequence[Variant]) -> list[tuple[str, str]]:
    """(key, label) pairs for a serve widget: "sale — Winter sale!"."""
    return [(variant.key, variant_label(variant)) for variant in variants]


def variant_label(variant: Variant) -> str:
    """A variant as people read it: its key, its name and its value."""
    value = json.dumps(variant.value, ensure_ascii=False)
    name = f" ({variant.name})" if variant.name and variant.name != variant.key else ""
    return f"{variant.key}{name} = {value}"


# --- Flags and variants ------------------------------------------------------------------------


class VariantForm(ExplainedModelForm[Variant]):
    """A variant row: the value is typed as text and read according to the flag's kind."""

    value = TextBoxField(
        required=False,
        strip=False,
        help_text="Text for a string flag, a number for a number flag, JSON for a JSON flag.",
        widget=forms.TextInput(attrs={"size": 40}),
    )

    class Meta:
        model = Variant
        fields = ("key", "name", "value")

    def __init__(self, *args: Any, flag: Flag | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The flag's kind is read when cleaning: on the add page it is known only once the flag's
        # own form has been cleaned, after this form was built.
        self.flag = flag
        if self.instance.pk is not None:
            if "key" in self.fields:
                self.fields["key"].disabled = True  # a variant's key is part of the contract
            if self.flag is not None and self.flag.kind == Flag.Kind.BOOLEAN:
                self.fields.pop("value", None)  # on is true and off is false, for ever
            elif self.flag is not None:
                text = format_variant_value(self.flag.kind, self.instance.value)
                self.initial["value"] = text
                if "\n" in text and "value" in self.fields:
                    # A one-line input would drop the line breaks when the form is sent back.
                    self.fields["value"].widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def clean_value(self) -> Any:
        """Read the text according to the flag's kind."""
        text: str = self.cleaned_data.get("value") or ""
        kind = self.flag.kind if self.flag is not None else Flag.Kind.STRING
        return parse_variant_value(kind, text)


class FlagForm(ExplainedModelForm[Flag]):
    """The flag's page; a flag others require asks for a second "yes" before its variants change."""

    confirm_dependents = forms.BooleanField(
        required=False,
        label="Change its variants although other flags require it",
        help_text="What those flags get depends on what this one serves.",
    )

    class Meta:
        model = Flag
        fields = ("name",)  # the admin's fieldsets say which


# --- Flag states, rules, conditions and prerequisites ------------------------------------------


class VariantChoiceField(forms.ModelChoiceField[Variant]):
    """Variants labelled with their value."""

    def label_from_instance(self, obj: Variant) -> str:
        """Key, name and value."""
        return variant_label(obj)


class FlagStateForm(ExplainedModelForm[FlagState]):
    """A flag in one environment: on/off, the off variant and the default serve."""

    off_variant = VariantChoiceField(
        queryset=Variant.objects.none(),
        help_text=FlagState._meta.get_field("off_variant").help_text,
    )
    default_serve = ServeField(
        label="Default serve",
        help_text="Served when no rule matches: one variant, or percentages adding up to 100 %.",
    )

    confirm_off = forms.BooleanField(
        required=False,
        label="Turn it off although other flags require it",
        help_text="Flags that require this one serve their off variant while it is off.",
    )

    class Meta:
        model = FlagState
        fields = ("enabled", "off_variant", "default_serve", "version")
        widgets = {"version": forms.HiddenInput}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dependents: list[str] = []
        if not self.instance.flag_id:
            return
        if self.instance.pk is not None and self.instance.enabled:
            self.dependents = dependents_in(self.instance.flag_id, self.instance.environment_id)
        variants = list(self.instance.flag.variants.order_by("order", "id"))
        if "off_variant" in self.fields:
            field = cast(VariantChoiceField, self.fields["off_variant"])
            field.queryset = Variant.objects.filter(flag_id=self.instance.flag_id)
        if "default_serve" in self.fields:
            cast(ServeField, self.fields["default_serve"]).set_variants(variant_choices(variants))

    def clean(self) -> dict[str, Any]:
        """Turning off a flag that other live flags require here needs a second "yes"."""
        cleaned = super().clean() or {}
        turning_off = self.dependents and cleaned.get("enabled") is False
        if turning_off and not cleaned.get("confirm_off"):
            names = ", ".join(self.dependents)
            verb = "requires" if len(self.dependents) == 1 else "require"
            self.add_error(
                "enabled",
                f"{names} {verb} {self.instance.flag.key} in {self.instance.environment.name}: "
                "while it is off, they serve their off variant. Tick “Turn it off although "
                "other flags require it” to confirm.",
            )
        return cleaned
