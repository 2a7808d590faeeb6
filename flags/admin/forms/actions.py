"""Forms of admin actions and of "Evaluate as"."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError

from flagship import jsonbody

from ...models import Environment


class EnvironmentChoiceField(forms.ModelChoiceField[Environment]):
    """Environments labelled with their project: "Demo · Production"."""

    def label_from_instance(self, obj: Environment) -> str:
        """Project and environment names."""
        return f"{obj.project.name} · {obj.name}"


class FlagActionForm(ActionForm):
    """The flag list's action bar, with the environment the on/off actions apply to."""

    environment = EnvironmentChoiceField(
        # Products' environments only: FlagShip's own flags are switched one by one.
        queryset=Environment.objects.filter(project__system=False)
        .select_related("project")
        .order_by("project__name", "order", "key"),
        required=False,
        label="In environment:",
        help_text="Used by the turn on / turn off actions.",
    )


class EvaluateForm(forms.Form):
    """Which environment to evaluate in, and the context as JSON (optional)."""

    environment = EnvironmentChoiceField(
        # Products' environments only: FlagShip's own flags are switched one by one.
        queryset=Environment.objects.filter(project__system=False)
        .select_related("project")
        .order_by("project__name", "order", "key"),
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
            context = jsonbody.loads(text)
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
