"""Field-level validation of what people enter, by the engine's own compiler.

Model ``clean()`` methods call these so that a mistake is reported next to the field where it was
made ("RE2 cannot compile the pattern", "weights must add up to 100 %"), in the words the engine
uses everywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from flagship_sdk.engine import Ruleset, RulesetError, is_value_of_kind
from flagship_sdk.engine.conditions import compile_condition

if TYPE_CHECKING:
    from .models import Condition, Flag, Rule

# Last path member reported by the engine → the model field a person edits.
_CONDITION_FIELDS = {"operator": "operator", "case_insensitive": "case_insensitive"}


def validate_condition(condition: Condition) -> None:
    """Raise ``ValidationError`` on the field of a condition the engine cannot use."""
    values = condition.values
    if not isinstance(values, list):
        raise ValidationError({"values": "Enter a list of values."}, code="invalid_value")
    try:
        compile_condition(
            attribute=condition.attribute,
            operator=condition.operator,
            values=values,
            negate=condition.negate,
            case_insensitive=condition.case_insensitive,
            path="condition",
        )
    except RulesetError as error:
        member = error.path.rsplit(".", 1)[-1]
        field = _CONDITION_FIELDS.get(member, "values")
        raise ValidationError({field: error.message}, code=error.code) from None


def validate_variant_value(kind: str, value: Any) -> None:
    """Raise ``ValidationError`` when a value is not of the flag's kind."""
    if not is_value_of_kind(kind, value):
        expected = {
            "boolean": "true or false",
            "string": "a text",
            "number": "a number",
            "json": "any JSON value",
        }[kind]
        raise ValidationError(
            {"value": f"A {kind} flag's values must be {expected}."}, code="invalid_variant"
        )


def validate_serve(flag: Flag, serve: Any, *, field: str, rule: Rule | None = None) -> None:
    """Check a serve (one variant or a split) against the flag's variants, with the engine.

    The serve is the default serve of a one-flag ruleset, or ``rule``'s serve (with its rollout
    and bucket-by) there: written by ``flags.documents`` as SDKs would receive it.
    """
    # Imported here: flags.documents imports the models, whose clean() methods call this.
    from . import documents  # noqa: PLC0415

    variants = {variant.key: variant.value for variant in flag.variants.all()}
    if not variants:
        return  # the flag's variants are being created in the same form; services re-check
    off = next(iter(variants))
    rules = []
    if rule is not None:
        rules.append(
            documents.rule_values_document(
                rule.pk,
                conditions=[],
                segment_keys=[],
                rollout=rule.rollout,
                bucket_by=documents.bucket_by_document(rule.bucket_by),
                serve=serve,
            )
        )
    flag_document = documents.flag_values_document(
        kind=flag.kind,
        key="flag",
        salt="",
        client_visible=False,
        variants=variants,
        enabled=True,
        off_variant_key=off,
        rules=rules,
        default_serve=serve if rule is None else documents.variant_serve(off),
        prerequisites=[],
    )
    try:
        Ruleset.from_dict(documents.ruleset_document(version=0, flags={"flag": flag_document}))
    except RulesetError as error:
        target = field
        if error.path.endswith(".rollout"):
            target = "rollout"
        elif ".bucket_by" in error.path:
            target = "bucket_by"
        raise ValidationError({target: error.message}, code=error.code) from None
