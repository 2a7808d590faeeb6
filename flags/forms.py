"""Admin forms and widgets: people pick variants and type percentages; nobody types JSON.

Values are converted here (a percentage to thousandths, lines of text to a list, text to a
variant value of the flag's kind); what they mean is checked by the models' ``clean()`` and by the
services, with the engine's own words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar, cast

from django import forms
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db import models
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from .models import Condition, Environment, Flag, FlagState, Prerequisite, Rule, Variant
from .selectors import segment_choices

_M = TypeVar("_M", bound=models.Model)

THOUSANDTHS = 1000  # rollouts and weights are stored in thousandths of a percent
MAX_DECIMALS = 3


def parse_percentage(text: str) -> int:
    """Turn "12.5" (percent, up to 3 decimals) into thousandths of a percent (12500)."""
    try:
        number = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        raise ValidationError("Enter a percentage such as 25 or 33.333.", code="invalid") from None
    if not number.is_finite() or number < 0 or number > 100:
        raise ValidationError("Enter a percentage from 0 to 100.", code="invalid")
    scaled = number * THOUSANDTHS
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"Use at most {MAX_DECIMALS} decimals (steps of 0.001 %).", code="invalid"
        )
    return int(scaled)


def format_percentage(thousandths: int) -> str:
    """Turn thousandths of a percent (12500) into "12.5"."""
    return f"{Decimal(thousandths) / THOUSANDTHS:f}".rstrip("0").rstrip(".") or "0"


# --- Serve: one variant, or a split with a percentage per variant ------------------------------


class ServeWidget(forms.Widget):
    """Radio "one variant" / "split", a variant select, and one percentage input per variant."""

    template_name = "flags/widgets/serve.html"

    def __init__(
        self, variants: Sequence[tuple[str, str]] = (), attrs: dict[str, Any] | None = None
    ) -> None:
        super().__init__(attrs)
        self.variants = list(variants)

    class Media:
        css = {"all": ("flags/admin.css",)}
        js = ("flags/serve.js",)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> dict[str, Any] | None:
        """Collect the mode, the chosen variant and the percentages from the posted inputs."""
        if f"{name}_mode" not in data:
            return None
        return {
            "mode": data.get(f"{name}_mode"),
            "variant": data.get(f"{name}_variant", ""),
            "weights": {key: data.get(f"{name}_weight_{key}", "") for key, _ in self.variants},
        }

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        """Whether nothing of this widget was posted."""
        return f"{name}_mode" not in data

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        """Template context: the mode, the chosen variant, one row per variant with its share."""
        current = _serve_inputs(value)
        return {
            "widget": {
                "name": name,
                "attrs": self.build_attrs(self.attrs, attrs),
                "mode": current["mode"],
                "selected": current["variant"],
                "rows": [
                    {"key": key, "label": label, "weight": current["weights"].get(key, "")}
                    for key, label in self.variants
                ],
            }
        }

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        """Render with the project's template engine (templates/flags/widgets/serve.html)."""
        html = render_to_string(self.template_name, self.get_context(name, value, attrs))
        return mark_safe(html)  # noqa: S308  # rendered by an autoescaping template


def _serve_inputs(value: Any) -> dict[str, Any]:
    """Normalise a serve document, or what was posted, into mode, variant and percentage texts."""
    if isinstance(value, Mapping) and "mode" in value:
        return {
            "mode": value.get("mode") or "variant",
            "variant": value.get("variant") or "",
            "weights": dict(value.get("weights") or {}),
        }
    if isinstance(value, Mapping) and isinstance(value.get("split"), list):
        weights = {
            str(entry.get("variant")): format_percentage(entry["weight"])
            for entry in value["split"]
            if isinstance(entry, Mapping) and isinstance(entry.get("weight"), int)
        }
        return {"mode": "split", "variant": "", "weights": weights}
    variant = value.get("variant", "") if isinstance(value, Mapping) else ""
    return {"mode": "variant", "variant": variant, "weights": {}}


