"""Percentages and serves: a person picks a variant or types a percentage per variant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

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
