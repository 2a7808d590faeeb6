"""Compiling conditions into predicates over a context (docs/ruleset-format.md §3).

A condition becomes one closure: its values are parsed once (sets for membership, RE2 patterns,
numbers, instants, version keys, networks), and the closure does one dictionary lookup and one
comparison in the common case. Predicates never raise on any context value.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import ge, gt, le, lt
from typing import Any, Final

from .errors import RulesetError
from .patterns import compile_pattern
from .values import canonical_string, parse_instant, parse_number, parse_version

Context = Mapping[str, Any]
Predicate = Callable[[Context], bool]
Test = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: a general predicate, plus what a rule needs to inline its fast path.

    Each of ``inlines`` is a type and a Python expression over ``v`` (the attribute's value, of
    exactly that type) and ``{k}`` (``constant``) that equals ``predicate`` for such values before
    ``flip``; rules fuse their conditions into one function with them (see fusion.py).
    """

    attribute: str
    predicate: Predicate
    flip: bool = False
    inlines: tuple[tuple[type, str], ...] = ()
    constant: Any = None


MEMBERSHIP: Final = frozenset({"in", "not_in"})
STRING: Final = frozenset({"str_contains", "str_starts_with", "str_ends_with", "regex"})
NUMERIC: Final = frozenset({"num_eq", "num_gt", "num_gte", "num_lt", "num_lte"})
DATES: Final = frozenset({"date_after", "date_before"})
VERSIONS: Final = frozenset({"semver_eq", "semver_gt", "semver_gte", "semver_lt", "semver_lte"})
PRESENCE: Final = frozenset({"exists", "not_exists"})
OPERATORS: Final = MEMBERSHIP | STRING | NUMERIC | DATES | VERSIONS | PRESENCE | {"in_cidr"}
CASE_INSENSITIVE_OPERATORS: Final = MEMBERSHIP | STRING

CURRENT_TIME: Final = "currentTime"


def compile_condition(
    *,
    attribute: str,
    operator: str,
    values: Sequence[Any],
    negate: bool,
    case_insensitive: bool,
    path: str,
) -> Condition:
    """Compile one validated-shape condition; raise ``RulesetError`` for unusable values."""
    if operator not in OPERATORS:
        known = ", ".join(sorted(OPERATORS))
        raise RulesetError(
            "unknown_operator",
            f"{path}.operator",
            f"unknown operator {operator!r}; use one of {known}",
        )
    if case_insensitive and operator not in CASE_INSENSITIVE_OPERATORS:
        raise RulesetError(
            "invalid_value",
            f"{path}.case_insensitive",
            f"case_insensitive applies to string operators only, not to {operator!r}",
        )
    if operator in PRESENCE:
        if values:
            raise RulesetError("invalid_value", f"{path}.values", f"{operator!r} takes no values")
        return Condition(
            attribute, _presence(attribute, wanted=operator == "exists", negate=negate)
        )
    if not values and operator not in MEMBERSHIP:
        raise RulesetError(
            "invalid_value", f"{path}.values", f"{operator!r} needs at least one value"
        )
    if operator in MEMBERSHIP:
        test, text_test = _membership(values, case_insensitive, path)
        # not_in is the exact negation of in, and true on a missing attribute.
        invert = operator == "not_in"
        predicate = _predicate(attribute, test, negate=negate, invert=invert, text_test=text_test)
        if case_insensitive:
            return Condition(attribute, predicate)
        members = frozenset(canonical_string(value) for value in values)
        inlines = ((str, "v in {k}"), (bool, "('true' if v else 'false') in {k}"))
        return Condition(attribute, predicate, invert != negate, inlines, members)
    if operator in STRING:
        text_test = _string(operator, values, case_insensitive, path)
        predicate = _predicate(
            attribute, _only_strings(text_test), negate=negate, invert=False, text_test=text_test
        )
        if case_insensitive or operator == "regex":
            return Condition(attribute, predicate)
        texts = tuple(values)
        if operator == "str_contains":
            if len(texts) == 1:
                return Condition(attribute, predicate, negate, ((str, "{k} in v"),), texts[0])
            return Condition(attribute, predicate)
        method = "startswith" if operator == "str_starts_with" else "endswith"
        return Condition(attribute, predicate, negate, ((str, f"v.{method}({{k}})"),), texts)
    if operator in NUMERIC:
        test, inline, constant = _numeric(operator, values, path)
        predicate = _predicate(attribute, test, negate=negate, invert=False)
        return Condition(attribute, predicate, negate, ((int, inline),), constant)
    if operator in DATES:
        test = _dates(operator, values, path)
        if attribute == CURRENT_TIME:
            return Condition(attribute, _current_time_predicate(test, negate=negate))
    elif operator in VERSIONS:
        test = _versions(operator, values, path)
    else:
        test = _networks(values, path)
    return Condition(attribute, _predicate(attribute, test, negate=negate, invert=False))


