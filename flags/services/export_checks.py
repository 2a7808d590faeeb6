"""Checking a project export document before anything is written (docs/export-format.md).

``check_document`` refuses, with a ``ValidationError`` carrying a stable code, a document that is
not the format (``invalid_document``, ``unsupported_version``), names what it does not hold
(``unknown_variant``, ``unknown_segment``, ``unknown_flag``, ``unknown_environment``,
``unknown_tag``), or whose environments' rulesets the engine refuses in strict mode (the engine's
own code: ``prerequisite_cycle``, ``invalid_variant``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from flagship_sdk.engine import Ruleset, RulesetError

from .. import documents
from .common import humanize
from .exporting import FORMAT_NAME, FORMAT_VERSION

# Each member: the JSON types it may hold (``None`` allowed where listed).
PROJECT_MEMBERS: Mapping[str, tuple[type, ...]] = {
    "key": (str,),
    "name": (str,),
    "description": (str,),
    "reason_required": (bool,),
}
ENVIRONMENT_MEMBERS: Mapping[str, tuple[type, ...]] = {
    "key": (str,),
    "name": (str,),
    "color": (str,),
    "order": (int,),
    "protected": (bool,),
}
# Members an environment may leave out (exports before change requests): absent, unchanged.
ENVIRONMENT_OPTIONAL: Mapping[str, tuple[type, ...]] = {
    "required_approvals": (int,),
    "allow_self_approval": (bool,),
}
TAG_MEMBERS: Mapping[str, tuple[type, ...]] = {"name": (str,), "color": (str,)}
SEGMENT_MEMBERS: Mapping[str, tuple[type, ...]] = {
    "key": (str,),
    "name": (str,),
    "description": (str,),
    "conditions": (list,),
}
FLAG_MEMBERS: Mapping[str, tuple[type, ...]] = {
    "key": (str,),
    "name": (str,),
    "description": (str,),
    "kind": (str,),
    "lifecycle": (str,),
    "owner": (str, type(None)),
    "client_visible": (bool,),
    "salt": (str,),
    "archived": (bool,),
    "tags": (list,),
    "variants": (list,),
    "states": (dict,),
}
VARIANT_MEMBERS: Mapping[str, tuple[type, ...]] = {"key": (str,), "name": (str,)}
STATE_MEMBERS: Mapping[str, tuple[type, ...]] = {
    "enabled": (bool,),
    "off_variant": (str,),
    "default_serve": (dict,),
    "rules": (list,),
    "prerequisites": (list,),
}
RULE_MEMBERS: Mapping[str, tuple[type, ...]] = {
    "description": (str,),
    "conditions": (list,),
    "segments": (list,),
    "rollout": (int, type(None)),
    "bucket_by": (str,),
    "serve": (dict,),
}
CONDITION_MEMBERS: Mapping[str, tuple[type, ...]] = {
    "attribute": (str,),
    "operator": (str,),
    "negate": (bool,),
    "case_insensitive": (bool,),
}
PREREQUISITE_MEMBERS: Mapping[str, tuple[type, ...]] = {"flag": (str,), "variants": (list,)}


def invalid(message: str, code: str = "invalid_document") -> ValidationError:
    """The error every refusal of the document raises."""
    return ValidationError(message, code=code)


def _object(value: Any, members: Mapping[str, tuple[type, ...]], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{where} must be a JSON object.")
    for name, types in members.items():
        if name not in value:
            raise invalid(f'{where} has no "{name}".')
        item = value[name]
        # JSON true is not a number here, and a number is not a boolean.
        wrong_bool = isinstance(item, bool) and bool not in types
        if wrong_bool or not isinstance(item, types):
            raise invalid(f'{where}: "{name}" has the wrong type.')
    return value


def _list(value: Any, members: Mapping[str, tuple[type, ...]], where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid(f"{where} must be a JSON array.")
    return [_object(item, members, f"{where}[{index}]") for index, item in enumerate(value)]


def _unique(items: list[dict[str, Any]], member: str, where: str) -> set[str]:
    seen: set[str] = set()
    for item in items:
        if item[member] in seen:
            raise invalid(f'{where}: "{item[member]}" appears twice.')
        seen.add(item[member])
    return seen


def check_shape(document: Any) -> None:
    """Refuse a document that is not the format, or names what it does not hold."""
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise invalid(f'Not a FlagShip project export (format "{FORMAT_NAME}").')
    if document.get("version") != FORMAT_VERSION:
        raise invalid(
            f"Export version {document.get('version')!r}; this server reads {FORMAT_VERSION}.",
            "unsupported_version",
        )
    _object(document.get("project"), PROJECT_MEMBERS, "project")
    environment_items = _list(document.get("environments"), ENVIRONMENT_MEMBERS, "environments")
    for index, item in enumerate(environment_items):
        present = {name: types for name, types in ENVIRONMENT_OPTIONAL.items() if name in item}
        _object(item, present, f"environments[{index}]")
    environments = _unique(environment_items, "key", "environments")
    tags = {t["name"].lower() for t in _list(document.get("tags"), TAG_MEMBERS, "tags")}
    segments = _list(document.get("segments"), SEGMENT_MEMBERS, "segments")
    segment_keys = _unique(segments, "key", "segments")
    for segment in segments:
        _list(segment["conditions"], CONDITION_MEMBERS, f'segment "{segment["key"]}" conditions')
    flags = _list(document.get("flags"), FLAG_MEMBERS, "flags")
    flag_keys = _unique(flags, "key", "flags")
    for flag in flags:
        _check_flag(flag, environments, tags, segment_keys, flag_keys)


def _check_flag(
    flag: dict[str, Any],
    environments: set[str],
    tags: set[str],
    segments: set[str],
    flags: set[str],
) -> None:
    where = f'flag "{flag["key"]}"'
    for tag in flag["tags"]:
        if not isinstance(tag, str) or tag.lower() not in tags:
            raise invalid(f"{where}: tag {tag!r} is not in the tags list.", "unknown_tag")
    variants = _list(flag["variants"], VARIANT_MEMBERS, f"{where} variants")
    if any("value" not in variant for variant in variants):
        raise invalid(f'{where}: every variant needs a "value".')
    variant_keys = _unique(variants, "key", f"{where} variants")
    for environment, state in flag["states"].items():
        place = f"{where} in {environment}"
        if environment not in environments:
            raise invalid(f"{place}: no such environment.", "unknown_environment")
        _object(state, STATE_MEMBERS, place)
        if state["off_variant"] not in variant_keys:
            raise invalid(f'{place}: unknown variant "{state["off_variant"]}".', "unknown_variant")
        rules = _list(state["rules"], RULE_MEMBERS, f"{place} rules")
        _check_serve(state["default_serve"], variant_keys, f"{place} default serve")
        for index, rule in enumerate(rules):
            _check_serve(rule["serve"], variant_keys, f"{place} rule {index + 1}")
            _list(rule["conditions"], CONDITION_MEMBERS, f"{place} rule {index + 1} conditions")
            for key in rule["segments"]:
                if not isinstance(key, str):
                    raise invalid(f"{place}: segment keys are strings.")
                if key not in segments:
                    raise invalid(f"{place}: unknown segment {key!r}.", "unknown_segment")
        for prerequisite in _list(state["prerequisites"], PREREQUISITE_MEMBERS, place):
            if not all(isinstance(variant, str) for variant in prerequisite["variants"]):
                raise invalid(f"{place}: prerequisite variants are keys (strings).")
            if prerequisite["flag"] not in flags:
                raise invalid(
                    f'{place}: prerequisite "{prerequisite["flag"]}" is not in the document.',
                    "unknown_flag",
                )


def _check_serve(serve: dict[str, Any], variants: set[str], where: str) -> None:
    """A serve naming a variant the flag lacks gets its own code (the engine checks the rest)."""
    named = [serve.get("variant")]
    split = serve.get("split")
    if isinstance(split, list):
        named += [share.get("variant") for share in split if isinstance(share, dict)]
    for key in named:
        if isinstance(key, str) and key not in variants:
            raise invalid(f'{where}: unknown variant "{key}".', "unknown_variant")


def environment_rulesets(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each environment's ruleset document (format 1) as the export describes it."""
    segments = {
        segment["key"]: {"conditions": [_condition(c) for c in segment["conditions"]]}
        for segment in document["segments"]
    }
    rulesets: dict[str, dict[str, Any]] = {}
    for environment in document["environments"]:
        flags = {
            flag["key"]: _flag_document(flag, flag["states"][environment["key"]])
            for flag in document["flags"]
            if not flag["archived"] and environment["key"] in flag["states"]
        }
        rulesets[environment["key"]] = documents.ruleset_document(
            version=0, flags=flags, segments=segments
        )
    return rulesets


