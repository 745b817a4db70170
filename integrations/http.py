"""The one place connectors do HTTP: default timeouts, Retry-After, status codes mapped to ConnectorError."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from lib.jsonutil import loads_bounded

from .base import ConnectorAuthError, ConnectorConfigError, ConnectorError

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds


MAX_RETRY_AFTER = 7 * 24 * 3600.0  # a longer (or absurd) Retry-After is read as a week, never as infinity


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date, RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 850/asctime forms carry no zone; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), MAX_RETRY_AFTER)


def error_message(response: requests.Response) -> str:
    """The platform's own error text when the body is JSON, else the status line."""
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    try:
        body = loads_bounded(response.content)
    except ValueError:
        return status
    if not isinstance(body, dict):
        return status
    # Zocdoc/Mindbody ErrorResult, Google/Graph {"error": {"message"}}, OAuth {"error", "error_description"}.
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        parts = [
            f"{e['field']}: {e.get('message', '')}" if e.get("field") else str(e.get("message", e))
            for e in errors
            if isinstance(e, dict)
        ]
        return f"{status}: {'; '.join(parts)}"
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        return f"{status}: {error['message']}"
    detail = body.get("error_description") or body.get("message") or error
    return f"{status}: {detail}" if detail else status


class HttpClient:
    """A requests.Session with default timeouts whose failures raise the errors of integrations.base."""

    def __init__(self, *, platform: str = "", timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.platform = platform
        self.timeout = timeout
        self.session = requests.Session()

    def request(
        self, method: str, url: str, *, expected: Collection[int] = (), **kw: Any
    ) -> requests.Response:
        """Send the request; statuses in ``expected`` are returned to the caller instead of raising."""
        kw.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kw)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise ConnectorConfigError(f"{self.platform}: invalid URL {url!r}: {exc}") from exc
        except requests.Timeout as exc:
            raise ConnectorError(f"{self.platform}: {method} {url} timed out ({exc}).") from exc
        except requests.RequestException as exc:
            raise ConnectorError(f"{self.platform}: {method} {url} failed ({exc}).") from exc
        if response.status_code in expected:
            return response
        error = self.classify(response)
        if error is not None:
            raise error
        return response

    def classify(self, response: requests.Response) -> ConnectorError | None:
        """The error a response stands for, or None for success. Override for a platform's own policy."""
        status = response.status_code
        if status < 400:
            return None
        # Without the query string: it can carry patient ids, and messages are shown to staff.
        message = f"{self.platform} {response.url.split('?')[0]}: {error_message(response)}"
        if status in (429, 503):
            return ConnectorError(
                message, retry_after=retry_after_seconds(response.headers.get("Retry-After"))
            )
        if status >= 500 or status == 408:
            return ConnectorError(message)
        if status == 401:
            # The caller refreshes its token and retries once; a 401 reaching here means refreshing failed.
            return ConnectorAuthError(message)
        # 400/422: the request itself is malformed; sending it again produces the same answer.
        # 403: the credential lacks the scope or the resource is forbidden; needs a human, not a retry.
        # 404/410: the resource is gone (callers reading a single item pass expected=(404,) to see it).
        # 409: the platform refused the state change (e.g. Zocdoc cancel of a finished appointment).
        # Any other 4xx is treated the same: the platform rejected this exact request.
        return ConnectorError(message, permanent=True)


def json_body(response: requests.Response, platform: str = "") -> Any:
    """The response's JSON; an unparsable body (a proxy's HTML page, a truncated read) is retryable."""
    try:
        return loads_bounded(response.content)
    except ValueError as exc:
        raise ConnectorError(f"{platform}: {response.url} returned invalid JSON ({exc}).") from exc
