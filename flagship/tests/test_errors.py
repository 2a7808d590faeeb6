"""Problem details (RFC 9457) for every error status under /api/.

The views below exist only for these tests: this module is the URLconf (``pytest.mark.urls``).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path
from rest_framework import serializers
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services as account_services
from accounts.models import User
from flags.errors import InUseError, PermissionDeniedError, StaleVersionError
from flagship.errors import (
    PROBLEM_CONTENT_TYPE,
    flatten_drf_errors,
    problem_for_exception,
)

pytestmark = pytest.mark.urls("flagship.tests.test_errors")


class _Condition(serializers.Serializer[Any]):
    values = serializers.ListField(child=serializers.IntegerField())


class _Rule(serializers.Serializer[Any]):
    conditions = _Condition(many=True)


class _Input(serializers.Serializer[Any]):
    key = serializers.CharField(max_length=5)
    rules = _Rule(many=True)


class Raising(APIView):
    """Raise the exception the URL names; POST validates ``_Input``."""

    permission_classes = [AllowAny]
    raises: dict[str, Exception] = {
        "django-validation": DjangoValidationError(
            {
                "rules[0].conditions[1].values": [
                    DjangoValidationError("Not a number.", code="invalid_value")
                ],
                "__all__": [DjangoValidationError("Broken.", code="broken")],
            }
        ),
        "django-validation-plain": DjangoValidationError("Plainly wrong.", code="plain"),
        "permission": PermissionDeniedError("Protected environment."),
        "in-use": InUseError("Flag 'b' depends on it."),
        "stale": StaleVersionError("Changed since you read it."),
        "throttled": Throttled(wait=2.3),
        "crash": RuntimeError("SELECT password FROM secrets -- s3cr3t"),
        "database": OperationalError("could not connect to server: host=db password=s3cr3t"),
        "interface": InterfaceError("connection already closed"),
    }

    def get(self, request: Request, version: str, name: str) -> Response:
        raise self.raises[name]

    def post(self, request: Request, version: str, name: str) -> Response:
        _Input(data=request.data).is_valid(raise_exception=True)
        return Response({})


class Protected(APIView):
    """Needs authentication (the default permission)."""

    def get(self, request: Request, version: str) -> Response:
        return Response({})


def plain_crash(request: HttpRequest, version: str) -> HttpResponse:
    raise RuntimeError("s3cr3t in a plain view")


def plain_database(request: HttpRequest, version: str) -> HttpResponse:
    raise OperationalError("s3cr3t")


def plain_not_allowed(request: HttpRequest, version: str) -> HttpResponse:
    return HttpResponse("nope", status=405, headers={"Allow": "GET"})


urlpatterns: list[URLPattern | URLResolver] = [
    path("api/<version>/test/raise/<str:name>/", Raising.as_view()),
    path("api/<version>/test/protected/", Protected.as_view()),
    path("api/<version>/test/plain-crash/", plain_crash),
    path("api/<version>/test/plain-database/", plain_database),
    path("api/<version>/test/plain-not-allowed/", plain_not_allowed),
    path("", include("flagship.urls")),
]


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://flagship.dev/problems/{code}"
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["instance"] == response.wsgi_request.path
    assert body["request_id"] == response["X-Request-ID"]
    return body


@pytest.fixture
def client() -> Client:
    # Django's test client re-raises view exceptions; the point here is the answer a client sees.
    return Client(raise_request_exception=False)


def test_service_validation_error__400__field_errors(client: Client) -> None:
    # Given a view whose service raises Django's ValidationError with a message_dict
    # When it is called
    response = client.get("/api/v1/test/raise/django-validation/")
    # Then the field errors are listed with their codes
    body = assert_problem(response, 400, "invalid")
    assert body["errors"] == [
        {
            "field": "rules[0].conditions[1].values",
            "code": "invalid_value",
            "message": "Not a number.",
        },
        {"field": None, "code": "broken", "message": "Broken."},
    ]


def test_plain_django_validation_error__400__non_field_error(client: Client) -> None:
    body = assert_problem(client.get("/api/v1/test/raise/django-validation-plain/"), 400, "invalid")
    assert body["errors"] == [{"field": None, "code": "plain", "message": "Plainly wrong."}]


def test_nested_serializer_errors__400__flattened_paths(client: Client) -> None:
    response = client.post(
        "/api/v1/test/raise/x/",
        {"key": "too-long", "rules": [{"conditions": [{"values": [1]}, {"values": [1, "x"]}]}]},
        content_type="application/json",
    )
    body = assert_problem(response, 400, "invalid")
    assert body["errors"] == [
        {
            "field": "key",
            "code": "max_length",
            "message": "Ensure this field has no more than 5 characters.",
        },
        {
            "field": "rules[0].conditions[1].values[1]",
            "code": "invalid",
            "message": "A valid integer is required.",
        },
    ]


def test_flatten_drf_errors__non_field_errors__field_is_none() -> None:
    errors = flatten_drf_errors({"non_field_errors": ["Bad."], "a": {"b": ["Worse."]}})
    assert errors == [
        {"field": None, "code": "invalid", "message": "Bad."},
        {"field": "a.b", "code": "invalid", "message": "Worse."},
    ]


def test_malformed_json__400_malformed_json(client: Client) -> None:
    response = client.post("/api/v1/test/raise/x/", "{not json", content_type="application/json")
    assert_problem(response, 400, "malformed_json")


def test_wrong_content_type__415(client: Client) -> None:
    response = client.post("/api/v1/test/raise/x/", "a=b", content_type="text/plain")
    assert_problem(response, 415, "unsupported_media_type")


def test_no_credentials__401_not_authenticated_with_www_authenticate(client: Client) -> None:
    response = client.get("/api/v1/test/protected/")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="flagship"'


def test_unknown_api_key__401_invalid_api_key(client: Client, db: None) -> None:
    response = client.get("/api/v1/test/protected/", headers={"X-API-Key": "fsa_" + "a" * 44})
    assert_problem(response, 401, "invalid_api_key")


def test_revoked_api_key__401_revoked_api_key(client: Client, administrator: User) -> None:
    key, secret = account_services.api_key_issue(kind="admin", name="ci", user=administrator)
    account_services.api_key_revoke(key=key)
    response = client.get("/api/v1/test/protected/", headers={"X-API-Key": secret})
    assert_problem(response, 401, "revoked_api_key")


def test_bad_jwt__401_token_not_valid(client: Client) -> None:
    response = client.get("/api/v1/test/protected/", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(response, 401, "token_not_valid")


def test_domain_permission_error__403(client: Client) -> None:
    body = assert_problem(client.get("/api/v1/test/raise/permission/"), 403, "permission_denied")
    assert body["detail"] == "Protected environment."


def test_unknown_api_route__404_problem(client: Client) -> None:
    assert_problem(client.get("/api/v1/no-such-thing/"), 404, "not_found")


def test_unknown_route_outside_api__not_a_problem(client: Client) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"] != PROBLEM_CONTENT_TYPE


def test_wrong_method__405_with_allow(client: Client) -> None:
    response = client.delete("/api/v1/test/raise/x/")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_plain_view_405__problem_keeps_allow(client: Client) -> None:
    response = client.get("/api/v1/test/plain-not-allowed/")
    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"


def test_in_use__409(client: Client) -> None:
    assert_problem(client.get("/api/v1/test/raise/in-use/"), 409, "in_use")


def test_stale_version__412(client: Client) -> None:
    assert_problem(client.get("/api/v1/test/raise/stale/"), 412, "stale_version")


def test_oversized_body__413_before_the_view(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post(
        "/api/v1/test/raise/x/", "[" + "1," * 100 + "1]", content_type="application/json"
    )
    assert_problem(response, 413, "payload_too_large")


def test_oversized_body_on_ofrep__413_in_ofrep_shape(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post("/ofrep/v1/evaluate/flags", "x" * 200, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"errorCode", "errorDetails"}


def test_throttled__429_with_integer_retry_after(client: Client) -> None:
    response = client.get("/api/v1/test/raise/throttled/")
    assert_problem(response, 429, "rate_limited")
    assert response["Retry-After"] == "3"


def test_unexpected_error__500_without_internals(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get("/api/v1/test/raise/crash/", headers={"X-Request-ID": "req-500"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "req-500"
    text = response.content.decode()
    for leak in ("s3cr3t", "SELECT", "Traceback", "RuntimeError"):
        assert leak not in text
    logged = [record for record in caplog.records if record.getMessage() == "request.failed"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def test_unexpected_error_in_plain_view__500_problem(client: Client) -> None:
    response = client.get("/api/v1/test/plain-crash/")
    assert_problem(response, 500, "internal_error")
    assert "s3cr3t" not in response.content.decode()


@pytest.mark.parametrize("name", ["database", "interface"])
def test_database_down__503_with_retry_after(client: Client, name: str) -> None:
    response = client.get(f"/api/v1/test/raise/{name}/")
    assert_problem(response, 503, "database_unavailable")
    assert int(response["Retry-After"]) >= 1
    assert "s3cr3t" not in response.content.decode()


def test_database_down_in_plain_view__503(client: Client) -> None:
    response = client.get("/api/v1/test/plain-database/")
    assert_problem(response, 503, "database_unavailable")


def test_problem_for_exception__unknown__none() -> None:
    assert problem_for_exception(ValueError("x"), HttpRequest()) is None


def test_request_data_too_big__413_payload_too_large() -> None:
    request = HttpRequest()
    request.path = "/api/v1/projects/"
    found = problem_for_exception(RequestDataTooBig("too big"), request)
    assert found is not None
    body, status, _ = found
    assert (status, body["code"]) == (413, "payload_too_large")


def test_outside_api__drf_default_handler(client: Client) -> None:
    # Given a DRF view outside /api/ (OFREP formats its own errors): DRF's own body, not a problem
    response = client.get("/ofrep/v1/evaluate/flags")
    assert response["Content-Type"] != PROBLEM_CONTENT_TYPE
