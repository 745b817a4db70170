from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from urllib.parse import parse_qs

import pytest

from integrations.base import ConnectorAuthError, ConnectorConfigError, ConnectorError
from integrations.http import HttpClient, json_body, retry_after_seconds
from integrations.zocdoc.emulator import serve_app


def echo_app(environ, start_response):
    """Answers with the status, Retry-After, body and delay given in the query string."""
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    time.sleep(float(query.get("sleep", 0)))
    status = int(query.get("status", 200))
    headers = [("Content-Type", "application/json")]
    if "retry_after" in query:
        headers.append(("Retry-After", query["retry_after"]))
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [query.get("body", '{"ok": true}').encode()]


@pytest.fixture(scope="module")
def url():
    server, base_url = serve_app(echo_app)
    yield base_url
    server.shutdown()
    server.server_close()


def call(url, client=None, expected=(), **query):
    return (client or HttpClient(platform="test")).request("GET", url, params=query, expected=expected)


def test_a_success_returns_the_response(url):
    assert call(url).json() == {"ok": True}


def test_429_is_retryable_and_carries_retry_after_in_seconds(url):
    with pytest.raises(ConnectorError) as info:
        call(url, status=429, retry_after="7")
    assert not info.value.permanent and info.value.retry_after == 7


def test_503_reads_retry_after_given_as_an_http_date(url):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with pytest.raises(ConnectorError) as info:
        call(url, status=503, retry_after=when)
    assert not info.value.permanent and 100 < info.value.retry_after <= 120


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_are_retryable_without_retry_after(url, status):
    with pytest.raises(ConnectorError) as info:
        call(url, status=status)
    assert not info.value.permanent and info.value.retry_after is None


def test_401_is_an_auth_error(url):
    with pytest.raises(ConnectorAuthError):
        call(url, status=401)


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_client_errors_are_permanent_and_quote_the_platforms_message(url, status):
    body = json.dumps(
        {"request_id": "r", "error_type": "invalid_request", "errors": [{"field": "page", "message": "bad"}]}
    )
    with pytest.raises(ConnectorError) as info:
        call(url, status=status, body=body)
    assert info.value.permanent and "page: bad" in info.value.message


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ('{"error": {"code": 404, "message": "Not Found"}}', "Not Found"),
        ('{"error": "access_denied", "error_description": "Unauthorized"}', "Unauthorized"),
        ("<html>gateway</html>", "HTTP 400 Bad Request"),
    ],
)
def test_error_messages_are_extracted_from_common_shapes(url, body, text):
    with pytest.raises(ConnectorError, match=text):
        call(url, status=400, body=body)


def test_an_expected_status_is_returned_instead_of_raising(url):
    assert call(url, expected=(404,), status=404).status_code == 404


def test_classify_is_overridable_per_platform(url):
    class Lenient(HttpClient):
        def classify(self, response):
            return ConnectorError("busy") if response.status_code == 409 else super().classify(response)

    with pytest.raises(ConnectorError) as info:
        call(url, Lenient(), status=409)
    assert not info.value.permanent


def test_a_timeout_is_retryable(url):
    with pytest.raises(ConnectorError, match="timed out") as info:
        call(url, HttpClient(platform="test", timeout=(1, 0.2)), sleep="1")
    assert not info.value.permanent


def test_a_refused_connection_is_retryable():
    server, base_url = serve_app(echo_app)
    server.shutdown()
    server.server_close()
    with pytest.raises(ConnectorError) as info:
        call(base_url)
    assert not info.value.permanent


def test_an_invalid_url_is_a_configuration_error():
    with pytest.raises(ConnectorConfigError):
        call("not a url")


def test_an_unparsable_json_body_is_a_retryable_error_not_a_crash(url):
    with pytest.raises(ConnectorError, match="invalid JSON") as info:
        json_body(call(url, body='{"data": ['), "test")
    assert not info.value.permanent


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), ("", None), ("soon", None), ("0", 0.0), ("120", 120.0)]
)
def test_retry_after_values(value, seconds):
    assert retry_after_seconds(value) == seconds


def test_retry_after_in_the_past_means_now():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