def _condition(spec: Mapping[str, Any]) -> dict[str, object]:
    return documents.condition_values_document(
        spec["attribute"],
        spec["operator"],
        spec.get("values", []),
        spec["negate"],
        spec["case_insensitive"],
    )


def _flag_document(flag: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    return documents.flag_values_document(
        kind=flag["kind"],
        key=flag["key"],
        salt=flag["salt"],
        client_visible=flag["client_visible"],
        variants={variant["key"]: variant["value"] for variant in flag["variants"]},
        enabled=state["enabled"],
        off_variant_key=state["off_variant"],
        rules=[
            documents.rule_values_document(
                index + 1,
                conditions=[_condition(c) for c in rule["conditions"]],
                segment_keys=sorted(rule["segments"]),
                rollout=rule["rollout"],
                bucket_by=documents.bucket_by_document(rule["bucket_by"]),
                serve=rule["serve"],
            )
            for index, rule in enumerate(state["rules"])
        ],
        default_serve=state["default_serve"],
        prerequisites=[
            documents.prerequisite_values_document(p["flag"], p["variants"])
            for p in state["prerequisites"]
        ],
    )


def check_document(document: Any) -> None:
    """The whole check: the shape, then every environment's ruleset by the engine (strict)."""
    check_shape(document)
    for environment, ruleset in environment_rulesets(document).items():
        check_ruleset(ruleset, f"Environment {environment}")


def check_ruleset(ruleset: dict[str, Any], where: str) -> None:
    """Compile one ruleset strictly; its refusal becomes a ``ValidationError`` with its code."""
    try:
        Ruleset.from_dict(ruleset, strict=True)
    except RulesetError as error:
        raise invalid(f"{where}: {humanize(error)}", error.code) from None
