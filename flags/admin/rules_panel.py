"""A flag state's rules, read and edited on the state's own page (no page per rule).

The panel lists the rules in evaluation order, each in words (who, what share, what they get).
Someone who may change the environment also gets, on each rule, move up / move down / edit /
duplicate / delete, "insert a rule here" between rules, and "add a rule" at the position a new
rule belongs by default: before the first catch-all rule (one with no condition and no segment),
after which a rule would never be reached by anyone that rule takes.

Everything works without JavaScript: the buttons are submit buttons of the state's own form
(``_rule_action=up:12``), so a move also saves what was changed above it and carries its reason;
editing opens the rule's form in its place (``?rule=12`` or ``?insert=2``), whose fields are part
of the same form. ``apply`` performs the posted action through the services, in the admin's
transaction, after checking that the state has not changed since the page was loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet, inlineformset_factory
from django.http import HttpRequest, QueryDict
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from .. import documents, selectors, services, words
from ..models import Condition, FlagState, Rule, Segment
from .base import actor
from .forms import ConditionForm, RuleForm

ACTION = "_rule_action"
SAVE = "_rule_save"
EDITING = "_rule_editing"
POSITION = "_rule_position"
EDITOR_PREFIX = "rule"
CONDITIONS_PREFIX = "rule-conditions"
ACTIONS = ("up", "down", "duplicate", "delete")


class RuleEditorForm(RuleForm):
    """The rule form as the panel shows it: the rule's state is the page's."""

    class Meta(RuleForm.Meta):
        fields = ("description", "segments", "rollout", "bucket_by", "serve")


class ConditionFormSet(BaseInlineFormSet[Condition, Rule, ConditionForm]):
    """A rule's conditions, in order; rows ticked "delete" are left out."""

    def specs(self) -> list[dict[str, Any]]:
        """The kept conditions as ``rule_update``'s ``conditions`` (with the ids they change)."""
        kept = []
        for form in self.forms:
            if form.instance._state.adding and not form.has_changed():
                continue  # an empty extra row
            if form.cleaned_data.get("DELETE"):
                continue
            data = form.cleaned_data
            spec = {
                "attribute": data["attribute"],
                "operator": data["operator"],
                "values": data["values"],
                "negate": data["negate"],
                "case_insensitive": data["case_insensitive"],
            }
            if not form.instance._state.adding:
                spec["id"] = form.instance.pk
            kept.append(spec)
        return kept


ConditionFormSetClass = inlineformset_factory(
    Rule,
    Condition,
    form=ConditionForm,
    formset=ConditionFormSet,
    fk_name="rule",
    fields=("attribute", "operator", "values", "negate", "case_insensitive"),
    extra=1,
    can_delete=True,
)


@dataclass
class Editor:
    """The rule being edited (or added at ``position``), with its form and its conditions."""

    rule: Rule
    position: int | None
    form: RuleEditorForm
    conditions: ConditionFormSet

    @property
    def adding(self) -> bool:
        """Whether this is a new rule."""
        return self.rule.pk is None

    def is_valid(self) -> bool:
        """Both the rule and its conditions are valid (each shows its own errors)."""
        rule_ok = self.form.is_valid()
        conditions_ok = self.conditions.is_valid()
        return rule_ok and conditions_ok

    def has_changed(self) -> bool:
        """Whether anything in the rule's form was changed."""
        return self.form.has_changed() or self.conditions.has_changed()

    def attach(self, error: ValidationError) -> None:
        """Show a refusal of the services next to the rule's field it is about, else on top."""
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                self.form.add_error(field if field in self.form.fields else None, errors)
        else:
            self.form.add_error(None, error.error_list)


