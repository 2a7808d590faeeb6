"""Each pair of formatter and parser the admin uses is exact over its whole domain: what a form
shows, sent back unchanged, reads back as exactly the stored value (type included).

The percentage pair is checked on every value it can hold (0 to 100 000 thousandths), the others
with hypothesis over their domains, and each also through the form field that uses it, with the
text a browser would send back (line breaks as CRLF).
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from flags.admin.forms import PercentField, ServeField, ServeWidget, ValuesField
from flags.formats import (
    HUNDRED_PERCENT,
    format_condition_values,
    format_percentage,
    format_variant_value,
    normalize_line_breaks,
    parse_condition_values,
    parse_percentage,
    parse_variant_value,
    same_json,
)


def _as_browser_sends(text: str) -> str:
    """A text box's value as a browser submits it: every line break as CRLF."""
    return normalize_line_breaks(text).replace("\n", "\r\n")


# --- Percentages: the whole domain ---------------------------------------------------------------


def test_percentage__every_thousandth_from_0_to_100_percent__reads_back_exactly() -> None:
    # Given every value a rollout or a weight can hold
    # When each is formatted and parsed back
    wrong = [t for t in range(HUNDRED_PERCENT + 1) if parse_percentage(format_percentage(t)) != t]
    # Then none changes
    assert wrong == []


def test_percentage__every_thousandth__through_the_form_field_unchanged() -> None:
    # Given the rule form's rollout field
    field = PercentField(required=False)
    # When every stored value is shown and cleaned again
    wrong = [t for t in range(HUNDRED_PERCENT + 1) if field.clean(field.prepare_value(t)) != t]
    unchanged = [
        t for t in range(0, HUNDRED_PERCENT + 1, 7) if field.has_changed(t, field.prepare_value(t))
    ]
    # Then none changes, and the form does not count it as changed
    assert wrong == []
    assert unchanged == []


@pytest.mark.parametrize(
    ("thousandths", "shown"),
    [
        (0, "0"),
        (1, "0.001"),
        (30000, "30"),
        (50000, "50"),
        (100000, "100"),
        (12500, "12.5"),
        (33333, "33.333"),
        (10, "0.01"),
        (99990, "99.99"),
    ],
)
def test_format_percentage__whole_and_fractional__as_people_write_them(
    thousandths: int, shown: str
) -> None:
    assert format_percentage(thousandths) == shown


@pytest.mark.parametrize("text", ["", "abc", "100.0001", "-1", "101", "1e400", "nan", "12.3456"])
def test_parse_percentage__not_a_percentage__refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_percentage(text)


# --- Splits: order, zero shares and the split's own bucket_by are kept ---------------------------

VARIANTS = [("a", "a = 1"), ("b", "b = 2"), ("c", "c = 3")]


def _posted(field: ServeField, serve: dict[str, Any]) -> dict[str, Any]:
    """What the serve widget posts back when its rendered inputs are sent unchanged."""
    widget = cast(ServeWidget, field.widget)
    context = widget.get_context("serve", serve, None)["widget"]
    data = {
        "serve_mode": context["mode"],
        "serve_variant": context["selected"],
        "serve_order": context["order"],
        "serve_extra": context["extra"],
    }
    for row in context["rows"]:
        data[f"serve_weight_{row['key']}"] = row["weight"]
    return dict(widget.value_from_datadict(data, {}, "serve") or {})


@st.composite
def splits(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.permutations(["a", "b", "c"]))
    count = draw(st.integers(min_value=1, max_value=3))
    weights = draw(st.lists(st.integers(0, HUNDRED_PERCENT), min_size=count, max_size=count))
    serve: dict[str, Any] = {
        "split": [{"variant": k, "weight": w} for k, w in zip(keys[:count], weights, strict=True)]
    }
    bucket_by = draw(st.none() | st.just("companyId") | st.just(["companyId", "targetingKey"]))
    if bucket_by is not None:
        serve["bucket_by"] = bucket_by
    return serve