class ServeField(forms.Field):
    """A serve document built from the widget: {"variant": k} or {"split": [...]}."""

    widget = ServeWidget

    def __init__(self, *, variants: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_variants(variants)

    def set_variants(self, variants: Sequence[tuple[str, str]]) -> None:
        """Offer these (key, label) variants."""
        self.variants = list(variants)
        cast(ServeWidget, self.widget).variants = self.variants

    def clean(self, value: Any) -> dict[str, Any] | None:
        """Build the document; whether the split adds up is the engine's to say (model clean)."""
        if value is None:
            if self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return None
        keys = [key for key, _ in self.variants]
        if value.get("mode") == "split":
            split: list[dict[str, Any]] = []
            errors = []
            for key in keys:
                text = (value["weights"].get(key) or "").strip()
                try:
                    weight = parse_percentage(text) if text else 0
                except ValidationError as error:
                    errors.append(f"{key}: {error.messages[0]}")
                    continue
                split.append({"variant": key, "weight": weight})
            if errors:
                raise ValidationError(errors, code="invalid")
            served = [entry for entry in split if entry["weight"] > 0]
            return {"split": served or split}
        if value.get("variant") not in keys:
            raise ValidationError("Choose the variant to serve.", code="required")
        return {"variant": value["variant"]}

    def has_changed(self, initial: Any, data: Any) -> bool:
        """Compare documents, not the widget's raw data."""
        try:
            return bool(self.clean(data) != initial)
        except ValidationError:
            return True


def variant_choices(variants: Sequence[Variant]) -> list[tuple[str, str]]:
    """(key, label) pairs for a serve widget: "sale — Winter sale!"."""
    return [(variant.key, variant_label(variant)) for variant in variants]


def variant_label(variant: Variant) -> str:
    """A variant as people read it: its key, its name and its value."""
    value = json.dumps(variant.value, ensure_ascii=False)
    name = f" ({variant.name})" if variant.name and variant.name != variant.key else ""
    return f"{variant.key}{name} = {value}"


# --- Flags and variants ------------------------------------------------------------------------


def parse_variant_value(kind: str, text: str) -> Any:
    """Turn what a person typed into a value of the flag's kind (JSON only for JSON flags)."""
    if kind == Flag.Kind.STRING:
        return text
    if kind == Flag.Kind.NUMBER:
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            raise ValidationError("Enter a number, such as 3 or 2.5.", code="invalid") from None
        if not number.is_finite():
            raise ValidationError("Enter a finite number.", code="invalid")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == Flag.Kind.JSON:
        try:
            return json.loads(text)
        except ValueError as error:
            raise ValidationError(f"Enter valid JSON: {error}.", code="invalid") from None
    raise ValidationError("A boolean flag's variants are on and off.", code="invalid_variant")


def format_variant_value(kind: str, value: Any) -> str:
    """The text a person edits for a stored value."""
    if kind == Flag.Kind.STRING and isinstance(value, str):
        return value
    if kind == Flag.Kind.NUMBER and isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


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


class VariantForm(ExplainedModelForm[Variant]):
    """A variant row: the value is typed as text and read according to the flag's kind."""

    value = forms.CharField(
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
                self.initial["value"] = format_variant_value(self.flag.kind, self.instance.value)

    def clean_value(self) -> Any:
        """Read the text according to the flag's kind."""
        text: str = self.cleaned_data.get("value") or ""
        kind = self.flag.kind if self.flag is not None else Flag.Kind.STRING
        return parse_variant_value(kind, text)


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

    class Meta:
        model = FlagState
        fields = ("enabled", "off_variant", "default_serve", "version")
        widgets = {"version": forms.HiddenInput}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.flag_id:
            return
        variants = list(self.instance.flag.variants.order_by("order", "id"))
        if "off_variant" in self.fields:
            field = cast(VariantChoiceField, self.fields["off_variant"])
            field.queryset = Variant.objects.filter(flag_id=self.instance.flag_id)
        if "default_serve" in self.fields:
            cast(ServeField, self.fields["default_serve"]).set_variants(variant_choices(variants))


class PercentField(forms.CharField):
    """A percentage with up to 3 decimals, cleaned to thousandths of a percent (int)."""

    def prepare_value(self, value: Any) -> Any:
        """Show stored thousandths as a percentage; leave typed text alone."""
        if isinstance(value, int):
            return format_percentage(value)
        return value

    def clean(self, value: Any) -> int | None:
        """Empty means no percentage; otherwise thousandths."""
        text = super().clean(value)
        if not text:
            return None
        return parse_percentage(text)


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
        fields = ("state", "description", "segments", "rollout", "bucket_by", "serve")
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
    """Values one per line, cleaned to a list of strings."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 30})

    def prepare_value(self, value: Any) -> Any:
        """Show a stored list one value per line."""
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def clean(self, value: Any) -> list[str]:
        """One value per non-empty line, surrounding spaces removed."""
        text = super().clean(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


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


class EnvironmentChoiceField(forms.ModelChoiceField[Environment]):
    """Environments labelled with their project: "Demo · Production"."""

    def label_from_instance(self, obj: Environment) -> str:
        """Project and environment names."""
        return f"{obj.project.name} · {obj.name}"


class FlagActionForm(ActionForm):
    """The flag list's action bar, with the environment the on/off actions apply to."""

    environment = EnvironmentChoiceField(
        queryset=Environment.objects.select_related("project").order_by(
            "project__name", "order", "key"
        ),
        required=False,
        label="In environment:",
        help_text="Used by the turn on / turn off actions.",
    )


class EvaluateForm(forms.Form):
    """Which environment to evaluate in, and the context as JSON (optional)."""

    environment = EnvironmentChoiceField(
        queryset=Environment.objects.select_related("project").order_by(
            "project__name", "order", "key"
        ),
        help_text="Whose rules to use (the ruleset SDKs of that environment download).",
    )
    context_json = forms.CharField(
        required=False,
        label="Context as JSON",
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60, "spellcheck": "false"}),
        help_text='Optional, e.g. {"targetingKey": "user-1", "plan": "pro"}. '
        "The attribute rows are added to it (and win on the same name).",
    )

    def clean_context_json(self) -> dict[str, Any]:
        """A JSON object, or nothing."""
        text = (self.cleaned_data.get("context_json") or "").strip()
        if not text:
            return {}
        try:
            context = json.loads(text)
        except ValueError as error:
            raise ValidationError(f"Enter valid JSON: {error}.", code="invalid") from None
        if not isinstance(context, dict):
            raise ValidationError("Enter a JSON object ({...}).", code="invalid")
        return context


class AttributeForm(forms.Form):
    """One context attribute: a name and a value (text; numbers, dates and versions parse)."""

    name = forms.CharField(required=False, widget=forms.TextInput(attrs={"size": 20}))
    value = forms.CharField(required=False, strip=False, widget=forms.TextInput(attrs={"size": 40}))


AttributeFormSet = forms.formset_factory(AttributeForm, extra=5)
