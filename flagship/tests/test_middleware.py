"""Request ids (headers and log lines) and the API-Version header."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path

from flagship.logs import RequestIdFilter, current_request_id

pytestmark = pytest.mark.urls("flagship.tests.test_middleware")
logger = logging.getLogger("flagship.tests.middleware")


def logging_view(request: HttpRequest, version: str) -> HttpResponse:
    logger.info("test.logged")
    return HttpResponse(current_request_id())


def versioned_view(request: HttpRequest, version: str) -> HttpResponse:
    return HttpResponse("ok", headers={"API-Version": "v1-beta"})


urlpatterns: list[URLPattern | URLResolver] = [
    path("api/<version>/test/log/", logging_view),
    path("api/<version>/test/versioned/", versioned_view),
    path("", include("flagship.urls")),
]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Any:
    handler = _Collect()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_inbound_request_id__kept_on_response_request_and_log(
    client: Client, collected: _Collect
) -> None:
    # Given a caller that sends its own request id
    response = client.get("/api/v1/test/log/", headers={"X-Request-ID": "abc-123.x:y"})
    # Then the response, the view and the log line carry it
    assert response["X-Request-ID"] == "abc-123.x:y"
    assert response.content == b"abc-123.x:y"
    assert [record.request_id for record in collected.records] == ["abc-123.x:y"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("inbound", ["", "has space", "x" * 200, "<script>", "-leading"])
def test_insane_request_id__replaced_by_uuid_hex(client: Client, inbound: str) -> None:
    response = client.get("/api/v1/test/log/", headers={"X-Request-ID": inbound})
    generated = response["X-Request-ID"]
    assert generated != inbound
    assert len(generated) == 32
    int(generated, 16)


def test_request_id__on_non_api_responses_too(client: Client) -> None:
    assert len(client.get("/no-such-page/")["X-Request-ID"]) == 32


def test_logging__console_handler_has_request_id_filter_and_structured_formatter() -> None:
    logging_settings: dict[str, Any] = settings.LOGGING
    handler = logging_settings["handlers"]["console"]
    assert "request_id" in handler["filters"]
    formatter = logging_settings["formatters"][handler["formatter"]]
    assert formatter["()"] == "flagship.logs.formatter"


def test_request_id_filter__outside_a_request__keeps_existing_value() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.request_id = "given"
    assert RequestIdFilter().filter(record)
    assert getattr(record, "request_id", None) == "given"


def test_api_v1_response__api_version_header(client: Client) -> None:
    assert client.get("/api/v1/test/log/")["API-Version"] == "v1"


def test_api_v1_error__api_version_header(client: Client) -> None:
    assert client.get("/api/v1/no-such-thing/")["API-Version"] == "v1"


def test_view_set_api_version__kept(client: Client) -> None:
    assert client.get("/api/v1/test/versioned/")["API-Version"] == "v1-beta"


def test_non_api_response__no_api_version(client: Client) -> None:
    assert "API-Version" not in client.get("/no-such-page/")


def test_body_size__under_limit_passes(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post("/api/v1/test/log/", "x" * 100, content_type="text/plain")
    assert response.status_code == 200


def test_body_size__bad_content_length_ignored(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.get("/api/v1/test/log/", CONTENT_LENGTH="nope")
    assert response.status_code == 200
