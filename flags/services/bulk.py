"""Creating many flags at once (demo data, imports): engine-validated, written in bulk with history.

``flag_create`` saves object by object (a few dozen queries per flag); this writes thousands of
flags in a handful of queries per batch. The rules are the same: every flag is compiled by the
engine in strict mode before anything is written, every row gets its history row (simple-history's
bulk helper), every environment gets a state, and each environment's ruleset version moves once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import batched
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from simple_history.utils import bulk_create_with_history

from flagship_sdk.engine import Ruleset, RulesetError

from .. import documents
from ..delivery.changes import Kind
from ..models import Environment, Flag, FlagState, Project, Variant
from .common import announce, humanize
from .flags import BOOLEAN_VARIANTS

BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """One flag to create in bulk: the same choices ``flag_create`` offers, plus its state.

    ``variants`` is required unless the flag is boolean (always ``on``/``off``). Every environment
    starts ``enabled`` or not, serving ``default_variant`` (default: the off variant) when on.
    """

    key: str
    name: str
    kind: str = Flag.Kind.BOOLEAN
    variants: Sequence[tuple[str, Any]] | None = None
    description: str = ""
    lifecycle: str = Flag.Lifecycle.RELEASE
    client_visible: bool = False
    enabled: bool = False
    default_variant: str | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A spec checked and turned into unsaved rows."""

    flag: Flag
    variants: list[Variant]
    off_variant: str
    default_variant: str
    enabled: bool


@transaction.atomic
def flags_bulk_create(
    *,
    project: Project,
    specs: Iterable[FlagSpec],
    actor: Any | None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> list[Flag]:
    """Create many flags with their variants and a state in every environment, all or nothing.

    Raises ``ValidationError`` (nothing written) if any spec is invalid or its key is taken.
    ``progress`` is called with the number of flags written after each batch.
    """
    specs = list(specs)
    _check_keys_free(project, specs)
    environments = list(project.environments.order_by("order", "key"))
    user = actor if getattr(actor, "is_authenticated", False) else None
    created: list[Flag] = []
    # One transaction: a bad spec in the last batch rolls back the batches already written.
    for batch in batched(specs, batch_size):
        prepared = [_prepare(project, spec) for spec in batch]
        created.extend(_write(prepared, environments, user, batch_size))
        if progress is not None:
            progress(len(prepared))
    if created:
        announce(
            Kind.FLAG_CREATED,
            actor=actor,
            project_id=project.pk,
            rulesets=(environment.pk for environment in environments),
            flags=[flag.key for flag in created],
            after={"flags": len(created)},
        )
    return created


def _check_keys_free(project: Project, specs: Sequence[FlagSpec]) -> None:
    # One query for the whole project: cheaper than thousands of unique checks in full_clean.
    taken = set(Flag.objects.filter(project=project).values_list("key", flat=True))
    seen: set[str] = set()
    for spec in specs:
        if spec.key in taken or spec.key in seen:
            raise ValidationError(
                {"key": f'Flag "{spec.key}" already exists in {project.key}.'}, code="unique"
            )
        seen.add(spec.key)


def _prepare(project: Project, spec: FlagSpec) -> _Prepared:
    flag = Flag(
        project=project,
        key=spec.key,
        name=spec.name,
        kind=spec.kind,
        description=spec.description,
        lifecycle=spec.lifecycle,
        client_visible=spec.client_visible,
    )
    variants = [
        Variant(flag=flag, key=variant_key, value=value, order=order)
        for order, (variant_key, value) in enumerate(_variants(spec))
    ]
    try:
        # Field checks only: keys were checked above, and the project is known to exist.
        flag.full_clean(
            exclude=["project", "owner"], validate_unique=False, validate_constraints=False
        )
        for variant in variants:
            variant.clean_fields(exclude=["flag"])
    except ValidationError as error:
        raise ValidationError(f'Flag "{spec.key}": {_first_message(error)}') from None
    keys = [variant.key for variant in variants]
    off_variant = "off" if "off" in keys else keys[0]
    default_variant = spec.default_variant or off_variant
    _compile(
        spec.key,
        documents.flag_values_document(
            kind=spec.kind,
            key=spec.key,
            salt="",
            client_visible=spec.client_visible,
            variants={variant.key: variant.value for variant in variants},
            enabled=spec.enabled,
            off_variant_key=off_variant,
            rules=[],
            default_serve=documents.variant_serve(default_variant),
            prerequisites=[],
        ),
    )
    return _Prepared(
        flag=flag,
        variants=variants,
        off_variant=off_variant,
        default_variant=default_variant,
        enabled=spec.enabled,
    )


def _variants(spec: FlagSpec) -> list[tuple[str, Any]]:
    if spec.kind == Flag.Kind.BOOLEAN:
        if spec.variants is not None and tuple(spec.variants) != BOOLEAN_VARIANTS:
            raise ValidationError(
                f'Flag "{spec.key}": a boolean flag has exactly the variants on (true) and off '
                "(false).",
                code="invalid_variant",
            )
        return list(BOOLEAN_VARIANTS)
    if not spec.variants:
        raise ValidationError(
            f'Flag "{spec.key}": give the flag at least one variant.', code="invalid_variant"
        )
    keys = [variant_key for variant_key, _ in spec.variants]
    if len(set(keys)) != len(keys):
        raise ValidationError(
            f'Flag "{spec.key}": variant keys must be distinct.', code="invalid_variant"
        )
    return list(spec.variants)


def _compile(key: str, flag_document: dict[str, Any]) -> None:
    """Compile a one-flag ruleset strictly: exactly the check SDKs' documents get."""
    try:
        Ruleset.from_dict(
            documents.ruleset_document(version=0, flags={key: flag_document}), strict=True
        )
    except RulesetError as error:
        raise ValidationError(humanize(error), code=error.code) from None


def _first_message(error: ValidationError) -> str:
    # full_clean and clean_fields always report per field.
    field, errors = next(iter(error.message_dict.items()))
    return f"{field}: {errors[0]}"


def _write(
    prepared: Sequence[_Prepared], environments: Sequence[Environment], user: Any | None, size: int
) -> list[Flag]:
    flags = bulk_create_with_history(
        [item.flag for item in prepared], Flag, batch_size=size, default_user=user
    )
    variants: list[Variant] = []
    for item, flag in zip(prepared, flags, strict=True):
        for variant in item.variants:
            variant.flag = flag
            variants.append(variant)
    saved_variants = bulk_create_with_history(variants, Variant, batch_size=size, default_user=user)
    variant_ids = {(variant.flag_id, variant.key): variant.pk for variant in saved_variants}
    states = [
        FlagState(
            flag=flag,
            environment=environment,
            enabled=item.enabled,
            off_variant_id=variant_ids[flag.pk, item.off_variant],
            default_serve=documents.variant_serve(item.default_variant),
        )
        for item, flag in zip(prepared, flags, strict=True)
        for environment in environments
    ]
    bulk_create_with_history(states, FlagState, batch_size=size, default_user=user)
    return list(flags)
