"""Zocdoc: appointments booked through Zocdoc, read with its developer API (platforms.md §4)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lib.jsonutil import loads_bounded
from lib.timeutil import parse_instant, version_stamp

from ..base import (
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    CursorExpired,
    ExternalEvent,
    FetchResult,
)
from ..http import HttpClient, error_message, json_body

if TYPE_CHECKING:
    from django.http import HttpRequest

    from ..models import Connection

API_URL = "https://api-developer.zocdoc.com"
TOKEN_URL = "https://auth.zocdoc.com/oauth/token"
AUDIENCE = "https://api-developer.zocdoc.com/"
# The real header name was not captured from Zocdoc's guide (platforms.md §12, question 1): confirm it.
SIGNATURE_HEADER = "X-Zocdoc-Signature"
MAX_RESULTS = 1000  # the list endpoint never returns more, whatever the paging
PAGE_SIZE = 100
STATUSES = {
    "pending_booking": "scheduled",
    "pending_reschedule": "scheduled",
    "reschedule_failed": "scheduled",
    "confirmed": "confirmed",
    "rescheduled": "confirmed",
    "cancelled": "cancelled",
    "booking_failed": "cancelled",
    "no_show": "no_show",
}
VIDEO_VISIT_TYPES = {"zocdoc_video_service", "third_party_video_service"}


class ZocdocConnector(Connector):
    platform = "zocdoc"
    min_sync_interval = timedelta(minutes=5)
    supports_write = False

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.credentials: dict[str, Any] = connection.credentials or {}
        self.base_url = self.credentials.get("base_url", API_URL).rstrip("/")
        self.http = HttpClient(platform="zocdoc")
        self._token: str | None = None
        self._token_renew_at = 0.0

    def fetch(self, *, cursor: str | None, window: tuple[datetime, datetime]) -> FetchResult:
        """A full read of ``window`` by start time, or everything modified since ``cursor``."""
        if cursor is None:
            rows = self._read("start_time_utc", *window)
        else:
            try:
                since = parse_instant(cursor)
            except ValueError:
                raise CursorExpired(f"The stored Zocdoc cursor {cursor!r} is not an instant.") from None
            # Not limited to the window: an appointment moved out of it must reach the hub as well.
            rows = self._read("last_modified_time_utc", since, None)
        duration = self._duration()
        events, errors, unreadable = [], [], set()
        for appointment_id, row in rows.items():
            try:
                events.append(self._event(row, duration))
            except ValueError as exc:  # one unreadable row must not hold back the rest
                errors.append(f"{appointment_id}: {exc}")
                unreadable.add(appointment_id)
        new_cursor = max([e.version for e in events] + ([_version(cursor)] if cursor else []), default=None)
        if unreadable and cursor:
            # Keep the cursor where it was, so the unreadable rows are read again on the next run.
            new_cursor = _version(cursor)
        elif unreadable:
            new_cursor = None
        return FetchResult(
            events,
            cursor=new_cursor,
            complete_window=None if cursor else window,
            errors=errors,
            unreadable_ids=frozenset(unreadable),
        )

    def parse_webhook(self, request: HttpRequest) -> list[str]:
        """Check the HMAC-SHA256 of the raw body, then return the announced appointment id."""
        try:
            key = base64.b64decode(self.credentials["webhook_key"], validate=True)
        except (KeyError, binascii.Error) as exc:
            raise ConnectorConfigError("The Zocdoc connection has no valid base64 webhook_key.") from exc
        expected = hmac.new(key, request.body, hashlib.sha256).hexdigest().encode()
        given = request.headers.get(SIGNATURE_HEADER, "").strip().lower().encode()
        if not hmac.compare_digest(expected, given):
            raise ConnectorAuthError("The Zocdoc webhook signature is missing or wrong.")
        try:
            payload = loads_bounded(request.body)
        except ValueError as exc:
            raise ConnectorError(f"The Zocdoc webhook body is not JSON ({exc}).", permanent=True) from exc
        if not isinstance(payload, dict) or payload.get("event_type") != "appointment_updated":
            return []
        appointment_id = ((payload.get("data") or {}).get("appointment_data") or {}).get("appointment_id")
        return [appointment_id] if isinstance(appointment_id, str) and appointment_id else []

    def _read(self, field: str, low: datetime, high: datetime | None) -> dict[str, dict[str, Any]]:
        """Every appointment with ``field`` in [low, high], halving the range while it reaches the cap."""
        params = {
            "sort_by": field,
            "sort_direction": "asc",
            "page_size": PAGE_SIZE,
            f"{field}_min": _param(low),
        }
        if high is not None:
            params[f"{field}_max"] = _param(high)
        for _attempt in range(2):
            body = self._page(params, 0)
            # >= rather than >: whether total_count is itself capped at 1,000 is not documented.
            if body["total_count"] >= MAX_RESULTS:
                high = high or datetime.now(UTC)
                if high - low <= timedelta(seconds=1):
                    raise ConnectorError(
                        f"Over {MAX_RESULTS} Zocdoc appointments share one second.", permanent=True
                    )
                middle = low + (high - low) / 2
                return {**self._read(field, low, middle), **self._read(field, middle, high)}
            rows: dict[str, dict[str, Any]] = {}
            page = 0
            while True:
                rows.update((row["appointment_id"], row) for row in body["data"])
                # Only next_url's nullness is relied on; its exact form is undocumented.
                if not body.get("next_url"):
                    break
                page += 1
                body = self._page(params, page)
            # Offset paging skips a row when the set changes mid-read; a skipped row must not look deleted.
            if len(rows) == body["total_count"]:
                return rows
        raise ConnectorError("Zocdoc's appointments changed while being paged through; try again.")

    def _page(self, params: dict[str, Any], page: int) -> dict[str, Any]:
        body = self._get("/v1/appointments", {**params, "page": page})
        if not (
            isinstance(body, dict)
            and isinstance(body.get("data"), list)
            and isinstance(body.get("total_count"), int)
            and all(
                isinstance(row, dict) and isinstance(row.get("appointment_id"), str) for row in body["data"]
            )
        ):
            raise ConnectorError("Zocdoc returned an appointment list the hub cannot read.")
        return body

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}"
        response = self.http.request("GET", url, params=params, headers=self._auth(), expected=(401,))
        if response.status_code == 401:  # expired or revoked early: one fresh token, then a 401 is final
            self._token = None
            response = self.http.request("GET", url, params=params, headers=self._auth())
        return json_body(response, "zocdoc")

    def _auth(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._token_renew_at:
            self._token = self._new_token()
        return {"Authorization": f"Bearer {self._token}"}

    def _new_token(self) -> str:
        try:
            payload = {
                "grant_type": "client_credentials",
                "client_id": self.credentials["client_id"],
                "client_secret": self.credentials["client_secret"],
                "audience": self.credentials.get("audience", AUDIENCE),
            }
        except KeyError as exc:
            raise ConnectorConfigError(f"The Zocdoc credentials lack {exc.args[0]}.") from None
        token_url = self.credentials.get("token_url", TOKEN_URL)
        response = self.http.request("POST", token_url, json=payload, expected=(401, 403))
        if response.status_code in (401, 403):
            # Auth0 refuses a wrong client id, secret or audience this way; only new credentials help.
            raise ConnectorAuthError(f"Zocdoc refused the client credentials: {error_message(response)}")
        body = json_body(response, "zocdoc")
        if not isinstance(body, dict) or not body.get("access_token"):
            raise ConnectorError("Zocdoc's token response has no access_token.")
        lifetime = float(body.get("expires_in") or 0)
        self._token_renew_at = time.monotonic() + lifetime - min(60.0, lifetime / 2)  # renew before it lapses
        return body["access_token"]

    def _duration(self) -> timedelta:
        # Zocdoc appointments have no end time or duration; the practice's usual length stands in.
        try:
            return timedelta(minutes=int(self.credentials.get("default_duration_minutes", 30)))
        except (TypeError, ValueError):
            raise ConnectorConfigError(
                "default_duration_minutes must be a whole number of minutes."
            ) from None

    def _event(self, row: dict[str, Any], duration: timedelta) -> ExternalEvent:
        try:
            start = datetime.fromisoformat(row["start_time"])
            if start.tzinfo is None:
                raise ValueError(f"start_time {row['start_time']!r} has no UTC offset")
            provider, _, location = row["provider_location_id"].partition("|")
            version = _version(row["last_modified_time_utc"])
            external_id = row["appointment_id"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"Zocdoc sent an appointment the hub cannot read ({exc!r})") from exc
        return ExternalEvent(
            external_id=external_id,
            start=start,
            end=start + duration,
            # An unknown (new) status keeps the time held rather than guessing a cancellation.
            status=STATUSES.get(row.get("appointment_status"), "scheduled"),
            provider_key=provider,
            location_key=location,
            patient_key=row.get("developer_patient_id") or "",
            type="telehealth" if row.get("visit_type") in VIDEO_VISIT_TYPES else "consult",
            version=version,
            raw=row,
        )


def _version(value: str) -> str:
    """Zocdoc's "*_utc" instants (naive means UTC) as fixed-width UTC stamps that compare as strings."""
    return version_stamp(parse_instant(value))


def _param(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(sep=" ")  # the spec's example form: 2024-01-01 00:00:00+00:00