def _predicate(
    attribute: str, test: Test, *, negate: bool, invert: bool, text_test: Test | None = None
) -> Predicate:
    # The result on a missing attribute is fixed: false for every operator, true for the inverted
    # one (not_in); negate flips both paths, so both are folded into one constant each.
    flip = invert != negate
    on_missing = flip
    # Most attributes are strings: ``text_test`` takes them without a type check, and is often a
    # C method (frozenset.__contains__), so the common case runs no Python frame besides this one.
    on_text = text_test or test

    def predicate(context: Context) -> bool:
        value = context.get(attribute)
        if type(value) is str:
            return on_text(value) != flip
        if value is None:
            return on_missing
        if type(value) is list:
            return any(test(item) for item in value) != flip
        return test(value) != flip

    return predicate


def _current_time_predicate(test: Test, *, negate: bool) -> Predicate:
    def predicate(context: Context) -> bool:
        value = context.get(CURRENT_TIME)
        if value is None:
            return test(time.time()) != negate
        if type(value) is list:
            return any(test(item) for item in value) != negate
        return test(value) != negate

    return predicate


def _presence(attribute: str, *, wanted: bool, negate: bool) -> Predicate:
    expected = wanted != negate

    def predicate(context: Context) -> bool:
        return (context.get(attribute) is not None) == expected

    return predicate


def _value_error(path: str, index: int, message: str) -> RulesetError:
    return RulesetError("invalid_value", f"{path}.values[{index}]", message)


def _membership(
    values: Sequence[Any], case_insensitive: bool, path: str
) -> tuple[Test, Test | None]:
    members: set[str] = set()
    for index, value in enumerate(values):
        text = canonical_string(value)
        if text is None:
            raise _value_error(path, index, "list values must be strings, numbers or booleans")
        members.add(text.lower() if case_insensitive else text)
    frozen = frozenset(members)

    if case_insensitive:

        def test_folded(value: Any) -> bool:
            text = value if type(value) is str else canonical_string(value)
            return text is not None and text.lower() in frozen

        return test_folded, None

    def test(value: Any) -> bool:
        if type(value) is str:
            return value in frozen
        text = canonical_string(value)
        return text is not None and text in frozen

    return test, frozen.__contains__


def _strings(values: Sequence[Any], path: str, case_insensitive: bool) -> tuple[str, ...]:
    texts = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise _value_error(path, index, "values must be strings")
        texts.append(value.lower() if case_insensitive else value)
    return tuple(texts)


def _string(operator: str, values: Sequence[Any], case_insensitive: bool, path: str) -> Test:
    """Return a test on strings only; the caller checks the type."""
    if operator == "regex":
        searches = []
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise _value_error(path, index, "a pattern must be a string")
            try:
                searches.append(compile_pattern(value, case_insensitive=case_insensitive))
            except ValueError as error:
                raise _value_error(
                    path, index, f"RE2 cannot compile the pattern {value!r}: {error}"
                ) from None
        if len(searches) == 1:
            return searches[0]
        patterns = tuple(searches)
        return lambda text: any(search(text) for search in patterns)

    texts = _strings(values, path, case_insensitive)
    if operator == "str_starts_with":
        if case_insensitive:
            return lambda text: text.lower().startswith(texts)
        return lambda text: text.startswith(texts)
    if operator == "str_ends_with":
        if case_insensitive:
            return lambda text: text.lower().endswith(texts)
        return lambda text: text.endswith(texts)
    if len(texts) == 1:
        needle = texts[0]
        if case_insensitive:
            return lambda text: needle in text.lower()
        return lambda text: needle in text
    if case_insensitive:
        return lambda text: any(needle in text.lower() for needle in texts)
    return lambda text: any(needle in text for needle in texts)


