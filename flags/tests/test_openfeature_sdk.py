"""The real OpenFeature Python SDK with the OFREP provider (both unmodified) against a live server.

This is the conformance check that matters: whatever the OpenAPI says, the provider SDKs ship with
is what must work, types, reasons, variants and error codes included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from accounts.models import ApiKey
from flags.delivery import compiled, versions
from flags.models import Environment, Flag, Project

from .evaluation_data import build_flags, issue, state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def flags(project: Project, staging: Environment) -> dict[str, Flag]:
    compiled.clear()
    versions.clear()
    return build_flags(project, staging)


def provider_client(base_url: str, headers: dict[str, str], domain: str) -> OpenFeatureClient:
    provider = OFREPProvider(base_url, headers_factory=lambda: headers, timeout=10.0)
    api.set_provider(provider, domain)
    return api.get_client(domain)


@pytest.fixture
def of_client(live_server: Any, staging: Environment) -> Iterator[OpenFeatureClient]:
    secret = issue(staging, ApiKey.Kind.SERVER)
    yield provider_client(live_server.url, {"X-API-Key": secret}, "flagship-server")
    api.clear_providers()


def test_boolean_with_targeting(
    of_client: OpenFeatureClient, flags: dict[str, Flag], staging: Environment
) -> None:
    context = EvaluationContext(targeting_key="user-1", attributes={"country": "DE"})
    details = of_client.get_boolean_details("new-checkout", False, context)
    assert details.value is True
    assert details.reason == Reason.TARGETING_MATCH
    assert details.variant == "on"
    assert details.error_code is None
    assert details.flag_metadata == {
        "rule": str(state(flags["new-checkout"], staging).rules.get().pk)
    }
    other = of_client.get_boolean_details("new-checkout", True, EvaluationContext("user-2"))
    assert (other.value, other.reason, other.variant) == (False, Reason.DEFAULT, "off")


def test_string(of_client: OpenFeatureClient, flags: dict[str, Flag]) -> None:
    details = of_client.get_string_details("banner-text", "fallback")
    assert (details.value, details.reason, details.variant) == (
        "Winter sale!",
        Reason.STATIC,
        "sale",
    )


def test_integer_and_float(of_client: OpenFeatureClient, flags: dict[str, Flag]) -> None:
    integer = of_client.get_integer_details("max-items", 0)
    assert integer.value == 10
    assert type(integer.value) is int
    assert (integer.reason, integer.variant, integer.error_code) == (Reason.STATIC, "ten", None)
    number = of_client.get_float_details("discount", 0.0)
    assert number.value == 0.5
    assert (number.reason, number.variant, number.error_code) == (Reason.STATIC, "half", None)


def test_object(of_client: OpenFeatureClient, flags: dict[str, Flag]) -> None:
    details = of_client.get_object_details("theme", {})
    assert details.value == {"bg": "#000", "contrast": 1.5}
    assert (details.reason, details.variant) == (Reason.STATIC, "dark")


def test_disabled_and_prerequisite(of_client: OpenFeatureClient, flags: dict[str, Flag]) -> None:
    disabled = of_client.get_boolean_details("legacy", True)
    assert (disabled.value, disabled.reason, disabled.variant) == (False, Reason.DISABLED, "off")
    child = of_client.get_boolean_details("child", True)
    assert (child.value, child.reason, child.variant) == (False, Reason.DEFAULT, "off")
    assert child.flag_metadata == {"prerequisite": "legacy"}


def test_flag_not_found(of_client: OpenFeatureClient, flags: dict[str, Flag]) -> None:
    details = of_client.get_boolean_details("no-such-flag", True)
    assert details.value is True
    assert details.reason == Reason.ERROR
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND


def test_type_mismatch(of_client: OpenFeatureClient, flags: dict[str, Flag]) -> None:
    details = of_client.get_string_details("new-checkout", "fallback")
    assert details.value == "fallback"
    assert details.reason == Reason.ERROR
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_bearer_and_client_keys(
    live_server: Any, flags: dict[str, Flag], staging: Environment
) -> None:
    secret = issue(staging, ApiKey.Kind.CLIENT)
    client = provider_client(live_server.url, {"Authorization": f"Bearer {secret}"}, "browser")
    try:
        assert client.get_float_details("discount", 0.0).value == 0.5
        hidden = client.get_string_details("banner-text", "fallback")
        assert (hidden.value, hidden.error_code) == ("fallback", ErrorCode.FLAG_NOT_FOUND)
    finally:
        api.clear_providers()


def test_a_bad_key_gives_the_default(live_server: Any, flags: dict[str, Flag]) -> None:
    client = provider_client(live_server.url, {"X-API-Key": "fss_nope"}, "bad")
    try:
        details = client.get_boolean_details("new-checkout", True)
        assert (details.value, details.reason) == (True, Reason.ERROR)
        assert details.error_code == ErrorCode.GENERAL
    finally:
        api.clear_providers()