def editor_for(
    request: HttpRequest, state: FlagState, *, bound: bool, refusal: ValidationError | None = None
) -> Editor | None:
    """The editor the request asks for: ``?rule=<id>``/``?insert=<n>``, or the one posted."""
    source: QueryDict = request.POST if bound else request.GET
    key = source.get(EDITING if bound else "rule", "")
    insert = source.get(POSITION if bound else "insert", "")
    rule: Rule | None = None
    position = None
    if key.isdigit():
        rule = selectors.state_rules(state).filter(pk=int(key)).first()
        if rule is None:
            return None
    elif key == "new" or (not bound and insert != ""):
        rule = Rule(state=state, serve=documents.variant_serve(first_served_variant(state)))
        position = int(insert) if insert.isdigit() else default_position(state)
    else:
        return None
    data = request.POST if bound else None
    form_class = RuleEditorForm.for_state(state)
    form = form_class(data, instance=rule, prefix=EDITOR_PREFIX)
    conditions = ConditionFormSetClass(data, instance=rule, prefix=CONDITIONS_PREFIX)
    editor = Editor(rule=rule, position=position, form=form, conditions=conditions)  # type: ignore[arg-type]  # the for_state subclass is a RuleEditorForm
    if bound and refusal is not None:
        editor.is_valid()
        editor.attach(refusal)
    return editor


def first_served_variant(state: FlagState) -> str:
    """What a new rule serves until someone chooses: the first variant but the off variant."""
    keys = list(state.flag.variants.order_by("order", "id").values_list("key", flat=True))
    others = [key for key in keys if key != state.off_variant.key]
    return (others or keys)[0]


def default_position(state: FlagState, rules: Sequence[Rule] | None = None) -> int:
    """Where a new rule goes: before the first catch-all rule, else last."""
    ordered = list(selectors.state_rules(state)) if rules is None else rules
    outlines = [selectors.rule_outline(rule) for rule in ordered]
    return next((i for i, rule in enumerate(outlines) if words.is_catch_all(rule)), len(ordered))


@dataclass(frozen=True)
class RuleRow:
    """One rule as the panel shows it."""

    rule: Rule
    position: int  # 1-based
    sentence: str
    conditions: str
    segments: str
    rollout: str
    serve: str
    catch_all: bool


def panel(
    request: HttpRequest,
    state: FlagState,
    *,
    rules: Sequence[Rule],
    can_change: bool,
    refusal: ValidationError | None = None,
) -> SafeString:
    """The rules panel of a state's page (templates/flags/rules_panel.html).

    ``rules`` are ``selectors.state_rules(state)``, read once by the page.
    """
    names = {segment.key: segment.name for rule in rules for segment in rule.segments.all()}
    rows = []
    for index, rule in enumerate(rules):
        document = selectors.rule_outline(rule)
        rows.append(
            RuleRow(
                rule=rule,
                position=index + 1,
                sentence=words.rule_in_words(document, names),
                conditions=words.conditions_in_words(document["conditions"]),
                segments=", ".join(names.get(key, key) for key in document["segments"]) or "—",
                rollout=words.rollout_in_words(rule.rollout),
                serve=words.serve_in_words(rule.serve),
                catch_all=words.is_catch_all(document),
            )
        )
    editor = None
    if can_change:
        bound = request.method == "POST" and EDITING in request.POST
        editor = editor_for(request, state, bound=bound, refusal=refusal)
    catch_all = next((row for row in rows if row.catch_all), None)
    default = catch_all.position - 1 if catch_all is not None else len(rows)
    context = {
        "state": state,
        "rows": rows,
        "can_change": can_change,
        "editor": editor,
        "default_position": default,
        "catch_all": catch_all,
        "action_name": ACTION,
        "save_name": SAVE,
        "editing_name": EDITING,
        "position_name": POSITION,
    }
    return render_to_string("flags/rules_panel.html", context, request=request)


def pressed(request: HttpRequest) -> bool:
    """Whether one of the panel's own buttons was pressed (not the page's "Save")."""
    return request.method == "POST" and (ACTION in request.POST or SAVE in request.POST)


def posted(request: HttpRequest) -> bool:
    """Whether the request asks the panel for something (an action or a rule's form)."""
    return request.method == "POST" and (ACTION in request.POST or EDITING in request.POST)


# The rule's form a POST carries, read once per request (``changes`` asks before the state is
# saved, ``apply`` acts after).
_posted_editors: WeakKeyDictionary[HttpRequest, Editor | None] = WeakKeyDictionary()


def posted_editor(request: HttpRequest, state: FlagState) -> Editor | None:
    """The rule's form posted with the page, bound to what was sent (None: none was open)."""
    if request not in _posted_editors:
        _posted_editors[request] = editor_for(request, state, bound=True)
    return _posted_editors[request]