def _only_strings(text_test: Test) -> Test:
    def test(value: Any) -> bool:
        return type(value) is str and bool(text_test(value))

    return test


def _numeric(operator: str, values: Sequence[Any], path: str) -> tuple[Test, str, Any]:
    """Return the numeric test, and the expression and constant that inline it for integers."""
    numbers: list[int | float] = []
    for index, value in enumerate(values):
        number = parse_number(value)
        if number is None or isinstance(value, bool):
            raise _value_error(path, index, f"{value!r} is not a finite number")
        numbers.append(number)
    # "holds for any value" reduces to one comparison with the loosest bound.
    if operator == "num_eq":
        members = frozenset(numbers)

        def test_eq(value: Any) -> bool:
            number = parse_number(value)
            return number is not None and number in members

        return test_eq, "v in {k}", members
    bound = min(numbers) if operator in ("num_gt", "num_gte") else max(numbers)
    compare = _COMPARE[operator]

    def test_compare(value: Any) -> bool:
        number = value if type(value) is int else parse_number(value)
        return number is not None and bool(compare(number, bound))

    return test_compare, f"v {_SYMBOL[operator]} {{k}}", bound


def _dates(operator: str, values: Sequence[Any], path: str) -> Test:
    instants: list[float] = []
    for index, value in enumerate(values):
        instant = parse_instant(value)
        if instant is None:
            raise _value_error(
                path,
                index,
                f"{value!r} is not a date-time with an offset, such as 2026-01-31T09:00:00+01:00",
            )
        instants.append(instant)
    after = operator == "date_after"
    bound = min(instants) if after else max(instants)

    def test(value: Any) -> bool:
        instant = parse_instant(value)
        if instant is None:
            return False
        return instant > bound if after else instant < bound

    return test


def _versions(operator: str, values: Sequence[Any], path: str) -> Test:
    keys = []
    for index, value in enumerate(values):
        key = parse_version(value)
        if key is None:
            raise _value_error(
                path, index, f"{value!r} is not a semantic version such as 1.4.0 or 2.0.0-beta.1"
            )
        keys.append(key)
    if operator == "semver_eq":
        members = frozenset(keys)

        def test_eq(value: Any) -> bool:
            key = parse_version(value)
            return key is not None and key in members

        return test_eq
    bound = min(keys) if operator in ("semver_gt", "semver_gte") else max(keys)
    compare = _COMPARE[operator]

    def test_compare(value: Any) -> bool:
        key = parse_version(value)
        return key is not None and bool(compare(key, bound))

    return test_compare


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(values: Sequence[Any], path: str) -> Test:
    networks: list[Network] = []
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise _value_error(path, index, "a network must be a string such as 10.0.0.0/8")
        try:
            networks.append(ipaddress.ip_network(value, strict=True))
        except ValueError as error:
            raise _value_error(path, index, f"{value!r} is not a network: {error}") from None
    v4 = tuple(net for net in networks if net.version == 4)
    v6 = tuple(net for net in networks if net.version == 6)

    def test(value: Any) -> bool:
        if type(value) is not str:
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        candidates: tuple[Network, ...] = v4 if address.version == 4 else v6
        return any(address in net for net in candidates)

    return test


_SYMBOL: Final = {"num_gt": ">", "num_gte": ">=", "num_lt": "<", "num_lte": "<="}

_COMPARE: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "num_gt": gt,
    "num_gte": ge,
    "num_lt": lt,
    "num_lte": le,
    "semver_gt": gt,
    "semver_gte": ge,
    "semver_lt": lt,
    "semver_lte": le,
}
