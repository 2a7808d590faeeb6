"""The "Evaluate as" page: what does a user with this context get in this environment, and why.

The answer is the engine's, computed on the same ruleset document SDKs download
(``documents.environment_ruleset``), so it cannot disagree with them.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from flagship_sdk.engine import EvaluationResult, Reason, Ruleset, RulesetError

from .. import documents, selectors
from ..models import Environment, Flag
from .forms import AttributeFormSet, EvaluateForm

REASONS = {
    Reason.STATIC: "No rules: the default serve.",
    Reason.DEFAULT: "No rule matched: the default serve.",
    Reason.TARGETING_MATCH: "A rule matched.",
    Reason.SPLIT: "A percentage split chose the variant.",
    Reason.DISABLED: "Off in this environment: the off variant.",
    Reason.PREREQUISITE_FAILED: "A prerequisite does not hold: the off variant.",
    Reason.ERROR: "Evaluation failed.",
}


def evaluate_view(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """The form (GET, so a question can be bookmarked and shared) and every flag's answer."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    bound = "environment" in request.GET
    default = selectors.environment_default()
    form = EvaluateForm(
        request.GET if bound else None, initial={"environment": default.pk if default else None}
    )
    rows = AttributeFormSet(
        request.GET if bound else None, prefix="attr", initial=[{"name": "targetingKey"}]
    )
    results: list[dict[str, Any]] | None = None
    evaluated_context: dict[str, Any] = {}
    if bound and form.is_valid() and rows.is_valid():
        evaluated_context = dict(form.cleaned_data["context_json"])
        for row in rows.cleaned_data:
            if row.get("name"):
                evaluated_context[row["name"]] = row.get("value", "")
        try:
            results = evaluate_all(form.cleaned_data["environment"], evaluated_context)
        except RulesetError as error:
            form.add_error(None, f"The ruleset could not be compiled: {error.message}")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Evaluate as…",
        "form": form,
        "rows": rows,
        "results": results,
        "evaluated_context": json.dumps(evaluated_context, ensure_ascii=False, indent=1),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "flags/evaluate.html", context)


def evaluate_all(environment: Environment, context: dict[str, Any]) -> list[dict[str, Any]]:
    """Every live flag of the environment evaluated for ``context``, in key order."""
    document = documents.environment_ruleset(environment)
    ruleset = Ruleset.from_dict(document)
    rules = selectors.rule_labels(environment)
    flags = {
        flag.key: flag
        for flag in Flag.objects.filter(project_id=environment.project_id, archived=False)
    }
    answers = []
    for key in sorted(document["flags"]):
        result = ruleset.evaluate(key, context)
        positions = [rule["id"] for rule in document["flags"][key].get("rules", [])]
        answers.append(
            {
                "key": key,
                "flag": flags.get(key),
                "flag_url": reverse("admin:flags_flag_change", args=[flags[key].pk])
                if key in flags
                else "",
                "value": json.dumps(result.value, ensure_ascii=False),
                "variant": result.variant,
                "reason": result.reason,
                "why": explain(result),
                **matched_rule(result, positions, rules),
            }
        )
    return answers


def explain(result: EvaluationResult) -> str:
    """The reason in words."""
    text = REASONS.get(result.reason, result.reason)
    if result.reason == Reason.PREREQUISITE_FAILED and result.prerequisite:
        return f"Prerequisite {result.prerequisite} does not hold: the off variant."
    if result.error_code:
        return f"{text} ({result.error_code})"
    return text


def matched_rule(
    result: EvaluationResult, positions: list[str], rules: dict[str, Any]
) -> dict[str, str]:
    """The matched rule as people know it: "Rule 2 — Beta testers", with a link to it."""
    if result.rule is None:
        return {"rule": "", "rule_url": ""}
    number = positions.index(result.rule) + 1 if result.rule in positions else None
    rule = rules.get(result.rule)
    label = f"Rule {number}" if number is not None else f"Rule {result.rule}"
    if rule is not None and rule.description:
        label = f"{label} — {rule.description}"
    url = reverse("admin:flags_rule_change", args=[rule.pk]) if rule is not None else ""
    return {"rule": label, "rule_url": url}
