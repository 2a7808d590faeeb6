"""Percentages and serves: a person picks a variant or types a percentage per variant."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from flagship import jsonbody

from ...formats import format_percentage, parse_percentage

# Members of a split serve besides its entries that the widget keeps as they are (set by the API).
SPLIT_EXTRAS = frozenset({"bucket_by"})

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
        """Collect the mode, the chosen variant, the percentages and the split's order."""
        if f"{name}_mode" not in data:
            return None
        return {
            "mode": data.get(f"{name}_mode"),
            "variant": data.get(f"{name}_variant", ""),
            "weights": {key: data.get(f"{name}_weight_{key}", "") for key, _ in self.variants},
            "order": [key for key in data.get(f"{name}_order", "").split(",") if key],
            "extra": data.get(f"{name}_extra", ""),
        }

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        """Whether nothing of this widget was posted."""
        return f"{name}_mode" not in data

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        """Template context: the mode, the chosen variant, one row per variant with its share.

        The rows come in the split's order (variants take consecutive buckets in that order),
        then the flag's other variants.
        """
        current = _serve_inputs(value)
        labels = dict(self.variants)
        order = [key for key in current["order"] if key in labels]
        order += [key for key, _ in self.variants if key not in order]
        return {
            "widget": {
                "name": name,
                "attrs": self.build_attrs(self.attrs, attrs),
                "mode": current["mode"],
                "selected": current["variant"],
                "order": ",".join(order),
                "extra": current["extra"],
                "extra_words": _extra_words(current["extra"]),
                "rows": [
                    {"key": key, "label": labels[key], "weight": current["weights"].get(key, "")}
                    for key in order
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
    """Normalise a serve document, or what was posted, into the widget's texts."""
    if isinstance(value, Mapping) and "mode" in value:
        return {
            "mode": value.get("mode") or "variant",
            "variant": value.get("variant") or "",
            "weights": dict(value.get("weights") or {}),
            "order": list(value.get("order") or []),
            "extra": value.get("extra") or "",
        }
    if isinstance(value, Mapping) and isinstance(value.get("split"), list):
        entries = [
            entry
            for entry in value["split"]
            if isinstance(entry, Mapping) and isinstance(entry.get("weight"), int)
        ]
        extra = {key: member for key, member in value.items() if key != "split"}
        return {
            "mode": "split",
            "variant": "",
            "weights": {str(e.get("variant")): format_percentage(e["weight"]) for e in entries},
            "order": [str(entry.get("variant")) for entry in entries],
            "extra": json.dumps(extra, ensure_ascii=False) if extra else "",
        }
    variant = value.get("variant", "") if isinstance(value, Mapping) else ""
    return {"mode": "variant", "variant": variant, "weights": {}, "order": [], "extra": ""}


def _extra_words(extra: str) -> str:
    try:
        members = jsonbody.loads(extra) if extra else {}
    except ValueError:
        return ""
    bucket_by = members.get("bucket_by") if isinstance(members, dict) else None
    if isinstance(bucket_by, list):
        return ", ".join(str(name) for name in bucket_by)
    return str(bucket_by) if bucket_by else ""


def _split_extras(text: str) -> dict[str, Any]:
    """The split's other members, posted back as they were rendered (JSON)."""
    if not text:
        return {}
    try:
        members = jsonbody.loads(text)
    except ValueError:
        members = None
    if not isinstance(members, dict) or not set(members) <= SPLIT_EXTRAS:
        raise ValidationError("The split's settings could not be read; reload the page.")
    return members


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
        """Build the document; whether the split adds up is the engine's to say (model clean).

        A split lists the variants whose share is filled in (0 included), in the order shown.
        """
        if value is None:
            if self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return None
        keys = [key for key, _ in self.variants]
        if value.get("mode") == "split":
            order = [key for key in value.get("order") or [] if key in keys]
            order += [key for key in keys if key not in order]
            split: list[dict[str, Any]] = []
            errors = []
            for key in order:
                text = (value["weights"].get(key) or "").strip()
                if not text:
                    continue
                try:
                    split.append({"variant": key, "weight": parse_percentage(text)})
                except ValidationError as error:
                    errors.append(f"{key}: {error.messages[0]}")
            if errors:
                raise ValidationError(errors, code="invalid")
            if not split:
                raise ValidationError("Give at least one variant a percentage.", code="required")
            return {"split": split, **_split_extras(value.get("extra") or "")}
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

    def has_changed(self, initial: Any, data: Any) -> bool:
        """Compare thousandths, not the stored number with the text shown for it."""
        try:
            return bool(self.clean(data) != initial)
        except ValidationError:
            return True
