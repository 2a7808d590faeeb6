"""CORS: browsers with client keys may call evaluation and OFREP from configured origins only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings

from flags.models import Environment, Flag
from flags.tests.api_clients import client_for

SHOP = "https://shop.example.com"


@pytest.fixture(autouse=True)
def _allowed_origin() -> Iterator[None]:
    with override_settings(CORS_ALLOWED_ORIGINS=[SHOP]):
        yield


def test_cors__preflight_to_ofrep_from_allowed_origin__allowed(staging: Environment) -> None:
    # Given a browser at the shop, when it preflights an OFREP bulk call with a client key header
    response = client_for("anonymous", staging).options(
        "/ofrep/v1/evaluate/flags",
        HTTP_ORIGIN=SHOP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, content-type, if-none-match",
    )
    # Then the origin, method and headers are allowed
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    allowed = response["Access-Control-Allow-Headers"].lower()
    assert "x-api-key" in allowed
    assert "if-none-match" in allowed


def test_cors__evaluation_from_allowed_origin__etag_exposed(
    staging: Environment, boolean_flag: Flag
) -> None:
    response = client_for("client_key", staging).post(
        "/ofrep/v1/evaluate/flags", {"context": {}}, format="json", HTTP_ORIGIN=SHOP
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    exposed = response["Access-Control-Expose-Headers"].lower()
    assert "etag" in exposed
    assert "flagship-degraded" in exposed


def test_cors__other_origin__not_allowed(staging: Environment, boolean_flag: Flag) -> None:
    response = client_for("client_key", staging).post(
        "/api/v1/evaluate", {"context": {}}, format="json", HTTP_ORIGIN="https://evil.example"
    )
    assert "Access-Control-Allow-Origin" not in response


def test_cors__management_api__never_cross_origin(
    staging: Environment, administrator: object
) -> None:
    response = client_for("administrator", staging).get("/api/v1/projects/", HTTP_ORIGIN=SHOP)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_cors__preflight_to_evaluation_counts__allowed(staging: Environment) -> None:
    # Given a browser SDK with a client key, when it preflights a report of evaluation counts
    response = client_for("anonymous", staging).options(
        "/api/v1/sdk/evaluations",
        HTTP_ORIGIN=SHOP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, content-type",
    )
    # Then it is allowed from the configured origin
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