def changes(request: HttpRequest, state: FlagState) -> bool:
    """Whether the posted action or rule form changes anything.

    A rule's form sent back untouched does not, and then needs no reason and no version check.
    """
    if not posted(request):
        return False
    if ACTION in request.POST:
        return True
    editor = posted_editor(request, state)
    if editor is None:
        return False
    return editor.has_changed() or (editor.adding and SAVE in request.POST)


def apply(request: HttpRequest, state: FlagState) -> str:
    """Perform the posted rule action, or save the posted rule; returns what was done, in words.

    Raises ``ValidationError`` (shown on the page, nothing saved) when the rule's form is invalid
    or a service refuses.
    """
    action, _, target = request.POST.get(ACTION, "").partition(":")
    if action in ACTIONS and target.isdigit():
        return _act(request, state, action, int(target))
    editor = posted_editor(request, state)
    if editor is None:
        return ""
    # An untouched new rule is added only by its own button: the page's "Save" with an empty
    # new rule open must not add a catch-all.
    pressed = SAVE in request.POST
    if not editor.has_changed() and not (editor.adding and pressed):
        return ""
    if not editor.is_valid():
        raise ValidationError("The rule was not saved: see the errors in the rule below.")
    return _save(request, state, editor)


def _act(request: HttpRequest, state: FlagState, action: str, rule_id: int) -> str:
    rules = list(state.rules.order_by("order", "id"))
    index = next((i for i, rule in enumerate(rules) if rule.pk == rule_id), None)
    if index is None:
        raise ValidationError("That rule is gone: someone removed it meanwhile. Reload the page.")
    rule = rules[index]
    name = f"rule {index + 1}" + (f" “{rule.description}”" if rule.description else "")
    if action == "delete":
        services.rule_delete(rule=rule, actor=actor(request))
        return f"Deleted {name}."
    if action == "duplicate":
        services.rule_duplicate(rule=rule, actor=actor(request))
        return f"Duplicated {name}: the copy is rule {index + 2}."
    target = index - 1 if action == "up" else index + 1
    if not 0 <= target < len(rules):
        return ""
    rules[index], rules[target] = rules[target], rules[index]
    services.rules_reorder(state=state, rule_ids=[r.pk for r in rules], actor=actor(request))
    return f"Moved {name} to position {target + 1}."


def _save(request: HttpRequest, state: FlagState, editor: Editor) -> str:
    data = editor.form.cleaned_data
    segments: list[Segment] = list(data.get("segments") or [])
    try:
        if editor.adding:
            rule = services.rule_create(
                state=state,
                serve=data["serve"],
                conditions=[
                    {key: value for key, value in spec.items() if key != "id"}
                    for spec in editor.conditions.specs()
                ],
                segments=segments,
                rollout=data.get("rollout"),
                bucket_by=data.get("bucket_by") or "targetingKey",
                description=data.get("description", ""),
                position=editor.position,
                actor=actor(request),
            )
            position = list(state.rules.order_by("order", "id")).index(rule) + 1
            return f"Added rule {position}" + (
                f" “{rule.description}”." if rule.description else "."
            )
        services.rule_update(
            rule=editor.rule,
            actor=actor(request),
            serve=data["serve"],
            conditions=editor.conditions.specs(),
            segments=segments,
            rollout=data.get("rollout"),
            bucket_by=data.get("bucket_by") or "targetingKey",
            description=data.get("description", ""),
        )
    except ValidationError as error:
        raise ValidationError(_rule_errors(error)) from None
    return f"Saved rule “{editor.rule.description}”." if editor.rule.description else "Saved rule."


def _rule_errors(error: ValidationError) -> Any:
    """A service's refusal, kept by field so the panel can show it next to the rule's fields."""
    if hasattr(error, "error_dict"):
        return {f"{EDITOR_PREFIX}:{field}": errors for field, errors in error.error_dict.items()}
    return error.error_list


def refusal_for_editor(error: ValidationError | None) -> ValidationError | None:
    """The part of a refusal that belongs to the rule's form (see ``_rule_errors``)."""
    if error is None or not hasattr(error, "error_dict"):
        return None
    mine = {
        field.removeprefix(f"{EDITOR_PREFIX}:"): errors
        for field, errors in error.error_dict.items()
        if field.startswith(f"{EDITOR_PREFIX}:")
    }
    return ValidationError(mine) if mine else None