@given(serve=splits() | st.sampled_from([{"variant": "a"}, {"variant": "b"}, {"variant": "c"}]))
def test_serve_field__any_serve__posted_back_unchanged_is_the_same_document(
    serve: dict[str, Any],
) -> None:
    # Given the serve field of a flag with variants a, b and c
    field = ServeField(variants=VARIANTS)
    # When a stored serve is rendered and its inputs are posted back as they are
    cleaned = field.clean(_posted(field, serve))
    # Then the document is the same, member for member and in the same order
    assert json.dumps(cleaned) == json.dumps(serve)
    assert field.has_changed(serve, _posted(field, serve)) is False


# --- Variant values ------------------------------------------------------------------------------

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_floats | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@given(value=st.integers() | finite_floats)
def test_number_value__any_integer_or_float__reads_back_with_its_type(value: float) -> None:
    # Integers stay integers and floats stay floats (2.0 is not 2 for an SDK)
    parsed = parse_variant_value("number", format_variant_value("number", value))
    assert same_json(parsed, value)


@given(value=st.text().filter(lambda text: "\r" not in text))
def test_string_value__any_text_without_cr__reads_back_as_a_browser_sends_it(value: str) -> None:
    # A text box sends line breaks as CRLF; LF is what was stored (CR alone is outside the domain)
    shown = format_variant_value("string", value)
    assert parse_variant_value("string", _as_browser_sends(shown)) == value


@given(value=json_values)
def test_json_value__any_json__reads_back_the_same(value: Any) -> None:
    shown = format_variant_value("json", value)
    assert "\n" not in shown  # one line: a text input keeps it whole
    assert same_json(parse_variant_value("json", shown), value)


@pytest.mark.parametrize("text", ["abc", "1_000", "inf", "nan", "1e400", "0x10", ""])
def test_number_value__not_a_finite_number__refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_variant_value("number", text)


@pytest.mark.parametrize(
    ("text", "value"), [("2", 2), ("2.0", 2.0), ("-0.5", -0.5), ("1e3", 1000.0), (" 7 ", 7)]
)
def test_number_value__typed__integers_and_floats_as_written(text: str, value: float) -> None:
    parsed = parse_variant_value("number", text)
    assert same_json(parsed, value)


# --- Condition values ----------------------------------------------------------------------------

condition_value = st.text() | st.integers() | finite_floats | st.booleans()


@given(values=st.lists(condition_value, max_size=8))
def test_condition_values__any_list__reads_back_with_types_and_spaces(values: list[Any]) -> None:
    # Strings keep their spaces and line breaks (quoted), numbers and booleans keep their type
    shown = format_condition_values(values)
    assert same_json(parse_condition_values(_as_browser_sends(shown)), values)


@given(values=st.lists(condition_value, max_size=8))
def test_values_field__any_list__unchanged_through_the_form_field(values: list[Any]) -> None:
    field = ValuesField(required=False)
    posted = _as_browser_sends(field.prepare_value(values))
    assert same_json(field.clean(posted), values)
    assert field.has_changed(values, posted) is False


def test_condition_values__plain_lines__are_strings_as_typed() -> None:
    # What a person types: one value per line, spaces around a line and empty lines ignored
    assert parse_condition_values(" DE \r\n\r\nAT\n1.0\n42\ntrue") == [
        "DE",
        "AT",
        "1.0",
        "42",
        "true",
    ]


def test_condition_values__typed_and_quoted_lines__read_as_written() -> None:
    assert parse_condition_values('number: 42\nboolean: true\n" padded "\n"a\\nb"') == [
        42,
        True,
        " padded ",
        "a\nb",
    ]


def test_format_condition_values__strings_that_look_typed__are_quoted() -> None:
    assert format_condition_values(["number: 1", '"x"', "", 4.5, False]) == (
        '"number: 1"\n"\\"x\\""\n""\nnumber: 4.5\nboolean: false'
    )


@pytest.mark.parametrize("text", ['"unterminated', "number: ten", "boolean: yes", '"a" b'])
def test_parse_condition_values__malformed_line__refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_condition_values(text)


def test_number_value__huge_integer__stays_exact() -> None:
    assert parse_variant_value("number", str(10**30)) == 10**30
    assert not math.isinf(parse_variant_value("number", "1.7976931348623157e308"))
